"""batch/backfill.py against SecantusDB, MariaDB and a recorded-HTTP Alpha Vantage and Yahoo."""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pymysql
import pytest
from pymongo.database import Database

from batch.backfill import backfill
from batch.daily_aggregation import run
from batch.indicators import daily_indicators, rsi, sma
from config.settings import Settings
from market_data.alpha_vantage import alpha_vantage_client
from market_data.market_hours import MarketHours
from market_data.yahoo_finance import YahooFinanceClient
from tests.batch_data import day_quotes, load, rows
from tests.support.http_fixture import RecordedApi, Request, Response
from tests.support.yahoo_api import CHART, COOKIE, CRUMB, CRUMB_PATH, answer, has_cookie, serve_yahoo

FIXTURES = Path(__file__).parent / "fixtures"
# Synthesized in the exact TIME_SERIES_DAILY "compact" format (100 trading days up to
# 2026-01-13, with the market holidays absent); not a recording of live data.
DAILY_FIXTURE = "alpha_vantage_daily_compact_synthetic_aapl.json"
TODAY = date(2026, 1, 14)

# The batch fixtures (batch_stack, settings, mdb, conn): MongoDB and MariaDB only.
pytest_plugins = ["tests.batch_support"]


def _stored(conn: pymysql.Connection, symbol: str) -> list[dict]:
    return rows(conn, "SELECT * FROM daily_aggregates WHERE symbol = %s ORDER BY date", (symbol,))


def test_backfill_real_then_simulated_history_and_indicators_on_the_first_daily_run(
        settings: Settings, mdb: Database, conn: pymysql.Connection, recorded_api: RecordedApi) -> None:
    def answer(req: Request) -> Response:
        assert req.query["function"] == "TIME_SERIES_DAILY"
        if req.query["symbol"] == "AAPL":
            return Response.fixture(DAILY_FIXTURE)
        return Response.fixture("alpha_vantage_information.json")  # the daily limit, as a 200

    recorded_api.route("/query", answer)
    settings = settings.model_copy(update={
        "alpha_vantage_api_key": "demo-key", "alpha_vantage_url": recorded_api.url + "/query",
        "alpha_vantage_calls_per_minute": 10, "alpha_vantage_calls_per_day": 10, "backfill_days": 120,
        "simulation_seed": 7,
    })
    summary = backfill(settings, db=mdb, conn=conn, today=TODAY, client=alpha_vantage_client(settings, mdb))
    # 120 NYSE sessions each; AAPL one more: the synthetic real series has a bar on Labor Day
    # 2025, which is kept (a source's bar is not second-guessed by the calendar).
    assert summary.symbols == ["AAPL", "MSFT"] and summary.inserted == 121 + 120
    assert len(recorded_api.calls("/query")) == 2  # one call per symbol, from the shared budget
    assert mdb.api_budget.count_documents({}) == 2  # minute and day counters in MongoDB

    window = MarketHours("XNYS").sessions_before(TODAY, 120)
    series = json.loads((FIXTURES / DAILY_FIXTURE).read_text())["Time Series (Daily)"]
    real_days = sorted(date.fromisoformat(d) for d in series)
    aapl = _stored(conn, "AAPL")
    # 100 real bars (holidays absent) plus simulated days before the first real one.
    assert [r["date"] for r in aapl if r["source"] == "real"] == real_days
    simulated = [r for r in aapl if r["source"] == "simulated"]
    assert simulated and all(r["date"] < real_days[0] for r in simulated)
    assert {r["date"] for r in aapl} == set(window) | {date(2025, 9, 1)}
    last = aapl[-1]
    assert last["date"] == date(2026, 1, 13)
    assert float(last["close_price"]) == pytest.approx(float(series["2026-01-13"]["4. close"]))
    assert all(r["tick_count"] == 0 and r["volatility"] is None for r in aapl)
    # The simulated past leads into the real series: anchored on its first bar.
    first_real = series[real_days[0].isoformat()]
    assert float(simulated[-1]["close_price"]) == pytest.approx(float(first_real["1. open"]), abs=1e-3)

    msft = _stored(conn, "MSFT")  # refused by the API: all simulated, labelled so
    assert len(msft) == 120 and {r["source"] for r in msft} == {"simulated"}
    assert [r["date"] for r in msft] == window

    # Indicators over the stored closes: NULL until enough days, then the formulas.
    closes = [float(r["close_price"]) for r in aapl]
    assert all(r["sma_20"] is None for r in aapl[:19]) and aapl[19]["sma_20"] is not None
    assert all(r["rsi_14"] is None for r in aapl[:14]) and aapl[14]["rsi_14"] is not None
    assert float(last["sma_20"]) == pytest.approx(sma(closes), abs=1e-4)
    assert float(last["rsi_14"]) == pytest.approx(rsi(closes), abs=1e-3)
    # EMA-20, Bollinger (20, 2) and MACD (12, 26, 9) on backfilled days too, at the columns' precision.
    for i, want in enumerate(daily_indicators(closes)):
        for column, value in dataclasses.asdict(want).items():
            if value is None:
                assert aapl[i][column] is None, (i, column)
            else:
                places = 6 if column.startswith("macd") else (3 if column == "rsi_14" else 4)
                assert float(aapl[i][column]) == pytest.approx(value, abs=0.6 * 10 ** -places), (i, column)
    assert aapl[24]["macd"] is None and aapl[25]["macd"] is not None and aapl[33]["macd_signal"] is not None
    perf = rows(conn, "SELECT * FROM stock_performance ORDER BY symbol")
    assert [p["symbol"] for p in perf] == ["AAPL", "MSFT"]
    assert all(p["return_90d_pct"] is not None and p["trend"] in ("above_sma", "below_sma") for p in perf)
    assert rows(conn, "SELECT COUNT(DISTINCT iso_week) AS n FROM weekly_aggregates")[0]["n"] >= 24

    # The first daily run after the backfill has both indicators.
    load(mdb, day_quotes("AAPL", TODAY, [230.0, 231.0], settings.tz)
         + day_quotes("MSFT", TODAY, [430.0, 428.0], settings.tz))
    run(settings, [TODAY], db=mdb, conn=conn)
    today_rows = rows(conn, "SELECT * FROM daily_aggregates WHERE date = %s ORDER BY symbol", (TODAY,))
    assert len(today_rows) == 2
    assert all(r["sma_20"] is not None and r["rsi_14"] is not None for r in today_rows)
    assert all(None not in (r["ema_20"], r["bb_upper"], r["bb_lower"], r["macd"], r["macd_signal"], r["macd_hist"])
               for r in today_rows)
    assert float(today_rows[0]["sma_20"]) == pytest.approx(sma([*closes, 231.0]), abs=1e-4)

    # A second backfill skips symbols that have history and changes nothing.
    again = backfill(settings, db=mdb, conn=conn, today=TODAY, client=alpha_vantage_client(settings, mdb))
    assert again.symbols == [] and again.skipped == ["AAPL", "MSFT"]
    assert len(recorded_api.calls("/query")) == 2
    assert len(_stored(conn, "AAPL")) == len(aapl) + 1


def test_backfill_without_key_simulates_and_stops_before_the_first_quote_day(
        settings: Settings, mdb: Database, conn: pymysql.Connection) -> None:
    settings = settings.model_copy(update={"backfill_days": 100, "simulation_seed": None})
    # MSFT already streams since Monday the 12th: its history must end on Friday the 9th,
    # leaving the quote days to the daily job; its latest quote anchors the simulation.
    load(mdb, day_quotes("MSFT", date(2026, 1, 12), [410.0, 412.5], settings.tz))
    summary = backfill(settings, db=mdb, conn=conn, today=TODAY, client=alpha_vantage_client(settings, mdb))
    assert summary.real_days == {"AAPL": 0, "MSFT": 0}
    aapl, msft = _stored(conn, "AAPL"), _stored(conn, "MSFT")
    assert len(aapl) == 100 and aapl[-1]["date"] == date(2026, 1, 13)
    assert len(msft) == 100 and msft[-1]["date"] == date(2026, 1, 9)
    assert float(msft[-1]["close_price"]) == pytest.approx(412.5)
    assert all(r["date"].weekday() < 5 and r["source"] == "simulated" for r in aapl + msft)
    for r in aapl:
        assert float(r["low_price"]) <= min(float(r["open_price"]), float(r["close_price"]))
        assert float(r["high_price"]) >= max(float(r["open_price"]), float(r["close_price"]))
    # 100 sessions: 20 weeks plus the 4 holidays in them (Labor Day, Thanksgiving, Christmas, New Year).
    assert aapl[0]["date"] == TODAY - timedelta(days=146) == MarketHours("XNYS").sessions_before(TODAY, 100)[0]
    # The live simulator's model: AAPL's daily moves at its ~24 % a year, volume near its daily typical.
    closes = [float(r["close_price"]) for r in aapl]
    moves = sorted(abs(b / a - 1) for a, b in zip(closes, closes[1:], strict=False))
    assert 0.004 < moves[len(moves) // 2] < 0.025
    assert all(0.3 * 50e6 <= r["total_volume"] <= 3 * 50e6 for r in aapl)


# Constructed in Yahoo's exact chart format (interval=1d, range=2y, as the endpoint answers on
# 2026-01-14 before the open: 501 NYSE sessions up to 2026-01-13, split and dividend events,
# adjclose), with NVDA-like levels and its real 10:1 split of 2024-06-10; the prices are made
# up (a seeded random walk through plausible levels), not a recording of live data.
YAHOO_DAILY_FIXTURE = "yahoo_chart_NVDA_2y_1d_synthetic.json"
SPLIT_DAY = date(2024, 6, 10)


def test_backfill_takes_yahoo_daily_bars_split_adjusted_and_simulates_what_yahoo_refuses(
        settings: Settings, mdb: Database, conn: pymysql.Connection, recorded_api: RecordedApi,
        caplog: pytest.LogCaptureFixture) -> None:
    serve_yahoo(recorded_api)

    def chart(symbol: str) -> Callable[[Request], Response]:
        def handle(req: Request) -> Response:
            assert req.query.get("crumb") == CRUMB and has_cookie(req)
            assert (req.query["interval"], req.query["range"]) == ("1d", "2y")
            if symbol == "NVDA":
                return answer(YAHOO_DAILY_FIXTURE)
            return answer("yahoo_chart_unknown_symbol.json", 404)  # Yahoo does not know it
        return handle

    for symbol in ("NVDA", "ZZZZ"):
        recorded_api.route(CHART + symbol, chart(symbol))
    settings = settings.model_copy(update={
        "stock_symbols": ["NVDA", "ZZZZ"], "quote_sources": ["yahoo", "simulated"], "backfill_days": 500,
        "yahoo_finance_url": recorded_api.url, "yahoo_cookie_url": recorded_api.url + COOKIE,
        "simulation_seed": 7,
    })
    caplog.set_level(logging.INFO, logger="batch.backfill")
    summary = backfill(settings, db=mdb, conn=conn, today=TODAY, yahoo=YahooFinanceClient(settings))

    assert summary.sources == {"NVDA": "yahoo", "ZZZZ": "simulated"}
    assert summary.real_days == {"NVDA": 500, "ZZZZ": 0} and summary.inserted == 1000
    # One handshake, then one chart request per symbol.
    assert [c.path for c in recorded_api.calls()] == [COOKIE, CRUMB_PATH, CHART + "NVDA", CHART + "ZZZZ"]
    assert any("yahoo: NVDA; simulated: ZZZZ" in r.getMessage() for r in caplog.records)

    window = MarketHours("XNYS").sessions_before(TODAY, 500)
    result = json.loads((FIXTURES / YAHOO_DAILY_FIXTURE).read_text())["chart"]["result"][0]
    ny = ZoneInfo("America/New_York")
    yahoo_close = {datetime.fromtimestamp(ts, UTC).astimezone(ny).date(): close
                   for ts, close in zip(result["timestamp"], result["indicators"]["quote"][0]["close"], strict=True)}
    nvda = _stored(conn, "NVDA")
    assert [r["date"] for r in nvda] == window and {r["source"] for r in nvda} == {"yahoo"}
    # daily_aggregates hold Yahoo's (split-adjusted) closes, to the cent.
    assert all(float(r["close_price"]) == pytest.approx(yahoo_close[r["date"]], abs=1e-4) for r in nvda)
    closes = [float(r["close_price"]) for r in nvda]
    moves = [b / a - 1 for a, b in zip(closes, closes[1:], strict=False)]
    assert min(moves) > -0.25 and max(moves) < 0.25  # no fake crash at the 10:1 split (it would be -90 %)
    at_split = window.index(SPLIT_DAY)
    assert abs(closes[at_split] / closes[at_split - 1] - 1) < 0.05
    # SMA-20 and RSI-14 on those closes, at every day.
    for k in (19, at_split, at_split + 10, len(nvda) - 1):
        assert float(nvda[k]["sma_20"]) == pytest.approx(sma(closes[:k + 1]), abs=1e-4)
        assert float(nvda[k]["rsi_14"]) == pytest.approx(rsi(closes[:k + 1]), abs=1e-3)
    assert nvda[18]["sma_20"] is None and nvda[13]["rsi_14"] is None

    zzzz = _stored(conn, "ZZZZ")  # refused by Yahoo: simulated, and labelled so
    assert [r["date"] for r in zzzz] == window and {r["source"] for r in zzzz} == {"simulated"}


def test_backfill_after_a_429_simulates_and_asks_yahoo_no_more(
        settings: Settings, mdb: Database, conn: pymysql.Connection, recorded_api: RecordedApi,
        caplog: pytest.LogCaptureFixture) -> None:
    serve_yahoo(recorded_api)
    recorded_api.route(CHART + "AAPL", answer("yahoo_429.txt", 429, {"Retry-After": "120"}))
    settings = settings.model_copy(update={
        "quote_sources": ["yahoo", "simulated"], "backfill_days": 30,
        "yahoo_finance_url": recorded_api.url, "yahoo_cookie_url": recorded_api.url + COOKIE,
    })
    caplog.set_level(logging.INFO, logger="batch.backfill")
    summary = backfill(settings, db=mdb, conn=conn, today=TODAY, yahoo=YahooFinanceClient(settings))
    assert summary.sources == {"AAPL": "simulated", "MSFT": "simulated"} and summary.inserted == 60
    # MSFT is not asked: the client backs off after AAPL's 429.
    assert [c.path for c in recorded_api.calls()] == [COOKIE, CRUMB_PATH, CHART + "AAPL"]
    said = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("AAPL: Yahoo refused its daily history (rate_limited: HTTP 429") for m in said)
    assert any(m.startswith("MSFT: Yahoo refused its daily history (backing_off") for m in said)
    assert any(m.endswith("; simulated: AAPL, MSFT") for m in said)
    assert {r["source"] for r in _stored(conn, "AAPL") + _stored(conn, "MSFT")} == {"simulated"}
