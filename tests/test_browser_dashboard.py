"""The dashboard in headless Chromium, served by gunicorn exactly as in the
container: prices and charts render, a quote inserted during the test shows up
on / without a reload, registration works through the form, the CSP holds (no
violations) and screenshots of both pages are saved as test artifacts."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.webdata import (
    quote,
    seed_alert_log,
    seed_daily,
    seed_mongo_extras,
    seed_quotes,
    utcnow,
    web_settings,
)
from database.mongo import USERS, get_db, make_client
from database.mongo.prices import insert_quotes
from scripts.servers import LOG_DIR, SecantusMongo
from tests.support.accounts import confirmation_link, outbox_mails
from tests.support.web_server import gunicorn_app

pytestmark = pytest.mark.browser

ARTIFACTS = LOG_DIR.parent
SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def served(mongo: SecantusMongo, mysql_server: dict[str, Any], mysql_db: str,
           tmp_path: Path) -> Iterator[SimpleNamespace]:
    """Seeded stores and the app under gunicorn (2 workers) on a free port."""
    tag = uuid.uuid4().hex[:10]
    settings = web_settings(mongo.uri, mysql_server, mysql_db, tag)
    now = utcnow()
    seed_quotes(settings, SYMBOLS, 20, now)
    seed_daily(settings, SYMBOLS, 40, now.date())
    seed_alert_log(settings, "AAPL", now)
    seed_mongo_extras(settings, "AAPL", now)

    with gunicorn_app(settings, tmp_path / "outbox") as url:
        client = make_client(settings)
        yield SimpleNamespace(url=url, settings=settings, db=get_db(client, settings), now=now,
                              outbox=tmp_path / "outbox")
        client.close()


def test_dashboard_in_a_real_browser(served: SimpleNamespace) -> None:
    from playwright.sync_api import expect, sync_playwright

    shots = ARTIFACTS / "screenshots"
    shots.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM,
                                     args=["--headless", "--no-sandbox", "--disable-gpu",
                                           "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            failed: list[str] = []
            page.on("console", lambda m: problems.append(f"console {m.type} on {page.url}: {m.text} at {m.location}")
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
            page.on("response", lambda r: failed.append(
                f"{r.request.method} {r.url.removeprefix(served.url)} {r.status}") if r.status >= 400 else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            # Runs outside the page's CSP: records every violation the policy reports.
            page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                                 " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")

            # --- live prices -----------------------------------------------------
            page.goto(served.url + "/")
            aapl = page.locator('tr[data-symbol="AAPL"]')
            stored = served.db["realtime_prices"].find_one({"symbol": "AAPL"}, sort=[("timestamp", -1)])
            expect(aapl.locator(".price")).to_have_text(f"{stored['price']:.2f}")
            expect(aapl.locator(".badge.sim")).to_be_visible()
            assert len((aapl.locator("polyline").get_attribute("points") or "").split()) == 20
            page.evaluate("window.__sameDocument = true")

            fresh = quote("AAPL", served.now + timedelta(seconds=15), 99)
            fresh.update(price=987.65, change_percent=3.21, volume=424242)
            assert insert_quotes(served.db, [fresh]) == (1, 0)
            expect(aapl.locator(".price")).to_have_text("987.65", timeout=20_000)
            expect(aapl.locator(".change")).to_have_text("+3.21%")
            expect(aapl.locator(".volume")).to_have_text("424,242")
            assert page.evaluate("window.__sameDocument") is True  # updated in place, no reload
            assert len((aapl.locator("polyline").get_attribute("points") or "").split()) == 21
            # A Yahoo quote taken after the close: labelled yahoo (no simulated badge) and the
            # page says the market is closed rather than looking live.
            msft = page.locator('tr[data-symbol="MSFT"]')
            expect(msft.locator(".source")).to_have_text("simulated")
            expect(page.locator("#market-status")).to_be_hidden()  # the seeded quotes carry no flag
            closed = quote("MSFT", served.now + timedelta(seconds=15), 99, source="yahoo")
            closed.update(price=481.20, volume=0, market_open=False)
            assert insert_quotes(served.db, [closed]) == (1, 0)
            expect(msft.locator(".source")).to_have_text("yahoo", timeout=20_000)
            expect(msft.locator(".price")).to_have_text("481.20")
            expect(msft.locator(".badge.sim")).to_be_hidden()
            expect(page.locator("#market-status")).to_have_text(
                "Market closed: prices are the last session's and move again at the next open.")
            page.screenshot(path=str(shots / "index.png"), full_page=True)

            # --- dashboard -------------------------------------------------------
            page.goto(served.url + "/dashboard?symbol=AAPL&days=90")
            expect(page.locator('#daily-chart[data-rendered="true"]')).to_be_attached(timeout=30_000)
            expect(page.locator('#intraday-chart[data-rendered="true"]')).to_be_attached(timeout=30_000)
            assert page.locator("#daily-chart .main-svg").count() >= 1
            assert page.locator("#daily-chart g.trace.boxes").count() == 1  # the candlestick trace
            assert page.locator("#intraday-chart .scatterlayer .trace").count() == 1
            expect(page.locator("#performance tbody tr")).to_have_count(7)
            # The two of alert_log; the alert_history one seeded seconds ago may also be pushed
            # (a replay starts a few seconds before the page's cursor), marked .pushed.
            expect(page.locator("#alerts li:not(.pushed)")).to_have_count(2)
            expect(page.locator("#news li")).to_have_count(3)
            page.screenshot(path=str(shots / "dashboard.png"), full_page=True)

            # --- register through the form --------------------------------------
            page.goto(served.url + "/register")
            page.fill("#email", "Browser.User@Example.com")
            page.fill("#name", "Browser User")
            page.fill("#password", "short")
            page.fill("#confirm", "short")
            page.click("#submit")
            expect(page.locator("#password-errors")).to_contain_text("at least 10 characters")
            page.fill("#password", "Quiet-meadow-58")
            page.fill("#confirm", "Quiet-meadow-58")
            page.check('input[name="watchlist"][value="MSFT"]')
            page.click("#submit")
            expect(page.locator("#registered-message")).to_contain_text("browser.user@example.com")
            [mail] = outbox_mails(served.outbox, "browser.user@example.com")
            page.goto(served.url + confirmation_link(mail))
            expect(page.locator("#confirmed-message")).to_be_visible()
            page.goto(served.url + "/login?next=/account")
            page.fill("#email", "browser.user@example.com")
            page.fill("#password", "Quiet-meadow-58")
            page.click("#submit")
            expect(page.locator("#account-email")).to_have_text("browser.user@example.com")
            page.screenshot(path=str(shots / "account.png"), full_page=True)
            user = served.db[USERS].find_one({"email": "browser.user@example.com"})
            assert user is not None and user["watchlist"] == ["MSFT"]

            page.goto(served.url + "/")
            expect(page.locator('tr[data-symbol="MSFT"]')).to_contain_text("★")
            csp = page.evaluate("window.__csp")
        finally:
            browser.close()
    assert csp == [], csp
    assert problems == [], problems
    assert failed == ["POST /register 400"], failed  # only the deliberately weak password
