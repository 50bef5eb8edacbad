"""Adding IBM on the dashboard in headless Chromium, the app under gunicorn (2 workers) with Yahoo's
search on recorded answers: sign up, type a ticker (Yahoo's suggestions appear), a bad one is refused
next to the field, IBM is added and its first quote shows on / without a reload, its dashboard
answers, and "Remove" drops it. No CSP violation, no console error."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from bench.webdata import quote, utcnow, web_settings
from database.mongo import SYMBOLS, get_db, make_client
from database.mongo.prices import insert_quotes
from scripts.servers import SecantusMongo
from tests.support.accounts import confirmation_link, outbox_mails
from tests.support.http_fixture import RecordedApi
from tests.support.web_server import gunicorn_app
from tests.support.yahoo_api import COOKIE, serve_yahoo
from tests.test_browser_dashboard import CHROMIUM
from tests.test_web_symbols import SEARCH, yahoo_search

pytestmark = pytest.mark.browser
PASSWORD = "Quiet-meadow-58"


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
            page.goto(served.url + "/register")
            page.fill("#email", "ibm.fan@example.com")
            page.fill("#name", "Ibm Fan")
            page.fill("#password", PASSWORD)
            page.fill("#confirm", PASSWORD)
            page.click("#submit")
            [mail] = outbox_mails(served.outbox, "ibm.fan@example.com")
            page.goto(served.url + confirmation_link(mail))
            page.goto(served.url + "/login?next=/")
            page.fill("#email", "ibm.fan@example.com")
            page.fill("#password", PASSWORD)
            page.click("#submit")

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
