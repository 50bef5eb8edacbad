"""The daily batch job: quotes of a market day in MongoDB -> aggregates in MySQL.

    python batch/daily_aggregation.py                       # today so far
    python batch/daily_aggregation.py --date 2026-01-13     # re-run one day
    python batch/daily_aggregation.py --from 2026-01-01 --to 2026-01-13

A day is a calendar date in MARKET_TIMEZONE. For each configured symbol and day
it writes one daily_aggregates row (upsert: a re-run replaces it), with SMA-20,
RSI-14, EMA-20, Bollinger (20, 2) and MACD (12, 26, 9) over the stored daily closes
plus that day (NULL while too few days exist; batch/indicators.py). Then it
refreshes weekly_aggregates for the ISO weeks it touched and stock_performance
for every symbol, deletes quotes older than RETENTION_DAYS, and logs a summary.
A symbol without quotes on a day is reported, not an error.
Each symbol's rows are written in their own transaction: a symbol whose figures do
not fit the MySQL columns (an absurd price stored before the schema refused it) is
refused before the INSERT, logged with the symbol, day, column and value, and the
other symbols' rows are still written; the run then exits with status 1.
A database that is down ends the run with one clear line and exit status 1;
nothing is kept between runs, so the next run is unaffected.

The scheduled run (batch/scheduler.py) calls `run` for the day that just ended.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import pymysql
from pymongo.database import Database

from batch.indicators import daily_indicators
from batch.metrics import daily_row, iso_week_bounds, performance_row, weekly_rows
from common.clock import utc_now
from common.quote import DailyBar
from config import Settings
from database.mongo import price_stats
from database.mongo.symbols import RegistryReader
from database.mysql import aggregates, transaction
from database.mysql.columns import ColumnLimit, column_limits, row_problems
from logs.logger_config import get_logger

log = get_logger("batch.daily_aggregation")

MAX_RANGE_DAYS = 3660
# Daily rows read for stock_performance: 90 calendar days need ~64 trading days,
# or 91 if quotes arrive every day (simulation); 130 covers both with margin.
PERFORMANCE_HISTORY_ROWS = 130


# What one symbol's figures can raise by themselves (MySQL refusing a value, arithmetic
# on an absurd one); a database that is down (OperationalError, PyMongoError) still ends the run.
SYMBOL_ERRORS = (pymysql.err.DataError, pymysql.err.IntegrityError, ArithmeticError, ValueError, TypeError)


@dataclass(frozen=True)
class SymbolFailure:
    symbol: str
    what: str  # e.g. "daily row of 2026-01-13"
    reason: str

    def __str__(self) -> str:
        return f"{self.symbol}: {self.what} not written: {self.reason}"


@dataclass
class RunSummary:
    days: list[date] = field(default_factory=list)
    symbols: int = 0
    daily_rows: int = 0
    weekly_rows: int = 0
    performance_rows: int = 0
    missing: dict[date, list[str]] = field(default_factory=dict)
    deleted_quotes: int = 0
    seconds: float = 0.0
    failed: list[SymbolFailure] = field(default_factory=list)




class SymbolWriter:
    """Writes one symbol's rows in their own transaction after checking them against
    the table's columns; a symbol that fails is logged and kept in `failed`."""

    def __init__(self, conn: pymysql.Connection, failed: list[SymbolFailure]) -> None:
        self.conn = conn
        self.failed = failed
        self._limits: dict[str, dict[str, ColumnLimit]] = {}

    def limits(self, table: str) -> dict[str, ColumnLimit]:
        if table not in self._limits:
            self._limits[table] = column_limits(self.conn, table)
        return self._limits[table]

    def fail(self, symbol: str, what: str, reason: str) -> None:
        failure = SymbolFailure(symbol, what, reason)
        self.failed.append(failure)
        log.error("%s", failure)

    def write(self, symbol: str, what: str, table: str, rows: Sequence[Mapping[str, Any]],
              upsert: Callable[[Any, Sequence[Mapping[str, Any]]], int]) -> bool:
        problems = [p for row in rows for p in row_problems(row, self.limits(table))]
        if problems:
            self.fail(symbol, what, "; ".join(problems))
            return False
        try:
            with transaction(self.conn) as cur:
                upsert(cur, rows)
        except SYMBOL_ERRORS as exc:
            self.fail(symbol, what, f"MySQL refused it: {type(exc).__name__}: {exc}")
            return False
        return True


def aggregate_day(db: Database, conn: pymysql.Connection, symbols: Sequence[str], day: date,
                  settings: Settings, writer: SymbolWriter | None = None) -> tuple[list[DailyBar], list[str]]:
    """Daily rows of one day for every symbol with quotes, each symbol in its own transaction
    (a symbol that cannot be written is in `writer.failed`, the others are written)."""
    writer = writer or SymbolWriter(conn, [])
    start, end = price_stats.day_bounds(day, settings.tz)
    rows: list[DailyBar] = []
    missing: list[str] = []
    for symbol in symbols:
        stats = price_stats.symbol_day_stats(db, symbol, start, end)
        if stats is None:
            missing.append(symbol)
            continue
        try:
            row = daily_row(symbol, day, stats, aggregates.closes_before(conn, symbol, day))
        except SYMBOL_ERRORS as exc:
            writer.fail(symbol, f"daily row of {day}", f"{type(exc).__name__}: {exc}")
            continue
        if writer.write(symbol, f"daily row of {day}", "daily_aggregates", [row.as_row()], aggregates.upsert_daily):
            rows.append(row)
    return rows, missing


def refresh_weekly(conn: pymysql.Connection, symbols: Sequence[str], days: Sequence[date],
                   writer: SymbolWriter | None = None) -> int:
    """Recompute the weekly rows of every ISO week containing one of `days`."""
    writer = writer or SymbolWriter(conn, [])
    weeks = sorted({iso_week_bounds(d)[2] for d in days})
    written = 0
    for symbol in symbols:
        rows = [row for monday in weeks
                for row in weekly_rows(symbol, aggregates.daily_rows_between(conn, symbol, monday,
                                                                             monday + timedelta(days=6)))]
        if rows and writer.write(symbol, "weekly rows", "weekly_aggregates", rows, aggregates.upsert_weekly):
            written += len(rows)
    return written


def refresh_performance(conn: pymysql.Connection, symbols: Sequence[str], writer: SymbolWriter | None = None) -> int:
    """Recompute stock_performance of every symbol from its newest daily rows."""
    writer = writer or SymbolWriter(conn, [])
    written = 0
    for symbol in symbols:
        row = performance_row(symbol, aggregates.latest_daily_rows(conn, symbol, PERFORMANCE_HISTORY_ROWS))
        if row is not None and writer.write(symbol, "performance row", "stock_performance", [row],
                                            aggregates.upsert_performance):
            written += 1
    return written


def store_indicators(conn: pymysql.Connection, symbol: str, before: date) -> None:
    """The indicators (batch/indicators.py) of every stored day of `symbol` before `before`,
    over the stored closes."""
    rows = aggregates.daily_rows_between(conn, symbol, date(1900, 1, 1), before - timedelta(days=1))
    found = daily_indicators([float(r["close_price"]) for r in rows])
    with transaction(conn) as cur:
        aggregates.set_indicators(cur, symbol, [(r["date"], dataclasses.asdict(values))
                                                for r, values in zip(rows, found, strict=True)])


def refresh_later_indicators(conn: pymysql.Connection, symbols: Sequence[str], last_day: date) -> int:
    """Re-running an old day changes its close, and so SMA-20/RSI-14 of every day after it:
    recompute them over the stored closes. Returns how many symbols were refreshed."""
    latest = aggregates.latest_date(conn)
    if latest is None or latest <= last_day:
        return 0
    for symbol in symbols:
        store_indicators(conn, symbol, latest + timedelta(days=1))
    return len(symbols)


def apply_retention(db: Database, settings: Settings, now: datetime) -> int:
    """Delete quotes older than RETENTION_DAYS; returns how many left MongoDB.

    With ARCHIVE_ENABLED they are first written to S3 (batch/archive.py), which
    deletes only what it uploaded; its report is logged there. A failed upload
    fails the run (exit 1, retried by the next run / Airflow) after the
    aggregates are written: nothing that was not archived has been deleted.
    """
    cutoff = now - timedelta(days=settings.retention_days)
    if getattr(settings, "archive_enabled", False):
        from batch.archive import archive_before_retention  # pyarrow/boto3 only when archiving
        from batch.stores import StoreUnavailableError

        report = archive_before_retention(db, settings, cutoff)
        if not report.ok:
            raise StoreUnavailableError(report.describe())
        return report.deleted
    return price_stats.delete_older_than(db, cutoff)


def registered_symbols(db: Database, settings: Settings) -> list[str]:
    """Every symbol of the registry (STOCK_SYMBOLS and those users added); the defaults alone
    while MongoDB cannot say (the quotes cannot be read either then)."""
    registry = RegistryReader(lambda: db, settings.stock_symbols, now=utc_now)
    symbols = registry.symbols()
    if registry.error is not None:
        log.warning("symbol registry unreadable (%s); aggregating STOCK_SYMBOLS only", registry.error)
    return symbols


def require_daily_columns(conn: pymysql.Connection) -> None:
    """Refuse to run on a daily_aggregates from before a migration: every row would fail on
    the unknown column, so one clear line (batch/stores.run_with_stores prints it) says what to run."""
    from batch.stores import StoreUnavailableError

    missing = aggregates.missing_daily_columns(conn)
    if missing:
        raise StoreUnavailableError(
            f"daily_aggregates has no column {', '.join(missing)}: run "
            "database/migrations/002_daily_indicators.sql once (README, 'Upgrading an existing install')")


def run(settings: Settings, days: Sequence[date], *, db: Database, conn: pymysql.Connection,
        now: Callable[[], datetime] = utc_now) -> RunSummary:
    """Aggregate `days` (oldest first, so each day's indicators see the day before),
    refresh weekly and performance rows, apply retention; returns the summary."""
    started = time.monotonic()
    require_daily_columns(conn)
    symbols = registered_symbols(db, settings)
    summary = RunSummary(days=sorted(days), symbols=len(symbols))
    writer = SymbolWriter(conn, summary.failed)
    for day in summary.days:
        rows, missing = aggregate_day(db, conn, symbols, day, settings, writer)
        summary.daily_rows += len(rows)
        if missing:
            summary.missing[day] = missing
            log.warning("%s: no quotes for %s (no daily row written for them)", day, ", ".join(missing))
        log.info("%s: %d daily rows written", day, len(rows))
    if summary.days:
        if refresh_later_indicators(conn, symbols, summary.days[-1]):
            log.info("indicators of the days after %s recomputed from the stored closes", summary.days[-1])
        summary.weekly_rows = refresh_weekly(conn, symbols, summary.days, writer)
    summary.performance_rows = refresh_performance(conn, symbols, writer)
    summary.deleted_quotes = apply_retention(db, settings, now())
    summary.seconds = time.monotonic() - started
    log.info(
        "batch run done: %d symbols, %d day(s) %s, %d daily rows, %d weekly rows, %d performance rows, "
        "%d symbol-days without quotes, %d quotes older than %d days deleted, %.2f s",
        summary.symbols, len(summary.days), _days_label(summary.days), summary.daily_rows, summary.weekly_rows,
        summary.performance_rows, sum(len(v) for v in summary.missing.values()), summary.deleted_quotes,
        settings.retention_days, summary.seconds,
    )
    if summary.failed:
        log.error("batch run incomplete: %d write(s) refused, of %s (the other symbols' rows are written)",
                  len(summary.failed), ", ".join(sorted({f.symbol for f in summary.failed})))
    return summary


def _days_label(days: Sequence[date]) -> str:
    if not days:
        return "[]"
    if len(days) == 1:
        return f"[{days[0]}]"
    return f"[{days[0]} .. {days[-1]}]"


def days_in_range(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _iso_date(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {value!r}") from exc


def parse_days(argv: Sequence[str] | None, today: date) -> list[date]:
    """The days a command line asks for (argparse exits 2 on a bad one)."""
    parser = argparse.ArgumentParser(prog="batch/daily_aggregation.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--date", type=_iso_date, help="aggregate this market day (YYYY-MM-DD)")
    parser.add_argument("--from", dest="start", type=_iso_date, help="first day of a range (with --to)")
    parser.add_argument("--to", dest="end", type=_iso_date, help="last day of a range, inclusive (with --from)")
    args = parser.parse_args(argv)
    if args.date and (args.start or args.end):
        parser.error("use either --date or --from/--to")
    if (args.start is None) != (args.end is None):
        parser.error("--from and --to go together")
    if args.date:
        return [args.date]
    if args.start:
        if args.start > args.end:
            parser.error("--from is after --to")
        if (args.end - args.start).days >= MAX_RANGE_DAYS:
            parser.error(f"a range is at most {MAX_RANGE_DAYS} days")
        return days_in_range(args.start, args.end)
    return [today]


def main(argv: Sequence[str] | None = None) -> int:
    from batch.stores import run_with_stores
    from config import get_settings
    from logs.logger_config import setup_logging

    settings = get_settings()
    days = parse_days(argv, utc_now().astimezone(settings.tz).date())
    setup_logging("batch", settings)
    summaries: list[RunSummary] = []
    status = run_with_stores(settings, "batch run",
                             lambda db, conn: summaries.append(run(settings, days, db=db, conn=conn)))
    failed = [f for summary in summaries for f in summary.failed]
    if status == 0 and failed:
        print(f"batch run incomplete: {len(failed)} write(s) refused:", *failed, sep="\n  ", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
