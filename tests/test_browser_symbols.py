"""Adding IBM on the dashboard in headless Chromium, the app under gunicorn (2 workers) with Yahoo's
search on recorded answers: sign up, type a ticker (Yahoo's suggestions appear), a bad one is refused
next to the field, IBM is added and its first quote shows on / without a reload, its dashboard
answers, and "Remove" drops it. No CSP violation, no console error.

Then the same on the whole pipeline (producer, consumer, batch scheduler and the web app as
processes on the test servers): within a minute of the click IBM has live quotes on /, daily
history on /dashboard?symbol=IBM (the batch's backfill watcher), a row from the daily job and a
value in Grafana's panel SQL; removing it stops the producer sending IBM."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.webdata import quote, utcnow, web_settings
from common.clock import utc_now
from database.mongo import SYMBOLS, get_db, make_client
from database.mongo.prices import insert_quotes
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import wait_for
from tests.support.accounts import confirmation_link, outbox_mails
from tests.support.http_fixture import RecordedApi
from tests.support.web_server import gunicorn_app
from tests.support.yahoo_api import COOKIE, serve_yahoo, yahoo_env
from tests.test_browser_dashboard import CHROMIUM
from tests.test_web_symbols import SEARCH, yahoo_search

pytestmark = pytest.mark.browser
PASSWORD = "Quiet-meadow-58"
MINUTE = 60.0  # the promise: everything for a new symbol within a minute of adding it


@pytest.fixture
def served(mongo: SecantusMongo, mysql_server: dict[str, Any], mysql_db: str, tmp_path: Path,
           recorded_api: RecordedApi) -> Iterator[SimpleNamespace]:
    serve_yahoo(recorded_api)
    recorded_api.route(SEARCH, yahoo_search)
    settings = web_settings(mongo.uri, mysql_server, mysql_db, uuid.uuid4().hex[:10])
    yahoo = {"QUOTE_SOURCES": "yahoo,simulated", "YAHOO_FINANCE_URL": recorded_api.url,
             "YAHOO_COOKIE_URL": recorded_api.url + COOKIE, "HTTP_TIMEOUT_SECONDS": "2"}
    with gunicorn_app(settings, tmp_path / "outbox", yahoo) as url:
        client = make_client(settings)
        yield SimpleNamespace(url=url, db=get_db(client, settings), outbox=tmp_path / "outbox")
        client.close()


def test_add_ibm_on_the_dashboard_then_remove_it(served: SimpleNamespace) -> None:
    from playwright.sync_api import expect, sync_playwright

    problems: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                     "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}")
                    if m.type == "error" and not m.text.startswith("Failed to load resource") else None)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            page.add_init_script("window.__csp = []; document.addEventListener('securitypolicyviolation',"
                                 " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));")

            page.goto(served.url + "/")
            expect(page.locator("#my-symbols")).to_have_count(0)  # signed out: no form
            sign_up_and_in(page, served.url, "ibm.fan@example.com",
                           lambda: outbox_mails(served.outbox, "ibm.fan@example.com")[-1])

            # Yahoo's suggestions while typing.
            page.locator("#symbol").press_sequentially("IBM", delay=50)
            expect(page.locator('#symbol-suggestions option[value="IBM"]')).to_be_attached(timeout=10_000)
            expect(page.locator("#symbol-suggestions option")).to_have_count(3)

            # A bad ticker: the reason next to the field, nothing stored, nothing run.
            page.fill("#symbol", "<script>")
            page.click("#submit_symbol")
            expect(page.locator("#symbol-errors")).to_contain_text("starts with a letter")
            assert served.db[SYMBOLS].find_one({"_id": "<SCRIPT>"}) is None

            page.fill("#symbol", "IBM")
            page.click("#submit_symbol")
            expect(page.locator(".flash")).to_contain_text("Now following IBM, International Business Machines")
            row = page.locator('tr[data-symbol="IBM"]')
            expect(row).to_contain_text("no quote yet")
            expect(page.locator('#my-symbols li[data-symbol="IBM"]')).to_be_visible()

            # The producer's first quote (inserted here) shows without a reload.
            fresh = quote("IBM", utcnow(), 1)
            fresh.update(price=301.25)
            assert insert_quotes(served.db, [fresh]) == (1, 0)
            expect(row.locator(".price")).to_have_text("301.25", timeout=40_000)

            page.goto(served.url + "/dashboard?symbol=IBM")
            expect(page.locator("h1")).to_contain_text("IBM")

            page.goto(served.url + "/")
            page.locator('#my-symbols li[data-symbol="IBM"] input[type="submit"]').click()
            expect(page.locator(".flash")).to_contain_text("No longer following IBM")
            expect(page.locator('#my-symbols li[data-symbol="IBM"]')).to_have_count(0)
            assert served.db[SYMBOLS].find_one({"_id": "IBM"}) is None
            csp = page.evaluate("window.__csp")
        finally:
            browser.close()
    assert csp == [], csp
    assert problems == [], problems


def sign_up_and_in(page: Any, url: str, email: str, confirmation: Callable[[], EmailMessage]) -> None:
    """Register through the form, follow the mailed link, sign in; lands on /."""
    page.goto(url + "/register")
    page.fill("#email", email)
    page.fill("#name", "Ibm Fan")
    page.fill("#password", PASSWORD)
    page.fill("#confirm", PASSWORD)
    page.click("#submit")
    page.goto(url + confirmation_link(confirmation()))
    page.goto(url + "/login?next=/")
    page.fill("#email", email)
    page.fill("#password", PASSWORD)
    page.click("#submit")


def test_ibm_added_on_the_dashboard_runs_through_the_whole_pipeline_within_a_minute(
        kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch, smtp: SmtpServer,
        mysql_server: dict[str, Any], mysql_db: str, recorded_api: RecordedApi) -> None:
    from playwright.sync_api import expect, sync_playwright

    from batch.daily_aggregation import run as run_daily_job
    from database.mysql import connect
    from tests.support.pipeline import pipeline
    from tests.test_grafana import dashboard, expand, panels, run_as_grafana

    serve_yahoo(recorded_api)
    recorded_api.route(SEARCH, yahoo_search)
    # The web app checks tickers with Yahoo (recorded); the producer simulates (tests never ask Yahoo).
    web_env = {"QUOTE_SOURCES": "yahoo,simulated", **yahoo_env(recorded_api), "HTTP_TIMEOUT_SECONDS": "2",
               "FLASK_REFRESH_SECONDS": "1"}
    email = f"ibm.{uuid.uuid4().hex[:6]}@example.com"
    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp,
                  roles=["producer", "consumer", "batch", "flask"], env={"BACKFILL_DAYS": "30"},
                  role_env={"flask": web_env}) as (stack, probe), sync_playwright() as pw:
        batch, producer = stack.processes["batch"], stack.processes["producer"]
        wait_for(lambda: "every registered symbol is backfilled already" in batch.output(), timeout=120,
                 what="the batch's start-up backfill and the watcher's first pass")
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                                     "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            sign_up_and_in(page, stack.flask_url, email,
                           lambda: wait_for(lambda: [m.message for m in smtp.inbox.to(email)], timeout=30,
                                            what="the confirmation mail")[-1])
            page.fill("#symbol", "IBM")
            page.click("#submit_symbol")
            expect(page.locator(".flash")).to_contain_text("Now following IBM")
            deadline = time.monotonic() + MINUTE

            def left() -> float:
                return max(1.0, deadline - time.monotonic())

            # Live quotes on / (the page refreshes itself; no reload).
            expect(page.locator('tr[data-symbol="IBM"] .price')).to_have_text(re.compile(r"^\d+\.\d\d$"),
                                                                            timeout=left() * 1000)
            assert "now quoting IBM" in producer.output()

            # Daily history on its dashboard, from the batch's backfill watcher.
            def has_daily_chart() -> bool:
                page.goto(f"{stack.flask_url}/dashboard?symbol=IBM")
                return page.locator("#daily-chart").count() == 1

            wait_for(has_daily_chart, timeout=left(), interval=2, what="IBM's daily chart on its dashboard")
            assert page.locator("#empty-intraday").count() == 0  # its live quotes are there too

            # A row from the daily job (today's, aggregated from IBM's quotes).
            settings = stack.settings()
            today = utc_now().astimezone(settings.tz).date()
            conn = connect(settings)
            try:
                run_daily_job(settings, [today], db=probe.db, conn=conn)
            finally:
                conn.close()
            [row] = probe.mysql_rows("SELECT tick_count, close_price FROM daily_aggregates"
                                     " WHERE symbol = 'IBM' AND date = %s", (today,))
            assert row["tick_count"] > 0 and row["close_price"] > 0
            print(f"\nIBM: quotes, daily history and today's row {MINUTE - left():.1f} s after the click")
            assert time.monotonic() < deadline

            # Grafana: the symbol variable lists IBM and the price panel has its value, as the panel's SQL
            # answers to Grafana's read-only user (IBM picked, and "All").
            variable = [v for v in dashboard()["templating"]["list"] if v["name"] == "symbol"][0]
            assert ("IBM",) in run_as_grafana(mysql_db, variable["query"])[1]
            [trend] = [p for p in panels() if p["title"] == "Stock Price Trends (30 days)"]
            now = utc_now()
            for picked in (["IBM"], None):
                sql = expand(trend["targets"][0]["rawSql"], now - timedelta(days=30), now, picked)
                values = [r[2] for r in run_as_grafana(mysql_db, sql)[1] if r[1] == "IBM"]
                assert values and all(v > 0 for v in values), picked

            # Remove it: the producer stops sending IBM, its history stays.
            page.goto(stack.flask_url + "/")
            page.locator('#my-symbols li[data-symbol="IBM"] input[type="submit"]').click()
            expect(page.locator(".flash")).to_contain_text("No longer following IBM")
        finally:
            browser.close()
        wait_for(lambda: "no longer quoting IBM" in producer.output(), timeout=MINUTE, interval=0.5,
                 what="the producer stopping IBM")
        stopped_at = utc_now()
        aapl = probe.db.realtime_prices.count_documents({"symbol": "AAPL"})
        wait_for(lambda: probe.db.realtime_prices.count_documents({"symbol": "AAPL"}) >= aapl + 5, timeout=60,
                 what="five more AAPL quotes after IBM stopped")
        assert probe.db.realtime_prices.count_documents({"symbol": "IBM", "timestamp": {"$gt": stopped_at}}) == 0
        assert probe.mysql_rows("SELECT COUNT(*) AS n FROM daily_aggregates WHERE symbol = 'IBM'")[0]["n"] > 30
