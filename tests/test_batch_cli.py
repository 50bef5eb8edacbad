"""The batch entry points run exactly as the container runs them: `python batch/<script>.py`
from the repository root with PYTHONPATH set to it."""

from __future__ import annotations

from datetime import date, timedelta

import pymysql
import pytest
from pymongo.database import Database

from common.clock import utc_now
from config.settings import Settings
from scripts.processes import ServiceProcess, run_script
from scripts.waiting import free_port, wait_for
from tests.batch_data import day_quotes, load, quote, rows
from tests.conftest import Stack

# The batch fixtures (batch_stack, settings, mdb, conn): MongoDB and MariaDB only.
pytest_plugins = ["tests.batch_support"]


def _count(conn: pymysql.Connection, where: str = "1=1", params: tuple = ()) -> int:
    return rows(conn, f"SELECT COUNT(*) AS n FROM daily_aggregates WHERE {where}", params)[0]["n"]


@pytest.mark.clock
def test_daily_aggregation_command_by_date_range_and_today(batch_stack: Stack, settings: Settings, mdb: Database,
                                                         conn: pymysql.Connection) -> None:
    tz = settings.tz
    # Recent days: the run also applies retention (RETENTION_DAYS before the real now).
    d1 = utc_now().astimezone(tz).date() - timedelta(days=3)
    d2 = d1 + timedelta(days=1)
    load(mdb, day_quotes("AAPL", d1, [100.0, 101.0], tz)
         + day_quotes("AAPL", d2, [102.0, 103.0], tz)
         + day_quotes("MSFT", d2, [400.0], tz))

    done = run_script("batch/daily_aggregation.py", batch_stack.env, ["--date", d2.isoformat()])
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"batch run done: 2 symbols, 1 day(s) [{d2}], 2 daily rows" in done.stdout
    assert _count(conn) == 2

    done = run_script("batch/daily_aggregation.py", batch_stack.env, ["--from", d1.isoformat(), "--to", d2.isoformat()])
    assert done.returncode == 0, done.stderr + done.stdout
    assert f"{d1}: no quotes for MSFT" in done.stdout  # reported, not an error
    assert _count(conn) == 3
    row = rows(conn, "SELECT * FROM daily_aggregates WHERE symbol='AAPL' AND date=%s", (d2,))[0]
    assert float(row["close_price"]) == 103.0

    # No argument: today so far, in the market time zone.
    now = utc_now()
    load(mdb, [quote("AAPL", now.replace(microsecond=0), 150.0)])
    done = run_script("batch/daily_aggregation.py", batch_stack.env)
    assert done.returncode == 0, done.stderr + done.stdout
    today = now.astimezone(tz).date()
    assert _count(conn, "date = %s AND symbol = 'AAPL'", (today,)) == 1

    bad = run_script("batch/daily_aggregation.py", batch_stack.env, ["--date", "13/01/2026"])
    assert bad.returncode == 2 and "not a date" in bad.stderr


def test_database_down_fails_clearly_and_the_next_run_is_unaffected(batch_stack: Stack, settings: Settings,
                                                                    mdb: Database, conn: pymysql.Connection) -> None:
    day = (utc_now().astimezone(settings.tz) - timedelta(days=2)).date().isoformat()
    load(mdb, day_quotes("AAPL", date.fromisoformat(day), [100.0], settings.tz))
    dead = free_port()
    down = run_script("batch/daily_aggregation.py", batch_stack.with_env(MONGO_URI=f"mongodb://127.0.0.1:{dead}"),
                      ["--date", day])
    assert down.returncode == 1
    assert f"batch run failed: MongoDB at mongodb://127.0.0.1:{dead} is unreachable" in down.stderr
    down = run_script("batch/daily_aggregation.py", batch_stack.with_env(MYSQL_PORT=str(dead)), ["--date", day])
    assert down.returncode == 1
    assert f"batch run failed: MySQL at {settings.mysql_host}:{dead} is unreachable after 3 attempts" in down.stderr
    assert _count(conn) == 0

    ok = run_script("batch/daily_aggregation.py", batch_stack.env, ["--date", day])
    assert ok.returncode == 0, ok.stderr + ok.stdout
    assert _count(conn) == 1


def test_backfill_command(batch_stack: Stack, conn: pymysql.Connection, mdb: Database) -> None:
    done = run_script("batch/backfill.py", batch_stack.with_env(BACKFILL_DAYS="25"))
    assert done.returncode == 0, done.stderr + done.stdout
    assert "backfill done: 2 symbols filled" in done.stdout
    assert _count(conn, "symbol = 'AAPL' AND source = 'simulated' AND sma_20 IS NOT NULL") == 6


def test_backfill_of_new_symbols_only_the_airflow_watcher_pass(batch_stack: Stack, conn: pymysql.Connection,
                                                               mdb: Database) -> None:
    """`--new-only`, what Airflow runs every minute with BATCH_SCHEDULE_ENABLED=false: the first pass
    gives the defaults their history (the container's start-up backfill), a symbol added later is
    backfilled by the next pass alone, and a pass with nothing new writes nothing."""
    from database.mongo.symbols import add_follower, find_symbol

    env = batch_stack.with_env(BACKFILL_DAYS="25")
    first = run_script("batch/backfill.py", env, ["--new-only"])
    assert first.returncode == 0, first.stderr + first.stdout
    assert "backfill done: 2 symbols filled" in first.stdout
    assert find_symbol(mdb, "AAPL")["backfilled_at"] is not None and find_symbol(mdb, "MSFT")["backfilled_at"]
    assert _count(conn, "symbol = 'AAPL'") == 25

    assert add_follower(mdb, "IBM", "user-1", name="International Business Machines Corporation", simulated=True,
                        now=utc_now(), max_symbols=500, max_per_user=50) == "added"
    second = run_script("batch/backfill.py", env, ["--new-only"])
    assert second.returncode == 0, second.stderr + second.stdout
    assert "new symbol(s) in the registry: IBM" in second.stdout
    assert "backfill done: 1 symbols filled" in second.stdout
    assert _count(conn, "symbol = 'IBM' AND source = 'simulated' AND tick_count = 0") == 25
    assert find_symbol(mdb, "IBM")["backfilled_at"] is not None

    total = _count(conn)
    third = run_script("batch/backfill.py", env, ["--new-only"])
    assert third.returncode == 0, third.stderr + third.stdout
    assert "every registered symbol is backfilled already" in third.stdout
    assert "backfill done" not in third.stdout and _count(conn) == total

    both = run_script("batch/backfill.py", env, ["--new-only", "--force"])
    assert both.returncode == 2 and "exclude each other" in both.stderr


@pytest.mark.clock
def test_scheduler_backfills_empty_tables_catches_up_the_missed_day_and_stops_on_sigterm(
        batch_stack: Stack, settings: Settings, mdb: Database, conn: pymysql.Connection) -> None:
    tz = settings.tz
    yesterday = utc_now().astimezone(tz).date() - timedelta(days=1)
    # The stack streamed yesterday, but the container was down at midnight.
    load(mdb, day_quotes("AAPL", yesterday, [200.0, 201.0, 202.0], tz)
         + day_quotes("MSFT", yesterday, [300.0, 299.0], tz))
    service = ServiceProcess("batch/scheduler.py", batch_stack.with_env(BACKFILL_DAYS="30")).start()
    try:
        wait_for(lambda: _count(conn, "date = %s AND tick_count > 0", (yesterday,)) == 2, timeout=60,
                 what="the missed day to be aggregated")
        assert _count(conn, "tick_count = 0 AND symbol = 'AAPL'") == 30  # backfill ran first
        aapl = rows(conn, "SELECT * FROM daily_aggregates WHERE symbol = 'AAPL' AND date = %s", (yesterday,))[0]
        assert float(aapl["close_price"]) == 202.0
        assert aapl["sma_20"] is not None and aapl["rsi_14"] is not None  # history from day one
        wait_for(lambda: "next run at" in service.output(), timeout=30, what="the schedule to start")
    finally:
        code = service.stop(timeout=30)
    output = service.output()
    assert code == 0, output
    assert "daily_aggregates is empty: backfilling history first" in output
    assert "catching up" in output and "batch scheduler stopped" in output


def test_scheduler_idles_when_airflow_drives_the_batch(batch_stack: Stack, conn: pymysql.Connection) -> None:
    service = ServiceProcess("batch/scheduler.py", batch_stack.with_env(BATCH_SCHEDULE_ENABLED="false")).start()
    try:
        wait_for(lambda: "idle until stopped" in service.output(), timeout=30, what="the idle message")
    finally:
        code = service.stop(timeout=30)
    assert code == 0, service.output()
    assert _count(conn) == 0  # no backfill, no catch-up


def test_one_absurd_price_fails_its_symbol_only_and_the_run(batch_stack: Stack, settings: Settings, mdb: Database,
                                                           conn: pymysql.Connection) -> None:
    # Issue 19: a price that cannot fit DECIMAL(14,4) (stored before the schema refused it, or by another
    # writer) used to fail the whole day's transaction. Now: the others are written, the bad one is named.
    tz = settings.tz
    day = utc_now().astimezone(tz).date() - timedelta(days=1)
    load(mdb, day_quotes("AAPL", day, [100.0, 1e12, 101.0], tz) + day_quotes("MSFT", day, [400.0, 401.0], tz)
         + day_quotes("GOOGL", day, [300.0], tz) + day_quotes("TSLA", day, [250.0, 251.0], tz))
    env = batch_stack.with_env(STOCK_SYMBOLS="AAPL,MSFT,GOOGL,TSLA")

    done = run_script("batch/daily_aggregation.py", env, ["--date", day.isoformat()])
    assert done.returncode == 1, done.stderr + done.stdout
    written = rows(conn, "SELECT symbol, close_price FROM daily_aggregates WHERE date = %s ORDER BY symbol", (day,))
    assert [(r["symbol"], float(r["close_price"])) for r in written] == [("GOOGL", 300.0), ("MSFT", 401.0),
                                                                          ("TSLA", 251.0)]
    assert [r["symbol"] for r in rows(conn, "SELECT symbol FROM stock_performance ORDER BY symbol")] == [
        "GOOGL", "MSFT", "TSLA"]
    named = f"AAPL: daily row of {day} not written: high_price 1000000000000.0 does not fit the column"
    assert named in done.stdout and named in done.stderr  # the log and the operator's terminal
    assert "3 daily rows" in done.stdout and "batch run incomplete: 1 write(s) refused, of AAPL" in done.stdout

    # Fixed at the source (the quote deleted), the re-run writes AAPL and succeeds.
    mdb["realtime_prices"].delete_many({"price": 1e12})
    again = run_script("batch/daily_aggregation.py", env, ["--date", day.isoformat()])
    assert again.returncode == 0, again.stderr + again.stdout
    assert _count(conn, "date = %s", (day,)) == 4
