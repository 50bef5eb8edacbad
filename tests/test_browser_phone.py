"""The two pages in headless Chromium at a phone's width (390 px) and a laptop's (1280 px),
in the light and the dark system setting: nothing scrolls sideways, the charts follow the
theme, times are the viewer's with the market's beside them, the CSV link downloads the
series the chart draws, and screenshots of each case go to TEST_ARTIFACTS/screenshots."""

from __future__ import annotations

import csv
import io
import json
import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bench.webdata import quote
from database.mongo.prices import insert_quotes
from tests.support import ARTIFACTS
from tests.test_browser_dashboard import CHROMIUM, served  # noqa: F401 - `served` is the fixture used here

pytestmark = pytest.mark.browser

SHOTS = ARTIFACTS / "screenshots"
VIEWER_TZ = "Europe/Berlin"  # not the market's (America/New_York): both must be shown
PAGES = {"index": "/", "dashboard": "/dashboard?symbol=AAPL&days=90"}
# Everything that sticks out to the right of the viewport (what a sideways scroll would reveal).
OVERFLOW_JS = """() => {
  const width = document.documentElement.clientWidth;
  const out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width && r.right > width + 0.5 && getComputedStyle(el).display !== 'none') {
      const cls = typeof el.className === 'string' && el.className ? '.' + el.className.split(' ').join('.') : '';
      out.push(el.tagName.toLowerCase() + (el.id ? '#' + el.id : '') + cls + ' right=' + Math.round(r.right));
    }
  }
  return {scrollWidth: document.documentElement.scrollWidth, clientWidth: width, outside: out.slice(0, 10)};
}"""


def _launch(pw: Any) -> Any:
    return pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu",
                                                             "--disable-background-networking"])


@pytest.mark.parametrize("width", [390, 1280])
def test_pages_fit_the_width_in_light_and_dark_with_screenshots(served: Any, width: int) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    problems: list[str] = []
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            for scheme in ("light", "dark"):
                context = browser.new_context(viewport={"width": width, "height": 844 if width < 600 else 900},
                                              color_scheme=scheme, timezone_id=VIEWER_TZ,
                                              is_mobile=width < 600, has_touch=width < 600)
                page = context.new_page()
                page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
                for name, path in PAGES.items():
                    page.goto(served.url + path)
                    if name == "dashboard":
                        expect(page.locator('#daily-chart[data-rendered="true"]')).to_be_attached(timeout=30_000)
                        expect(page.locator('#intraday-chart[data-rendered="true"]')).to_be_attached(timeout=30_000)
                        assert page.locator("#daily-chart").get_attribute("data-theme") == scheme
                        paper = page.evaluate("document.getElementById('daily-chart').layout.paper_bgcolor")
                        assert paper == ("#161b22" if scheme == "dark" else "#ffffff"), paper
                    else:
                        expect(page.locator('tr[data-symbol="AAPL"] .time time')).to_contain_text("market")
                    background = page.evaluate("getComputedStyle(document.body).backgroundColor")
                    assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(246, 248, 250)"), background
                    found = page.evaluate(OVERFLOW_JS)
                    assert found["scrollWidth"] <= found["clientWidth"], (name, width, scheme, found)
                    assert found["outside"] == [], (name, width, scheme, found)
                    page.screenshot(path=str(SHOTS / f"{name}-{width}-{scheme}.png"), full_page=True)
                context.close()
        finally:
            browser.close()
    assert problems == [], problems
    for name in PAGES:
        for scheme in ("light", "dark"):
            assert (SHOTS / f"{name}-{width}-{scheme}.png").stat().st_size > 10_000


def test_times_theme_switch_and_csv_download_in_the_browser(served: Any) -> None:  # noqa: F811
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="light",
                                          timezone_id=VIEWER_TZ, accept_downloads=True)
            page = context.new_page()
            page.goto(served.url + "/")
            cell = page.locator('tr[data-symbol="AAPL"] .time time')
            iso = cell.get_attribute("datetime")
            # The viewer's clock and the market's, each with its zone, e.g. "16:30:05 GMT+1 · 10:30:05 EST market".
            expected = page.evaluate("""iso => {
              const f = tz => new Intl.DateTimeFormat('en-CA', {timeZone: tz, hour: '2-digit', minute: '2-digit',
                second: '2-digit', hourCycle: 'h23'}).format(new Date(iso));
              return [f('Europe/Berlin'), f('America/New_York')];
            }""", iso)
            text = cell.text_content() or ""  # on a phone the two sides are stacked (app.css)
            assert text.startswith(expected[0]) and f"· {expected[1]} " in text and text.endswith("market"), text
            assert "UTC" not in text
            # A quote that arrives while the page is open (live.js writes UTC text) is shown the same way.
            fresh = quote("AAPL", served.now + timedelta(seconds=15), 99)
            assert insert_quotes(served.db, [fresh]) == (1, 0)
            local = page.evaluate("""iso => new Intl.DateTimeFormat('en-CA', {timeZone: 'Europe/Berlin',
              hour: '2-digit', minute: '2-digit', second: '2-digit', hourCycle: 'h23'}).format(new Date(iso))""",
                                  fresh["timestamp"].isoformat())
            expect(cell).to_contain_text(local, timeout=20_000)
            expect(cell).to_contain_text("market")
            assert "UTC" not in (cell.text_content() or "")

            page.goto(served.url + "/dashboard?symbol=AAPL&days=90")
            chart = page.locator('#daily-chart[data-rendered="true"]')
            expect(chart).to_be_attached(timeout=30_000)
            expect(page.locator('#intraday-chart[data-rendered="true"]')).to_be_attached(timeout=30_000)
            latest = page.locator("#latest-time").text_content() or ""
            assert " · " in latest and latest.endswith("market"), latest
            title = page.evaluate("document.getElementById('intraday-chart').layout.xaxis.title.text")
            assert title.startswith("Market time (") and "America/New_York" in title, title
            # The system switches to dark with the page open: the charts follow without a reload.
            page.emulate_media(color_scheme="dark")
            expect(chart).to_have_attribute("data-theme", "dark", timeout=10_000)
            assert page.evaluate("document.getElementById('daily-chart').layout.paper_bgcolor") == "#161b22"

            shown = json.loads(page.locator("#daily-figure").text_content() or "{}")
            traces = {t["name"]: t for t in shown["data"]}
            with page.expect_download() as info:
                page.click("#daily-csv")
            download = info.value
            name = download.suggested_filename
            assert name.startswith("AAPL-daily-") and name.endswith(".csv"), name
            rows = list(csv.DictReader(io.StringIO(Path(download.path()).read_text(encoding="utf-8"))))
            assert [r["date"] for r in rows] == traces["AAPL"]["x"]
            assert [float(r["close_price"]) for r in rows] == traces["AAPL"]["close"]
            assert [float(r["macd"]) if r["macd"] else None for r in rows] == traces["MACD (12, 26)"]["y"]
            context.close()
        finally:
            browser.close()


def test_dashboard_tables_fit_a_phone_with_wide_figures_and_a_fired_price_alert(served: Any) -> None:  # noqa: F811
    """Seen on the local stack: at 390 px the performance table (a "simulated" badge under each
    symbol, two-digit returns) and the price-alert table (a fired re-arming rule with its Delete
    button) stuck out 9 and 19 px to the right, so the dashboard scrolled sideways."""
    from playwright.sync_api import expect, sync_playwright

    from database.mysql import connect
    from tests.support.accounts import outbox_mails
    from tests.test_browser_symbols import sign_up_and_in

    conn = connect(served.settings)
    try:
        with conn.cursor() as cur:  # the figures the local stack's backfill gave (IBM added: 8 rows)
            cur.execute("UPDATE stock_performance SET return_7d_pct = -5.82, return_30d_pct = -15.75, "
                        "rsi_14 = 33.9, trend = 'below_sma'")
        conn.commit()
    finally:
        conn.close()
    email = f"phone-{uuid.uuid4().hex[:8]}@example.com"
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            sign_up_and_in(page, served.url, email, lambda: outbox_mails(served.outbox, email)[-1])
            page.goto(served.url + "/dashboard?symbol=AAPL")
            page.select_option("#level-form #direction", "below")
            page.fill("#level-form #level", "1000")
            page.select_option("#level-form #mode", "rearm")
            page.click("#level-form [type=submit]")
            expect(page.locator("#levels tr.level")).to_have_count(1)
            # The alerts service's record of it having fired: the longest row the table shows.
            served.db.price_level_rules.update_many({}, {"$set": {"armed": False, "fired_at": served.now,
                                                                  "fired_price": 333.0, "as_of": served.now}})
            page.reload()
            expect(page.locator("#levels")).to_contain_text("waiting for the price to go back")
            found = page.evaluate(OVERFLOW_JS)
            assert found["scrollWidth"] <= found["clientWidth"] and found["outside"] == [], found
        finally:
            browser.close()


def test_on_a_phone_every_quote_still_says_its_source(served: Any) -> None:  # noqa: F811
    """Seen on the local stack: at 390 px the Source column is hidden and only simulated quotes kept
    a mark (the badge), so a Yahoo quote said nothing about where it came from."""
    from playwright.sync_api import expect, sync_playwright

    yahoo = quote("MSFT", served.now + timedelta(seconds=5), 50, "yahoo")
    assert insert_quotes(served.db, [yahoo]) == (1, 0)
    with sync_playwright() as pw:
        browser = _launch(pw)
        try:
            page = browser.new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
            page.goto(served.url + "/")
            msft, aapl = page.locator('tr[data-symbol="MSFT"]'), page.locator('tr[data-symbol="AAPL"]')
            expect(msft.locator("td.source")).to_be_hidden()
            expect(msft.locator(".time .src")).to_be_visible()
            expect(msft.locator(".time .src")).to_have_text("yahoo")
            expect(aapl.locator(".time .badge.sim")).to_be_visible()  # simulated: the badge says it, once
            expect(aapl.locator(".time .src")).to_be_hidden()
            pushed = quote("MSFT", served.now + timedelta(seconds=10), 51, "alpha_vantage")
            assert insert_quotes(served.db, [pushed]) == (1, 0)
            expect(msft.locator(".time .src")).to_have_text("alpha_vantage", timeout=30_000)
            expect(msft.locator(".time .src")).to_be_visible()
            found = page.evaluate(OVERFLOW_JS)
            assert found["scrollWidth"] <= found["clientWidth"] and found["outside"] == [], found
            page.set_viewport_size({"width": 1280, "height": 900})  # the laptop has the column instead
            expect(msft.locator("td.source")).to_have_text("alpha_vantage")
            expect(msft.locator(".time .src")).to_be_hidden()
        finally:
            browser.close()
