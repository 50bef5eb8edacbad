"""The Flask app through its test client against real SecantusDB and MariaDB:
pages and JSON endpoints with and without data, bad parameters, security
headers, offline plotly, and /healthz with a stopped database."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient

from bench.webdata import seed_alert_log, seed_daily, seed_mongo_extras, seed_quotes, utcnow, web_settings
from flask_web_app.app import create_app
from scripts.servers import SecantusMongo
from scripts.waiting import free_port

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]


def make_web(mongo_uri: str, mysql: dict[str, Any], mysql_db: str, instance: Path, **overrides: Any) -> SimpleNamespace:
    settings = web_settings(mongo_uri, mysql, mysql_db, uuid.uuid4().hex[:10], **overrides)
    app = create_app(settings, instance_path=str(instance))
    app.config["TESTING"] = True
    return SimpleNamespace(app=app, client=app.test_client(), settings=settings)


@pytest.fixture
def web(mongo: SecantusMongo, mysql_server: dict[str, Any], mysql_db: str, tmp_path: Path) -> Iterator[SimpleNamespace]:
    w = make_web(mongo.uri, mysql_server, mysql_db, tmp_path / "instance")
    yield w
    w.app.extensions["stores"].close()


@pytest.fixture
def seeded(web: SimpleNamespace) -> SimpleNamespace:
    now = utcnow()
    seed_quotes(web.settings, SYMBOLS, 20, now)
    seed_daily(web.settings, SYMBOLS, 40, now.date())
    seed_alert_log(web.settings, "AAPL", now)
    seed_mongo_extras(web.settings, "AAPL", now)
    web.now = now
    return web


def embedded_json(html: str, element_id: str) -> Any:
    m = re.search(rf'<script type="application/json" id="{element_id}">(.*?)</script>', html, re.S)
    assert m, f"no {element_id} block"
    return json.loads(m.group(1))


def get_json(client: FlaskClient, url: str, status: int = 200) -> Any:
    resp = client.get(url)
    assert resp.status_code == status, (url, resp.status_code, resp.get_data(as_text=True)[:300])
    assert resp.is_json, url
    return resp.get_json()


def test_empty_pages_say_what_is_missing(web: SimpleNamespace) -> None:
    index = web.client.get("/")
    assert index.status_code == 200
    html = index.get_data(as_text=True)
    assert "No quotes yet — is the producer running?" in html
    assert "no quote yet" in html and "No alerts yet" in html

    dash = web.client.get("/dashboard")
    assert dash.status_code == 200
    html = dash.get_data(as_text=True)
    assert "No daily aggregates yet — run <code>docker exec batch python batch/daily_aggregation.py</code>" in html
    assert "No quotes for AAPL yet — is the producer running?" in html
    assert "No performance figures yet" in html and "No alerts for AAPL yet" in html
    assert "No news about AAPL yet" in html
    assert "plotly.min.js" not in html  # no chart, no 4 MB download

    latest = get_json(web.client, "/api/quotes/latest")
    assert latest["quotes"] == [] and latest["missing"] == SYMBOLS
    assert get_json(web.client, "/api/quotes/AAPL/intraday")["points"] == []
    assert get_json(web.client, "/api/quotes/AAPL/recent")["points"] == []
    assert get_json(web.client, "/api/daily/AAPL")["rows"] == []
    assert get_json(web.client, "/api/performance")["rows"] == []
    assert get_json(web.client, "/api/alerts")["alerts"] == []
    assert get_json(web.client, "/api/alert-history")["alerts"] == []
    assert get_json(web.client, "/api/news/AAPL")["articles"] == []


def test_a_symbol_with_one_quote_has_a_sparkline_dot_and_says_so(web: SimpleNamespace) -> None:
    # Just started: one quote so far. A polyline of one point draws nothing, so the cell was blank.
    seed_quotes(web.settings, ["AAPL"], 1, utcnow())
    html = web.client.get("/").get_data(as_text=True)
    aapl = re.search(r'<tr data-symbol="AAPL".*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
    points = re.search(r'points="([^"]*)"', aapl).group(1)  # type: ignore[union-attr]
    assert points == "118.0,16.0 118.0,16.0" and 'stroke-linecap="round"' in aapl  # a dot at the newest place
    assert '<small class="spark-note">one quote so far</small>' in aapl


def test_pages_with_data(seeded: SimpleNamespace) -> None:
    html = seeded.client.get("/").get_data(as_text=True)
    assert "No quotes yet" not in html
    aapl = re.search(r'<tr data-symbol="AAPL".*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
    assert re.search(r'class="num price">\d+\.\d\d<', aapl)
    assert '<span class="badge sim">simulated</span>' in aapl  # simulated data is marked, not hidden
    points = re.search(r'points="([^"]+)"', aapl).group(1)  # type: ignore[union-attr]
    assert len(points.split()) == 20  # sparkline of the 20 stored quotes
    assert re.search(r'<small class="spark-note" hidden>one quote so far</small>', aapl)
    live = embedded_json(html, "live-config")
    assert len(live["spark"]["MSFT"]) == 20 and live["refresh_ms"] == 5000
    assert "AAPL moved +6.10%" in html  # latest alert_history entry

    dash = seeded.client.get("/dashboard?symbol=AAPL").get_data(as_text=True)
    fig = embedded_json(dash, "daily-figure")
    kinds = [t["type"] for t in fig["data"]]
    # Bollinger band (drawn under the candles), candles, SMA-20, EMA-20, volume, RSI-14, MACD panel.
    assert kinds == ["scatter", "scatter", "candlestick", "scatter", "scatter", "bar", "scatter", "bar", "scatter",
                     "scatter"]
    upper, lower, candle, sma, ema, volume, rsi, hist, macd, signal = fig["data"]
    assert len(candle["x"]) == 30 and candle["x"] == sorted(candle["x"])
    # 40 stored days, SMA-20 defined from the 20th: gaps stay gaps (null), never invented values.
    assert sma["y"][:9] == [None] * 9 and None not in sma["y"][9:]
    assert rsi["yaxis"] == "y3" and [s["y0"] for s in fig["layout"]["shapes"]] == [30, 70]
    # EMA-20 and the bands from the 20th stored day, MACD from the 26th, its signal from the 34th.
    assert ema["y"][:9] == [None] * 9 and None not in ema["y"][9:] and lower["fill"] == "tonexty"
    assert all(lo < up for lo, up in zip(lower["y"][9:], upper["y"][9:], strict=True))
    assert macd["y"][:15] == [None] * 15 and None not in macd["y"][15:] and signal["y"][23] is not None
    assert {t["yaxis"] for t in (hist, macd, signal)} == {"y4"} and volume["yaxis"] == "y2"
    intraday = embedded_json(dash, "intraday-figure")
    assert len(intraday["data"][0]["x"]) == 20
    assert 'id="performance"' in dash and dash.count("<tr") >= 8
    # Stored text is escaped, never rendered as markup.
    assert "&lt;script&gt;x&lt;/script&gt;" in dash and "<script>x</script>" not in dash
    assert "AAPL headline 0 &lt;b&gt;not bold&lt;/b&gt;" in dash
    assert 'src="/vendor/plotly.min.js' in dash

    ninety = embedded_json(seeded.client.get("/dashboard?symbol=msft&days=90").get_data(as_text=True), "daily-figure")
    assert len(ninety["data"][0]["x"]) == 40  # all there is


def test_json_endpoints_with_data(seeded: SimpleNamespace) -> None:
    c = seeded.client
    latest = get_json(c, "/api/quotes/latest?symbols=AAPL,nvda")
    assert [q["symbol"] for q in latest["quotes"]] == ["AAPL", "NVDA"] and latest["missing"] == []
    q = latest["quotes"][0]
    assert q["source"] == "simulated" and q["timestamp"].endswith("Z") and isinstance(q["price"], float)

    assert len(get_json(c, "/api/quotes/AAPL/intraday")["points"]) == 20
    last_minute = get_json(c, "/api/quotes/AAPL/intraday?minutes=1")["points"]
    assert 4 <= len(last_minute) <= 5  # 15 s apart, the window ends at the latest quote
    start = (seeded.now - timedelta(minutes=2)).isoformat()
    window = c.get("/api/quotes/AAPL/intraday", query_string={"start": start, "end": seeded.now.isoformat()}).get_json()
    assert len(window["points"]) == 8  # [now-2min, now): 8 quotes of 15 s, the one at `now` excluded
    assert len(get_json(c, "/api/quotes/TSLA/recent?limit=5")["points"]) == 5

    daily = get_json(c, "/api/daily/AAPL?days=90")
    assert len(daily["rows"]) == 40 and isinstance(daily["rows"][0]["close_price"], float)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d", daily["rows"][0]["date"])
    assert {r["symbol"] for r in get_json(c, "/api/performance")["rows"]} == set(SYMBOLS)
    alerts = get_json(c, "/api/alerts?symbol=AAPL&limit=1")["alerts"]
    assert len(alerts) == 1 and alerts[0]["rule"] == "volume_spike"
    assert get_json(c, "/api/alerts?symbol=MSFT")["alerts"] == []
    assert get_json(c, "/api/alert-history")["alerts"][0]["symbol"] == "AAPL"
    assert len(get_json(c, "/api/news/AAPL?limit=2")["articles"]) == 2


@pytest.mark.parametrize(("url", "status", "words"), [
    ("/api/daily/ZZZZ", 404, "unknown symbol"),
    ("/api/daily/AAPL?days=0", 400, "days"),
    ("/api/daily/AAPL?days=abc", 400, "days"),
    ("/api/daily/AAPL?days=100000", 400, "days"),
    ("/api/quotes/latest?symbols=AAPL,XXX", 404, "unknown symbol"),
    ("/api/quotes/%3Cscript%3E/intraday", 404, "unknown symbol"),
    ("/api/quotes/AAPL/intraday?start=2025-01-02T00:00:00Z&end=2025-01-01T00:00:00Z", 400, "before"),
    ("/api/quotes/AAPL/intraday?start=yesterday", 400, "ISO 8601"),
    ("/api/quotes/AAPL/intraday?start=2025-01-01T00:00:00Z&end=2025-01-20T00:00:00Z", 400, "7 days"),
    ("/api/quotes/AAPL/intraday?minutes=10&start=2025-01-01T00:00:00Z", 400, "either"),
    ("/api/quotes/AAPL/intraday?minutes=-5", 400, "minutes"),
    ("/api/quotes/AAPL/recent?limit=5000", 400, "limit"),
    # Out of range: once a 500 (datetime overflow); every time and number parameter answers 400.
    ("/api/quotes/AAPL/intraday?end=0001-01-01T00:00:00Z", 400, "1970"),
    ("/api/quotes/AAPL/intraday?start=0001-01-01T00:00:00Z", 400, "1970"),
    ("/api/quotes/AAPL/intraday?end=9999-12-31T23:59:59Z", 400, "2199"),
    ("/api/quotes/AAPL/intraday?end=0001-01-01T00:00:00%2B05:00", 400, "ISO 8601"),
    ("/api/quotes/AAPL/intraday?end=9999-12-31T23:59:59-05:00", 400, "ISO 8601"),
    ("/api/quotes/AAPL/intraday?start=1969-12-31T23:59:59Z&end=1970-01-01T01:00:00Z", 400, "1970"),
    ("/api/quotes/AAPL/intraday?minutes=99999999999", 400, "minutes"),
    ("/api/quotes/AAPL/intraday?minutes=0", 400, "minutes"),
    ("/api/quotes/AAPL/intraday?minutes=10081", 400, "minutes"),
    ("/api/quotes/AAPL/recent?limit=0", 400, "limit"),
    ("/api/quotes/AAPL/recent?limit=-1", 400, "limit"),
    ("/api/daily/AAPL?days=99999999999999999999", 400, "days"),
    ("/api/alerts?limit=201", 400, "limit"),
    ("/api/alert-history?limit=0", 400, "limit"),
    ("/api/alert-history?limit=1e3", 400, "limit"),
    ("/api/news/AAPL?limit=101", 400, "limit"),
    ("/api/alerts?symbol=FOO", 404, "unknown symbol"),
    ("/api/alerts?limit=x", 400, "limit"),
    ("/api/news/FOO", 404, "unknown symbol"),
    ("/api/no-such-thing", 404, "no such endpoint"),
])
def test_bad_parameters_are_json_errors(web: SimpleNamespace, url: str, status: int, words: str) -> None:
    body = get_json(web.client, url, status)
    assert body["status"] == status and words in body["error"]


def test_bad_page_parameters(web: SimpleNamespace) -> None:
    resp = web.client.get("/dashboard?symbol=ZZZ")
    assert resp.status_code == 404 and "Unknown symbol" in resp.get_data(as_text=True)
    resp = web.client.get("/dashboard?days=45")
    assert resp.status_code == 400 and "days must be one of 30, 90" in resp.get_data(as_text=True)
    assert web.client.post("/api/quotes/latest").status_code in (400, 405)  # no POST API; CSRF or 405, never 500


def test_security_headers_csp_and_offline_plotly(seeded: SimpleNamespace) -> None:
    for url in ("/", "/dashboard", "/register", "/login", "/api/quotes/latest", "/healthz"):
        resp = seeded.client.get(url)
        assert resp.headers["X-Content-Type-Options"] == "nosniff", url
        assert resp.headers["X-Frame-Options"] == "DENY", url
        csp = resp.headers["Content-Security-Policy"]
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        script_src = re.search(r"script-src ([^;]+)", csp).group(1)  # type: ignore[union-attr]
        assert "'unsafe-inline'" not in script_src and "'unsafe-eval'" not in script_src and "http" not in csp
        if resp.mimetype == "text/html":
            html = resp.get_data(as_text=True)
            for tag in re.findall(r"<script\b[^>]*>", html):
                # Every script is external (same origin) or inert JSON data: CSP-compliant.
                assert ('src="/' in tag) or ('type="application/json"' in tag), tag
            assert "cdn" not in html.lower()
    js = seeded.client.get("/vendor/plotly.min.js")
    assert js.status_code == 200 and js.mimetype == "text/javascript"
    assert js.get_data()[:40].lstrip().startswith(b"/**\n* plotly.js v")
    assert "max-age" in js.headers["Cache-Control"]


def test_healthz_reflects_a_stopped_database(mysql_server: dict[str, Any], mysql_db: str, tmp_path: Path) -> None:
    own = SecantusMongo().start()  # a MongoDB of its own, so stopping it disturbs no other test
    try:
        w = make_web(own.uri, mysql_server, mysql_db, tmp_path)
        ok = get_json(w.client, "/healthz", 200)
        assert ok == {"mongodb": {"ok": True}, "mysql": {"ok": True}, "status": "ok",
                      "sources": ["producer: no source status yet (is the producer running?)"]}

        own.stop()
        down = get_json(w.client, "/healthz", 503)
        assert down["mongodb"]["ok"] is False and down["mysql"]["ok"] is True and down["status"] == "degraded"
        assert down["sources"] == ["source status unavailable: MongoDB is unreachable"]
        page = w.client.get("/")
        assert page.status_code == 200 and "MongoDB is unreachable right now" in page.get_data(as_text=True)
        assert "MongoDB is unreachable" in get_json(w.client, "/api/quotes/latest", 503)["error"]
        dash = w.client.get("/dashboard").get_data(as_text=True)
        assert "MongoDB is unreachable" in dash and "No daily aggregates yet" in dash  # MySQL part still shown

        own.start()
        assert get_json(w.client, "/healthz", 200)["status"] == "ok"
        w.app.extensions["stores"].close()
    finally:
        own.stop()

    # MySQL not running at the configured address.
    w = make_web(own.uri, mysql_server, mysql_db, tmp_path, mysql_port=free_port())
    try:
        body = get_json(w.client, "/healthz", 503)
        assert body["mysql"]["ok"] is False
        dash = w.client.get("/dashboard")
        assert dash.status_code == 200 and "MySQL is unreachable right now" in dash.get_data(as_text=True)
        assert "MySQL is unreachable" in get_json(w.client, "/api/daily/AAPL", 503)["error"]
        assert get_json(w.client, "/api/alerts", 503)["status"] == 503
    finally:
        w.app.extensions["stores"].close()


def test_csv_download_is_the_daily_series_shown(seeded: SimpleNamespace) -> None:
    import csv
    import io

    from bench.webdata import mysql_conn

    # A stored text that a spreadsheet would run as a formula (source is free text to MySQL).
    conn = mysql_conn(seeded.settings)
    try:
        with conn.cursor() as cur:
            cur.execute("UPDATE daily_aggregates SET source = %s WHERE symbol = 'AAPL' ORDER BY date DESC LIMIT 1",
                        ("=HYPERLINK(1)",))
    finally:
        conn.close()

    dash = seeded.client.get("/dashboard?symbol=AAPL&days=90").get_data(as_text=True)
    href = re.search(r'<a id="daily-csv" href="([^"]+)" download>', dash).group(1)  # type: ignore[union-attr]
    assert href == "/api/daily/AAPL/csv?days=90"
    resp = seeded.client.get(href)
    assert resp.status_code == 200
    assert resp.headers["Content-Type"] == "text/csv; charset=utf-8"
    fig = embedded_json(dash, "daily-figure")
    traces = {t["name"]: t for t in fig["data"]}
    dates = traces["AAPL"]["x"]
    assert resp.headers["Content-Disposition"] == f'attachment; filename="AAPL-daily-{dates[0]}-to-{dates[-1]}.csv"'
    assert resp.headers["X-Content-Type-Options"] == "nosniff"

    rows = list(csv.DictReader(io.StringIO(resp.get_data(as_text=True))))
    # Row for row the chart's points: the same days, prices and indicators.
    assert [r["date"] for r in rows] == dates and len(rows) == 40

    def column(name: str) -> list[float | None]:
        return [float(r[name]) if r[name] else None for r in rows]

    assert column("close_price") == traces["AAPL"]["close"] and column("high_price") == traces["AAPL"]["high"]
    assert column("sma_20") == traces["SMA-20 (Bollinger middle)"]["y"]
    assert column("ema_20") == traces["EMA-20"]["y"]
    assert column("bb_upper") == traces["Bollinger upper (20, 2σ)"]["y"]
    assert column("bb_lower") == traces["Bollinger lower (20, 2σ)"]["y"]
    assert column("rsi_14") == traces["RSI-14"]["y"]
    assert column("macd") == traces["MACD (12, 26)"]["y"] and column("macd_hist") == traces["MACD histogram"]["y"]
    assert [int(r["total_volume"]) for r in rows] == traces["Volume"]["y"]
    assert rows[-1]["source"] == "'=HYPERLINK(1)" and rows[0]["source"] == "simulated"  # never a formula

    assert seeded.client.get("/api/daily/NOPE/csv").status_code == 404
    assert seeded.client.get("/api/daily/AAPL/csv?days=0").status_code == 400


def test_dashboard_before_the_indicator_migration_draws_what_there_is(seeded: SimpleNamespace) -> None:
    from bench.webdata import mysql_conn

    conn = mysql_conn(seeded.settings)
    try:
        with conn.cursor() as cur:  # daily_aggregates as an install from before migration 002 has it
            cur.execute("ALTER TABLE daily_aggregates DROP COLUMN ema_20, DROP COLUMN bb_middle, DROP COLUMN bb_upper,"
                        " DROP COLUMN bb_lower, DROP COLUMN macd, DROP COLUMN macd_signal, DROP COLUMN macd_hist")
    finally:
        conn.close()
    dash = seeded.client.get("/dashboard?symbol=AAPL")
    assert dash.status_code == 200
    fig = embedded_json(dash.get_data(as_text=True), "daily-figure")
    traces = {t["name"]: t for t in fig["data"]}
    assert len(traces["AAPL"]["x"]) == 30 and None not in traces["SMA-20 (Bollinger middle)"]["y"][9:]
    assert set(traces["EMA-20"]["y"]) == {None} and set(traces["MACD (12, 26)"]["y"]) == {None}
    assert "unreachable" not in dash.get_data(as_text=True)
    assert seeded.client.get("/api/daily/AAPL/csv").status_code == 200


def test_dashboard_latest_quote_says_its_source(seeded: SimpleNamespace) -> None:
    """Seen on the local stack: the dashboard's "Latest: 203.41 at …" named no source for a Yahoo
    quote (only simulated ones had a badge); every quote says where it came from."""
    from bench.webdata import quote
    from database.mongo import get_db, make_client
    from database.mongo.prices import insert_quotes

    dash = seeded.client.get("/dashboard?symbol=AAPL").get_data(as_text=True)
    assert '· source <span id="latest-source">simulated</span>' in dash
    client = make_client(seeded.settings)
    try:
        assert insert_quotes(get_db(client, seeded.settings),
                             [quote("AAPL", seeded.now + timedelta(seconds=5), 99, "yahoo")]) == (1, 0)
    finally:
        client.close()
    dash = seeded.client.get("/dashboard?symbol=AAPL").get_data(as_text=True)
    assert '· source <span id="latest-source">yahoo</span>' in dash
