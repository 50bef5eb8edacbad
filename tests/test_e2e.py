"""Issue 8 end to end: the whole system on the local stack (scripts/local_stack.py): Tansu, SecantusDB,
osmem-server, aiosmtpd and a MariaDB database, with every role running its container command — producer (simulation,
1 s interval), consumer, alerts, flask under gunicorn, and the batch and news schedulers.

One stack for the module; the tests run in file order and build on each other:
quotes reach MongoDB and the browser, an injected spike makes exactly one alert
everywhere, the manual batch run fills daily_aggregates and the dashboard shows it,
the manual news run stores news and mails an opted-in user, every component's logs
are in Elasticsearch, and finally every quote the producer delivered is stored once.
Screenshots of / and /dashboard go to test-artifacts/e2e/.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests

from common.clock import utc_now
from database.mongo.symbols import name_unnamed
from database.mongo.users import create_user
from scripts.local_stack import LocalStack
from scripts.processes import run_script
from scripts.servers import LOG_DIR
from scripts.waiting import free_port, wait_for
from tests.support.accounts import confirm_as_the_link_does
from tests.support.http_fixture import RecordedApi
from tests.support.pipeline import QUIET_ALERTS, TEST_QUOTES, StackProbe, ms_utc
from tests.test_news_pipeline import _shift_to_today, feed, serve

pytestmark = pytest.mark.slow

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
ARTIFACTS = LOG_DIR.parent / "e2e"
CHROMIUM = "/usr/bin/chromium"
OPS = "ops@example.test"
READER = "reader@example.test"
INJECTED: set[tuple[str, datetime]] = set()  # quotes the tests produced themselves
PRICE = re.compile(r"^\d+\.\d\d$")


@pytest.fixture(scope="module")
def e2e(mysql_server: dict[str, Any], _recorded_api_server: RecordedApi,
        tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, StackProbe]]:
    api = _recorded_api_server
    api.reset()
    today = utc_now()
    empty = feed("yahoo_empty.xml")
    serve(api,
          yahoo={s: empty for s in SYMBOLS} | {"AAPL": _shift_to_today("yahoo_aapl.xml", today),
                                              "MSFT": _shift_to_today("yahoo_msft.xml", today)},
          google={s: empty for s in SYMBOLS} | {"AAPL": _shift_to_today("google_aapl.xml", today)})
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stack = LocalStack(
        mysql_host=mysql_server["host"], mysql_port=int(mysql_server["port"]), mysql_user=mysql_server["user"],
        mysql_password=mysql_server["password"], mysql_database=f"e2e_{uuid.uuid4().hex[:8]}",
        drop_mysql_database=True, flask_port=free_port(), poll_interval=1.0, mail_dir=ARTIFACTS / "mail",
        extra_env={
            "SIMULATION_SEED": "13", **QUIET_ALERTS, **TEST_QUOTES, "ALERT_EMAIL_RECIPIENTS": OPS,
            "YAHOO_RSS_URL": api.url + "/rss/2.0/headline?s={symbol}&region=US&lang=en-US",
            "GOOGLE_NEWS_RSS_URL": api.url + "/rss/search?q={query}&hl=en-US&gl=US&ceid=US:en",
            "ALPHA_VANTAGE_URL": api.url + "/query", "NEWS_REQUEST_DELAY_SECONDS": "0",
            "HTTP_TIMEOUT_SECONDS": "2", "NEWS_OUTBOX_DIR": str(tmp_path_factory.mktemp("outbox")),
            "FLASK_REFRESH_SECONDS": "1", "GUNICORN_WORKERS": "2", "BACKFILL_DAYS": "40",
        },
        role_env={"producer": {"LOG_LEVEL": "DEBUG"}},  # one line per delivered quote, for the final count
    )
    try:
        stack.start()
        probe = StackProbe(stack)
        yield stack, probe
        probe.close()
    finally:
        stack.stop()
        api.reset()


def browser_page(pw: Any) -> tuple[Any, Any]:
    browser = pw.chromium.launch(executable_path=CHROMIUM,
                                 args=["--headless", "--no-sandbox", "--disable-gpu",
                                       "--disable-background-networking"])
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    return browser, page


def wait_scheduler_started(stack: LocalStack, role: str) -> None:
    """The scheduler logs its schedule once its start-up work (backfill, catch-up) is done."""
    wait_for(lambda: f"{role}: schedule " in stack.processes[role].output(), timeout=180,
             interval=0.5, what=f"the {role} scheduler's start-up")


def test_quotes_flow_to_mongodb_and_appear_live_in_the_browser(e2e: tuple[LocalStack, StackProbe]) -> None:
    from playwright.sync_api import expect, sync_playwright

    stack, probe = e2e
    prices = probe.db.realtime_prices
    wait_for(lambda: all(prices.count_documents({"symbol": s}) >= 3 for s in SYMBOLS), timeout=120,
             what="quotes of every symbol in MongoDB")
    doc = prices.find_one({"symbol": "AAPL"})
    assert doc["source"] == "simulated" and isinstance(doc["processed_at"], datetime) and "price_change_pct" in doc

    with sync_playwright() as pw:
        browser, page = browser_page(pw)
        try:
            page.goto(stack.flask_url + "/")
            shown: dict[str, str] = {}
            for symbol in SYMBOLS:
                price = page.locator(f'tr[data-symbol="{symbol}"] .price')
                expect(price).to_have_text(PRICE, timeout=20_000)
                shown[symbol] = price.inner_text()
            # Live: the price changes without a reload as new quotes are stored.
            expect(page.locator('tr[data-symbol="AAPL"] .price')).not_to_have_text(shown["AAPL"], timeout=30_000)
            page.screenshot(path=str(ARTIFACTS / "index.png"), full_page=True)
        finally:
            browser.close()
    for symbol, text in shown.items():
        stored = {f"{d['price']:.2f}" for d in prices.find({"symbol": symbol}, {"price": 1})}
        assert text.strip() in stored, (symbol, text)


def test_injected_price_spike_raises_exactly_one_alert_everywhere(e2e: tuple[LocalStack, StackProbe]) -> None:
    stack, probe = e2e
    last = probe.db.realtime_prices.find_one({"symbol": "TSLA"}, sort=[("timestamp", -1)])
    ts = ms_utc(utc_now())
    body = {"symbol": "TSLA", "timestamp": ts.isoformat(), "price": round(last["price"] * 1.2, 2), "volume": 5000,
            "open": last["open"], "high": round(last["price"] * 1.2, 2), "low": last["low"],
            "previous_close": last["previous_close"], "change_percent": 21.5, "source": "simulated"}
    raw = json.dumps(body).encode()
    probe.produce([("TSLA", raw), ("TSLA", raw)])  # the second is a redelivery: nothing new
    key = f"TSLA|price_change|{ts.isoformat(timespec='milliseconds')}"
    wait_for(lambda: [r["email_status"] for r in probe.alert_rows()] == ["sent"], timeout=60,
             what="the alert in alert_log, mailed")
    wait_for(lambda: len(stack.smtp.inbox.to(OPS)) == 1, timeout=30, what="the alert email")
    rows, history = probe.alert_rows(), probe.alert_history()
    assert [r["alert_key"] for r in rows] == [key]
    assert [(d["alert_key"], d["rule"], d["email_status"]) for d in history] == [(key, "price_change", "sent")]
    assert history[0]["value"] == 21.5 and history[0]["threshold"] == 15.0
    [mail] = stack.smtp.inbox.to(OPS)
    assert "TSLA" in mail.message["Subject"]
    assert probe.db.realtime_prices.count_documents({"symbol": "TSLA", "timestamp": ts}) == 1
    INJECTED.add(("TSLA", ts))  # for the final accounting


def test_manual_daily_aggregation_fills_every_symbol_and_the_dashboard_shows_it(
        e2e: tuple[LocalStack, StackProbe]) -> None:
    from playwright.sync_api import expect, sync_playwright

    stack, probe = e2e
    wait_scheduler_started(stack, "batch")  # its start-up backfill is done; the tables are ours too
    proc = run_script("batch/daily_aggregation.py", {**stack.env, "LOG_LEVEL": "INFO"}, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    settings = probe.settings
    today = utc_now().astimezone(settings.tz).date()
    rows = probe.mysql_rows("SELECT symbol, tick_count, open_price, close_price, source FROM daily_aggregates "
                            "WHERE date = %s ORDER BY symbol", (today,))
    assert sorted(r["symbol"] for r in rows) == sorted(SYMBOLS)
    for row in rows:
        assert row["tick_count"] > 0 and row["source"] == "simulated", row
    api = requests.get(f"{stack.flask_url}/api/daily/TSLA", params={"days": 30}, timeout=10).json()
    assert api["rows"][-1]["date"].startswith(today.isoformat()) and api["rows"][-1]["tick_count"] > 0

    with sync_playwright() as pw:
        browser, page = browser_page(pw)
        try:
            page.goto(f"{stack.flask_url}/dashboard?symbol=TSLA&days=30")
            expect(page.locator('#daily-chart[data-rendered="true"]')).to_be_attached(timeout=30_000)
            expect(page.locator('#intraday-chart[data-rendered="true"]')).to_be_attached(timeout=30_000)
            assert today.isoformat() in (page.locator("#daily-figure").text_content() or "")
            expect(page.locator("#performance tbody tr")).to_have_count(len(SYMBOLS))
            expect(page.locator("#alerts li")).to_have_count(1)
            expect(page.locator("#alerts li")).to_contain_text("TSLA")
            page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
        finally:
            browser.close()


def test_manual_news_run_stores_news_and_mails_an_opted_in_user(e2e: tuple[LocalStack, StackProbe]) -> None:
    stack, probe = e2e
    wait_scheduler_started(stack, "news")  # its own start-up catch-up run (if any) is over
    uid = create_user(probe.db, email=READER, name="Reader", password_hash="x", watchlist=["AAPL"],
                      digest_opt_in=True, alert_opt_in=False, created_at=utc_now())
    confirm_as_the_link_does(probe.db, uid, READER)
    # The stack's producer simulates, so no source named AAPL; Yahoo's quote answer would have
    # (the producer writes it into the registry): "Apple services ..." is found by that name.
    name_unnamed(probe.db, {"AAPL": "Apple Inc."})
    proc = run_script("articles/daily_news.py", stack.env, timeout=180)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    titles = {d["title"] for d in probe.db.news_articles.find({"symbols": "AAPL"}, {"title": 1})}
    assert any(t.startswith("Apple services record lifts shares") for t in titles), titles
    wait_for(lambda: len(stack.smtp.inbox.to(READER)) == 1, timeout=30, what="the digest email")
    [mail] = stack.smtp.inbox.to(READER)
    html = mail.message.get_body(("html",)).get_content()
    assert "Apple services record lifts shares" in html and "AAPL" in html


def test_every_component_logs_to_elasticsearch(e2e: tuple[LocalStack, StackProbe]) -> None:
    _stack, probe = e2e
    services = ["producer", "consumer", "alerts", "batch", "news", "flask"]
    wait_for(lambda: all(probe.log_count(s) > 0 for s in services), timeout=60,
             what="logs of every component in the log index")
    counts = {s: probe.log_count(s) for s in services}
    print(f"\n[e2e] log records per service in {probe.settings.es_log_index}: {counts}")


def test_every_delivered_quote_is_stored_exactly_once(e2e: tuple[LocalStack, StackProbe]) -> None:
    stack, probe = e2e
    # At least ten ticks of all 7 symbols, however fast the tests before this one ran.
    wait_for(lambda: probe.stored_count() >= 7 * 10 + len(INJECTED), timeout=120, what="ten ticks of quotes stored")
    delivered, keys = probe.settle_and_account(extra=INJECTED)
    assert delivered >= 7 * 10
    since = min(ts for _, ts in keys)
    print(f"\n[e2e] {delivered} quotes delivered by the producer, {len(keys)} stored once each, "
          f"over {(utc_now() - since) / timedelta(seconds=1):.0f} s")
    for role, proc in stack.processes.items():
        if role != "producer":
            assert proc.running, f"{role} died:\n{proc.output()[-3000:]}"
    assert Path(ARTIFACTS / "index.png").exists() and Path(ARTIFACTS / "dashboard.png").exists()
