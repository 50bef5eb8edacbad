"""batch/daily_aggregation.py against SecantusDB and MariaDB: the figures of known
quotes, indicators over stored history, re-runs, weekly/performance rows, retention."""

from __future__ import annotations

import json
import math
import statistics
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pymysql
import pytest
from pymongo.database import Database

from batch.daily_aggregation import run
from batch.indicators import rsi
from config.settings import Settings
from database.mysql import aggregates, transaction
from tests.batch_data import day_quotes, load, quote, rows

FIXTURES = Path(__file__).parent / "fixtures"
NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
DAY = date(2026, 1, 13)  # a Tuesday

# The batch fixtures (batch_stack, settings, mdb, conn): MongoDB and MariaDB only.
pytest_plugins = ["tests.batch_support"]


def _now() -> datetime:
    return NOW


def _daily(conn: pymysql.Connection, symbol: str, day: date) -> dict:
    found = rows(conn, "SELECT * FROM daily_aggregates WHERE symbol = %s AND date = %s", (symbol, day))
    assert len(found) == 1, found
    return found[0]


def test_day_figures_match_independent_computation(settings: Settings, mdb: Database, conn: pymysql.Connection) -> None:
    tz = settings.tz
    aapl = [261.05, 262.40, 259.80, 263.10, 262.75, 260.95]
    docs = day_quotes("AAPL", DAY, aapl[:3], tz, source="alpha_vantage")
    docs += day_quotes("AAPL", DAY, aapl[3:], tz, start_hour=14, volume=103)
    # 23:30 in New York is 04:30 UTC the next day: still this market day.
    late = datetime(2026, 1, 13, 23, 30, tzinfo=tz)
    docs.append(quote("AAPL", late, 264.00, 50))
    aapl.append(264.00)
    # Outside the day: 23:59 the evening before and 00:00 the next day (market time).
    docs.append(quote("AAPL", datetime(2026, 1, 12, 23, 59, tzinfo=tz), 999.0))
    docs.append(quote("AAPL", datetime(2026, 1, 14, 0, 0, tzinfo=tz), 1.0))
    # Sent while the market was closed (the last price repeated, volume 0): not part of the day.
    for hour in (8, 17):
        closed = quote("AAPL", datetime(2026, 1, 13, hour, 0, tzinfo=tz), 555.0, 0, "yahoo")
        docs.append({**closed, "market_open": False})
    msft = [430.0, 431.5]
    docs += day_quotes("MSFT", DAY, msft, tz, source="alpha_vantage", volume=1000)
    load(mdb, docs)

    summary = run(settings.model_copy(update={"stock_symbols": ["AAPL", "MSFT", "NVDA"]}), [DAY],
                  db=mdb, conn=conn, now=_now)
    assert summary.daily_rows == 2
    assert summary.missing == {DAY: ["NVDA"]}  # reported, not an error

    row = _daily(conn, "AAPL", DAY)
    volumes = [100, 101, 102, 103, 104, 105, 50]
    expected = {
        "open_price": aapl[0], "close_price": aapl[-1], "high_price": max(aapl), "low_price": min(aapl),
        "avg_price": sum(aapl) / len(aapl), "total_volume": sum(volumes), "avg_volume": sum(volumes) / len(volumes),
        "volatility": statistics.pstdev(aapl), "daily_change_pct": (aapl[-1] - aapl[0]) / aapl[0] * 100,
        "tick_count": len(aapl),
    }
    for column, value in expected.items():
        assert float(row[column]) == pytest.approx(value, abs=1e-4), column
    assert row["source"] == "mixed"
    assert row["sma_20"] is None and row["rsi_14"] is None  # one day of history is not enough

    msft_row = _daily(conn, "MSFT", DAY)
    assert msft_row["source"] == "real"
    assert float(msft_row["daily_change_pct"]) == pytest.approx((431.5 - 430.0) / 430.0 * 100, abs=1e-4)
    assert rows(conn, "SELECT COUNT(*) AS n FROM daily_aggregates WHERE symbol = 'NVDA'")[0]["n"] == 0


def test_rerunning_a_day_replaces_its_rows(settings: Settings, mdb: Database, conn: pymysql.Connection) -> None:
    load(mdb, day_quotes("AAPL", DAY, [100.0, 101.0], settings.tz) + day_quotes("MSFT", DAY, [50.0], settings.tz))
    run(settings, [DAY], db=mdb, conn=conn, now=_now)
    run(settings, [DAY], db=mdb, conn=conn, now=_now)
    # A late quote arrives; the re-run picks it up and still keeps one row per symbol.
    load(mdb, [quote("AAPL", datetime(2026, 1, 13, 15, 0, tzinfo=settings.tz), 110.0)])
    run(settings, [DAY], db=mdb, conn=conn, now=_now)
    counts = rows(conn, "SELECT symbol, COUNT(*) AS n FROM daily_aggregates GROUP BY symbol ORDER BY symbol")
    assert counts == [{"symbol": "AAPL", "n": 1}, {"symbol": "MSFT", "n": 1}]
    row = _daily(conn, "AAPL", DAY)
    assert float(row["close_price"]) == 110.0 and row["tick_count"] == 3
    assert len(rows(conn, "SELECT * FROM weekly_aggregates")) == 2
    assert len(rows(conn, "SELECT * FROM stock_performance")) == 2


def _history_row(symbol: str, day: date, close: float) -> dict:
    return {"symbol": symbol, "date": day, "open_price": close, "close_price": close, "high_price": close,
            "low_price": close, "avg_price": close, "total_volume": 0, "avg_volume": 0, "volatility": None,
            "daily_change_pct": 0, "sma_20": None, "rsi_14": None, "tick_count": 0, "source": "simulated"}


def _store_history(conn: pymysql.Connection, symbol: str, closes: list[float], before: date) -> None:
    days = [before - timedelta(days=len(closes) - i) for i in range(len(closes))]
    with transaction(conn) as cur:
        aggregates.upsert_daily(cur, [_history_row(symbol, d, c) for d, c in zip(days, closes, strict=True)])


def test_indicators_use_stored_history_plus_the_day(settings: Settings, mdb: Database,
                                                    conn: pymysql.Connection) -> None:
    sma_ref = json.loads((FIXTURES / "stockcharts_sma20.json").read_text())["closes"]
    rsi_ref = json.loads((FIXTURES / "stockcharts_rsi14.json").read_text())["closes"]
    # AAPL: 19 stored closes + the day's close = the first 20 closes of the SMA reference.
    _store_history(conn, "AAPL", sma_ref[:19], DAY)
    # MSFT: 14 stored closes + the day = the first 15 closes of the RSI reference (the first RSI).
    _store_history(conn, "MSFT", rsi_ref[:14], DAY)
    load(mdb, day_quotes("AAPL", DAY, [90.0, sma_ref[19]], settings.tz)
         + day_quotes("MSFT", DAY, [46.0, rsi_ref[14]], settings.tz))
    run(settings, [DAY], db=mdb, conn=conn, now=_now)

    aapl = _daily(conn, "AAPL", DAY)
    assert float(aapl["sma_20"]) == pytest.approx(88.71, abs=0.005)  # StockCharts' first 20-day SMA
    assert float(aapl["rsi_14"]) == pytest.approx(rsi(sma_ref[:20]), abs=1e-3)
    msft = _daily(conn, "MSFT", DAY)
    assert msft["sma_20"] is None  # 15 closes < 20
    assert float(msft["rsi_14"]) == pytest.approx(70.53, abs=0.08)  # StockCharts' first RSI-14

    # One day fewer of history: RSI needs 15 closes, so it is NULL, never invented.
    with conn.cursor() as cur:
        cur.execute("DELETE FROM daily_aggregates WHERE symbol = 'MSFT' AND date < %s ORDER BY date LIMIT 1", (DAY,))
    run(settings, [DAY], db=mdb, conn=conn, now=_now)
    assert _daily(conn, "MSFT", DAY)["rsi_14"] is None


def test_rerunning_an_old_day_refreshes_the_later_days_indicators(settings: Settings, mdb: Database,
                                                                  conn: pymysql.Connection) -> None:
    # 30 stored closes of 100 around DAY (DAY-20 .. DAY+9); re-running DAY with a close of 130
    # changes the SMA-20 of every later day whose 20-day window holds DAY.
    last = DAY + timedelta(days=9)
    _store_history(conn, "AAPL", [100.0] * 30, last + timedelta(days=1))
    load(mdb, day_quotes("AAPL", DAY, [120.0, 130.0], settings.tz))
    run(settings, [DAY], db=mdb, conn=conn, now=_now)
    assert float(_daily(conn, "AAPL", DAY)["close_price"]) == 130.0
    later = _daily(conn, "AAPL", last)
    assert float(later["sma_20"]) == pytest.approx((19 * 100.0 + 130.0) / 20, abs=1e-4)
    assert later["rsi_14"] is not None
    assert float(_daily(conn, "AAPL", DAY - timedelta(days=1))["sma_20"]) == pytest.approx(100.0)


def test_weekly_and_performance_rows_on_known_data(settings: Settings, mdb: Database, conn: pymysql.Connection) -> None:
    tz = settings.tz
    settings = settings.model_copy(update={"stock_symbols": ["AAPL"]})
    # Mon 5 .. Wed 14 January 2026, weekdays only: ISO weeks 2 (5 days) and 3 (3 days).
    days = [date(2026, 1, d) for d in (5, 6, 7, 8, 9, 12, 13, 14)]
    prices = {d: [100.0 + i, 101.0 + i * 1.5, 99.0 + i * 0.5 + (i % 3)] for i, d in enumerate(days)}
    load(mdb, [q for d in days for q in day_quotes("AAPL", d, prices[d], tz, volume=10)])
    # One stored close 40 days earlier so the 30-day return has a base.
    with transaction(conn) as cur:
        aggregates.upsert_daily(cur, [_history_row("AAPL", date(2025, 12, 1), 80.0)])

    summary = run(settings, [date(2026, 1, d) for d in range(5, 15)], db=mdb, conn=conn, now=_now)
    assert summary.daily_rows == 8 and len(summary.missing) == 2  # the weekend: reported

    weekly = rows(conn, "SELECT * FROM weekly_aggregates WHERE symbol = 'AAPL' ORDER BY iso_week")
    assert [(w["iso_year"], w["iso_week"]) for w in weekly] == [(2026, 2), (2026, 3)]
    for week, week_days in zip(weekly, (days[:5], days[5:]), strict=True):
        opens = prices[week_days[0]][0]
        close = prices[week_days[-1]][-1]
        all_prices = [p for d in week_days for p in prices[d]]
        assert week["week_start"] == week_days[0] - timedelta(days=week_days[0].weekday())
        assert week["week_end"] == week["week_start"] + timedelta(days=6)
        assert float(week["open_price"]) == pytest.approx(opens)
        assert float(week["close_price"]) == pytest.approx(close)
        assert float(week["high_price"]) == pytest.approx(max(all_prices))
        assert float(week["low_price"]) == pytest.approx(min(all_prices))
        mean_of_days = statistics.mean(statistics.mean(prices[d]) for d in week_days)
        assert float(week["avg_price"]) == pytest.approx(mean_of_days, abs=1e-4)
        assert week["total_volume"] == sum(10 + 11 + 12 for _ in week_days)
        assert float(week["weekly_change_pct"]) == pytest.approx((close - opens) / opens * 100, abs=1e-4)
        assert week["trading_days"] == len(week_days) and week["source"] == "simulated"

    perf = rows(conn, "SELECT * FROM stock_performance WHERE symbol = 'AAPL'")[0]
    closes = {d: prices[d][-1] for d in days}
    latest = closes[days[-1]]
    assert perf["as_of_date"] == date(2026, 1, 14)
    assert float(perf["latest_close"]) == pytest.approx(latest)
    # 7 days before the 14th is the 7th.
    assert float(perf["return_7d_pct"]) == pytest.approx((latest / closes[date(2026, 1, 7)] - 1) * 100, abs=1e-4)
    # 30 days before is 15 December: the last close on or before it is 1 December's 80.0.
    assert float(perf["return_30d_pct"]) == pytest.approx((latest / 80.0 - 1) * 100, abs=1e-4)
    assert perf["return_90d_pct"] is None  # history does not reach back 90 days
    window = [80.0] + [closes[d] for d in days]
    log_returns = [math.log(b / a) for a, b in zip(window, window[1:], strict=False)]
    assert float(perf["annualized_volatility_pct"]) == pytest.approx(
        statistics.stdev(log_returns) * math.sqrt(252) * 100, abs=1e-3)
    peak, worst = window[0], 0.0
    for c in window:
        peak = max(peak, c)
        worst = min(worst, (c / peak - 1) * 100)
    assert float(perf["max_drawdown_90d_pct"]) == pytest.approx(worst, abs=1e-4)
    assert perf["sma_20"] is None and perf["trend"] is None and perf["rsi_14"] is None  # 9 closes only


def test_retention_deletes_only_quotes_older_than_the_period(settings: Settings, mdb: Database,
                                                           conn: pymysql.Connection) -> None:
    settings = settings.model_copy(update={"retention_days": 90})
    cutoff = NOW - timedelta(days=90)
    load(mdb, [
        quote("AAPL", cutoff - timedelta(days=5), 1.0),
        quote("AAPL", cutoff - timedelta(seconds=1), 2.0),
        quote("MSFT", cutoff - timedelta(hours=1), 3.0),
        quote("AAPL", cutoff, 4.0),  # exactly 90 days old: kept
        quote("AAPL", cutoff + timedelta(days=1), 5.0),
        quote("MSFT", NOW - timedelta(hours=1), 6.0),
    ])
    summary = run(settings, [NOW.date()], db=mdb, conn=conn, now=_now)
    assert summary.deleted_quotes == 3
    assert sorted(d["price"] for d in mdb.realtime_prices.find({}, {"price": 1})) == [4.0, 5.0, 6.0]


def test_a_table_from_before_the_indicator_migration_is_refused_with_what_to_run(
        settings: Settings, mdb: Database, conn: pymysql.Connection) -> None:
    from batch.stores import StoreUnavailableError

    load(mdb, day_quotes("AAPL", DAY, [230.0, 231.0], settings.tz))
    with transaction(conn) as cur:
        cur.execute("ALTER TABLE daily_aggregates DROP COLUMN macd_signal, DROP COLUMN macd_hist")
    with pytest.raises(StoreUnavailableError) as refused:
        run(settings, [DAY], db=mdb, conn=conn, now=_now)
    assert "macd_signal, macd_hist" in str(refused.value)
    assert "database/migrations/002_daily_indicators.sql" in str(refused.value)
    assert aggregates.count_daily(conn) == 0  # nothing half-written

    # The migration (after dropping the rest of what it adds) makes the table whole again.
    migration = Path(__file__).parent.parent / "database" / "migrations" / "002_daily_indicators.sql"
    with transaction(conn) as cur:
        cur.execute("ALTER TABLE daily_aggregates DROP COLUMN ema_20, DROP COLUMN bb_middle, DROP COLUMN bb_upper,"
                    " DROP COLUMN bb_lower, DROP COLUMN macd")
        statement = "\n".join(line for line in migration.read_text().splitlines() if not line.startswith("--"))
        cur.execute(statement.strip().rstrip(";"))
    assert aggregates.missing_daily_columns(conn) == []
    assert run(settings, [DAY], db=mdb, conn=conn, now=_now).daily_rows == 1
