"""The push channel in headless Chromium, the app under gunicorn as in the container:
the stream server restarted mid-session -> the page reconnects by itself (Last-Event-ID)
and shows the quotes stored meanwhile; a new alert appears on the open live page and
dashboard without a reload; a signed-in user's own alert appears on their open pages (and
not on a signed-out visitor's); where streams are refused the page polls and says so, and
shows new alerts from its polling too."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.webdata import quote, seed_quotes, utcnow, web_settings
from database.mongo import get_db, make_client
from database.mongo.alerts import store_alert
from database.mongo.prices import insert_quotes
from database.mongo.user_rules import store_user_alerts
from database.mongo.users import create_user
from flask_web_app.validation import hash_password
from scripts.servers import SecantusMongo
from scripts.waiting import free_port
from tests.support.web_server import gunicorn_app

pytestmark = pytest.mark.browser

SYMBOLS = ["AAPL", "MSFT"]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def stores(mongo: SecantusMongo, mysql_server: dict[str, Any], mysql_db: str) -> Iterator[SimpleNamespace]:
    settings = web_settings(mongo.uri, mysql_server, mysql_db, uuid.uuid4().hex[:10])
    now = utcnow()
    seed_quotes(settings, SYMBOLS, 5, now)
    client = make_client(settings)
    yield SimpleNamespace(settings=settings, db=get_db(client, settings), now=now)
    client.close()


@pytest.fixture
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            yield b
        finally:
            b.close()


def alert(symbol: str, at: Any, message: str) -> dict[str, Any]:
    return {"alert_key": f"{symbol}|price_change|{at.isoformat()}", "symbol": symbol, "rule": "price_change",
            "value": 6.2, "threshold": 5.0, "price": 281.0, "quote_timestamp": at, "message": message,
            "source": "simulated"}


def test_restart_mid_session_reconnects_and_alerts_arrive(stores: SimpleNamespace, browser: Any,
                                                          tmp_path: Path) -> None:
    from playwright.sync_api import expect

    port = free_port()
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    problems: list[str] = []
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    aapl = page.locator('tr[data-symbol="AAPL"]')
    status = page.locator("#live-status")
    with gunicorn_app(stores.settings, tmp_path / "outbox", port=port) as url:
        page.goto(url + "/")
        expect(status).to_have_attribute("data-mode", "push", timeout=30_000)
        page.evaluate("window.__sameDocument = true")
        first = quote("AAPL", stores.now + timedelta(seconds=10), 1)
        first.update(price=501.25)
        insert_quotes(stores.db, [first])
        expect(aapl.locator(".price")).to_have_text("501.25", timeout=30_000)

    # The server is gone: the page notices; quotes are stored meanwhile (the consumer keeps going).
    expect(status).not_to_have_attribute("data-mode", "push", timeout=30_000)
    later = stores.now + timedelta(seconds=20)
    meanwhile = [quote("AAPL", later, 2), quote("MSFT", later, 2)]
    meanwhile[0].update(price=502.5)
    meanwhile[1].update(price=433.75)
    insert_quotes(stores.db, meanwhile)

    with gunicorn_app(stores.settings, tmp_path / "outbox", port=port) as url:
        expect(status).to_have_attribute("data-mode", "push", timeout=60_000)
        expect(aapl.locator(".price")).to_have_text("502.50", timeout=30_000)
        expect(page.locator('tr[data-symbol="MSFT"] .price')).to_have_text("433.75")
        assert page.evaluate("window.__sameDocument") is True  # reconnected by itself, no reload

        # A new alert appears on the open live page, and on an open dashboard, without a reload.
        dash = browser.new_page(viewport={"width": 1280, "height": 900})
        dash.on("pageerror", lambda e: problems.append(f"dashboard error: {e}"))
        dash.goto(url + "/dashboard?symbol=AAPL")
        expect(dash.locator("#live-status")).to_have_attribute("data-mode", "push", timeout=30_000)
        dash.evaluate("window.__sameDocument = true")
        at = utcnow()
        store_alert(stores.db, alert("AAPL", at, "AAPL moved +6.20% <b>pushed</b>"), "disabled", at)
        expect(page.locator("#latest-alerts li").first).to_contain_text("AAPL moved +6.20% <b>pushed</b>",
                                                                       timeout=30_000)
        expect(dash.locator("#alerts li").first).to_contain_text("AAPL moved +6.20%", timeout=30_000)
        last = quote("AAPL", stores.now + timedelta(seconds=30), 3)
        last.update(price=503.75, source="yahoo")
        insert_quotes(stores.db, [last])
        expect(dash.locator("#latest-quote strong")).to_have_text("503.75", timeout=30_000)
        expect(dash.locator("#latest-source")).to_have_text("yahoo")  # a pushed quote says its source too
        assert page.evaluate("window.__sameDocument") is True and dash.evaluate("window.__sameDocument") is True
    assert problems == [], problems


PASSWORD = "correct horse battery staple 7"


def own_alert(user_id: str, symbol: str, at: Any, message: str) -> dict[str, Any]:
    return {"alert_key": f"{user_id}|price_level|{symbol}|{at.isoformat()}", "user_id": user_id, "rule_id": "r1",
            "symbol": symbol, "rule": "price_level", "value": 301.0, "threshold": 300.0, "price": 301.0,
            "quote_timestamp": at, "source": "simulated", "message": message, "band": None}


def sign_in(browser: Any, url: str, db: Any, email: str) -> tuple[str, Any]:
    """A user made in MongoDB, signed in through the login form in a context of their own."""
    user_id = create_user(db, email=email, name="Ann", password_hash=hash_password(PASSWORD), watchlist=[],
                          digest_opt_in=False, alert_opt_in=True, created_at=utcnow())
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.goto(url + "/login?next=/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#submit")
    page.wait_for_url(url + "/")
    return user_id, context


def test_an_own_alert_appears_on_its_owner_open_pages_only(stores: SimpleNamespace, browser: Any,
                                                           tmp_path: Path) -> None:
    from playwright.sync_api import expect

    problems: list[str] = []
    with gunicorn_app(stores.settings, tmp_path / "outbox") as url:
        user_id, ann = sign_in(browser, url, stores.db, "ann@example.com")
        live, dash = ann.pages[0], ann.new_page()
        dash.goto(url + "/dashboard?symbol=AAPL")
        anon = browser.new_page()
        anon.goto(url + "/")
        for page in (live, dash, anon):
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            expect(page.locator("#live-status")).to_have_attribute("data-mode", "push", timeout=30_000)
            page.evaluate("window.__sameDocument = true")
        at = utcnow()
        store_user_alerts(stores.db, [own_alert(user_id, "AAPL", at, "AAPL above 300.00 (your level)")], at)
        expect(live.locator("#latest-alerts li").first).to_contain_text("AAPL above 300.00 (your level)",
                                                                       timeout=30_000)
        expect(live.locator("#latest-alerts li .badge.own").first).to_have_text("your rule")
        expect(dash.locator("#alerts li").first).to_contain_text("AAPL above 300.00 (your level)", timeout=30_000)
        # A system alert after it reaches the signed-out page; Ann's own never does.
        store_alert(stores.db, alert("AAPL", at, "AAPL moved +6.20%"), "disabled", at)
        expect(anon.locator("#latest-alerts li").first).to_contain_text("AAPL moved +6.20%", timeout=30_000)
        expect(anon.locator("#latest-alerts")).not_to_contain_text("your level")
        expect(live.locator("#latest-alerts li").first).to_contain_text("AAPL moved +6.20%", timeout=30_000)
        expect(live.locator("#latest-alerts li", has_text="your level")).to_have_count(1)  # once, no repeat
        assert all(p.evaluate("window.__sameDocument") is True for p in (live, dash, anon))  # no reload
        ann.close()
    assert problems == [], problems


def test_streams_refused_the_page_polls_and_says_so(stores: SimpleNamespace, browser: Any, tmp_path: Path) -> None:
    from playwright.sync_api import expect

    with gunicorn_app(stores.settings, tmp_path / "outbox", {"STREAM_MAX_PER_PROCESS": "0"}) as url:
        page = browser.new_page()
        page.goto(url + "/")
        status = page.locator("#live-status")
        expect(status).to_have_attribute("data-mode", "poll", timeout=30_000)
        expect(status).to_contain_text("Polling every 1 s")
        fresh = quote("MSFT", stores.now + timedelta(seconds=10), 1)
        fresh.update(price=444.44)
        insert_quotes(stores.db, [fresh])
        expect(page.locator('tr[data-symbol="MSFT"] .price')).to_have_text("444.44", timeout=30_000)
        # Polling brings new alerts too (without a reload), each once.
        page.evaluate("window.__sameDocument = true")
        at = utcnow()
        store_alert(stores.db, alert("MSFT", at, "MSFT moved +6.20% (polled)"), "disabled", at)
        expect(page.locator("#latest-alerts li").first).to_contain_text("MSFT moved +6.20% (polled)",
                                                                       timeout=30_000)
        fresher = quote("MSFT", stores.now + timedelta(seconds=20), 2)
        fresher.update(price=445.55)
        insert_quotes(stores.db, [fresher])
        expect(page.locator('tr[data-symbol="MSFT"] .price')).to_have_text("445.55", timeout=30_000)
        expect(page.locator("#latest-alerts li", has_text="(polled)")).to_have_count(1)
        assert page.evaluate("window.__sameDocument") is True

        # A symbol's first quote: its sparkline is a dot and says so, until the second draws a line.
        nvda = page.locator('tr[data-symbol="NVDA"]')
        expect(nvda.locator(".spark-note")).to_be_hidden()
        insert_quotes(stores.db, [quote("NVDA", stores.now + timedelta(seconds=10), 0)])
        expect(nvda.locator(".spark polyline")).to_have_attribute("points", "118.0,16.0 118.0,16.0", timeout=30_000)
        expect(nvda.locator(".spark-note")).to_have_text("one quote so far")
        expect(nvda.locator(".spark-note")).to_be_visible()
        insert_quotes(stores.db, [quote("NVDA", stores.now + timedelta(seconds=20), 1)])
        expect(nvda.locator(".spark-note")).to_be_hidden(timeout=30_000)
        assert len(nvda.locator(".spark polyline").get_attribute("points").split()) == 2  # type: ignore[union-attr]

        # The dashboard polls too: its symbol's quote and its symbol's new alerts, each once.
        dash = browser.new_page()
        dash.goto(url + "/dashboard?symbol=MSFT")
        expect(dash.locator("#live-status")).to_have_attribute("data-mode", "poll", timeout=30_000)
        dash.evaluate("window.__sameDocument = true")
        later = utcnow()
        store_alert(stores.db, alert("AAPL", later, "AAPL moved +6.20% (not this page's)"), "disabled", later)
        store_alert(stores.db, alert("MSFT", later, "MSFT moved +7.10% (dashboard polled)"), "disabled", later)
        expect(dash.locator("#alerts li").first).to_contain_text("MSFT moved +7.10% (dashboard polled)",
                                                                 timeout=30_000)
        newest = quote("MSFT", stores.now + timedelta(seconds=30), 3)
        newest.update(price=446.66)
        insert_quotes(stores.db, [newest])
        expect(dash.locator("#latest-quote strong")).to_have_text("446.66", timeout=30_000)
        expect(dash.locator("#alerts li", has_text="(dashboard polled)")).to_have_count(1)
        expect(dash.locator("#alerts li", has_text="not this page's")).to_have_count(0)
        assert dash.evaluate("window.__sameDocument") is True
