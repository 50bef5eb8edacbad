"""MySQL writes and reads of the batch job: daily_aggregates, weekly_aggregates,
stock_performance.

Writes are upserts on the tables' unique keys ((symbol, date), (symbol, iso_year,
iso_week), symbol), so re-running a day replaces its rows and never duplicates
them. Reads walk the (symbol, date) unique key.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date
from typing import Any

import pymysql
import pymysql.cursors

# The indicator columns, in batch/indicators.DailyIndicators' order; the last seven came with
# issue 23 (database/migrations/002_daily_indicators.sql adds them to an older install).
INDICATOR_FIELDS = (
    "sma_20", "rsi_14", "ema_20", "bb_middle", "bb_upper", "bb_lower", "macd", "macd_signal", "macd_hist",
)
# MySQL's "Unknown column" error: a table from before a migration.
ER_BAD_FIELD = 1054
DAILY_FIELDS = (
    "symbol", "date", "open_price", "close_price", "high_price", "low_price", "avg_price",
    "total_volume", "avg_volume", "volatility", "daily_change_pct", *INDICATOR_FIELDS,
    "tick_count", "source",
)
WEEKLY_FIELDS = (
    "symbol", "iso_year", "iso_week", "week_start", "week_end", "open_price", "close_price",
    "high_price", "low_price", "avg_price", "total_volume", "weekly_change_pct", "trading_days", "source",
)
PERFORMANCE_FIELDS = (
    "symbol", "as_of_date", "latest_close", "return_7d_pct", "return_30d_pct", "return_90d_pct",
    "annualized_volatility_pct", "max_drawdown_90d_pct", "rsi_14", "sma_20", "trend", "source",
)


def _upsert_sql(table: str, fields: Sequence[str], keys: Sequence[str]) -> str:
    columns = ", ".join(fields)
    values = ", ".join(f"%({f})s" for f in fields)
    updates = ", ".join(f"{f} = VALUES({f})" for f in fields if f not in keys)
    return f"INSERT INTO {table} ({columns}) VALUES ({values}) ON DUPLICATE KEY UPDATE {updates}"


UPSERT_DAILY = _upsert_sql("daily_aggregates", DAILY_FIELDS, ("symbol", "date"))
INSERT_DAILY_IF_ABSENT = (
    f"INSERT IGNORE INTO daily_aggregates ({', '.join(DAILY_FIELDS)}) "
    f"VALUES ({', '.join(f'%({f})s' for f in DAILY_FIELDS)})"
)
UPSERT_WEEKLY = _upsert_sql("weekly_aggregates", WEEKLY_FIELDS, ("symbol", "iso_year", "iso_week"))
UPSERT_PERFORMANCE = _upsert_sql("stock_performance", PERFORMANCE_FIELDS, ("symbol",))


def _params(row: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {f: row.get(f) for f in fields}


def _upsert(cur: pymysql.cursors.Cursor, sql: str, fields: tuple[str, ...], rows: Iterable[Mapping[str, Any]]) -> int:
    params = [_params(r, fields) for r in rows]
    if params:
        cur.executemany(sql, params)
    return len(params)


def upsert_daily(cur: pymysql.cursors.Cursor, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert or replace daily rows; returns how many rows were given."""
    return _upsert(cur, UPSERT_DAILY, DAILY_FIELDS, rows)


def insert_daily_if_absent(cur: pymysql.cursors.Cursor, rows: Iterable[Mapping[str, Any]]) -> int:
    """Insert daily rows whose (symbol, date) is not stored yet (backfill never
    overwrites a day aggregated from quotes); returns how many were inserted."""
    params = [_params(r, DAILY_FIELDS) for r in rows]
    if not params:
        return 0
    return cur.executemany(INSERT_DAILY_IF_ABSENT, params) or 0


def set_indicators(cur: pymysql.cursors.Cursor, symbol: str,
                   values: Iterable[tuple[date, Mapping[str, float | None]]]) -> None:
    """Store (date, {column: value} of INDICATOR_FIELDS) on existing daily rows of a symbol."""
    params = [(*(found.get(f) for f in INDICATOR_FIELDS), symbol, day) for day, found in values]
    if params:
        sets = ", ".join(f"{f} = %s" for f in INDICATOR_FIELDS)
        cur.executemany(f"UPDATE daily_aggregates SET {sets} WHERE symbol = %s AND date = %s", params)


def missing_daily_columns(conn: pymysql.Connection) -> list[str]:
    """DAILY_FIELDS the connection's daily_aggregates lacks (a migration not run yet)."""
    with conn.cursor() as cur:
        cur.execute("SELECT COLUMN_NAME AS name FROM information_schema.COLUMNS "
                    "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'daily_aggregates'")
        present = {row["name"] for row in cur.fetchall()}
    return [f for f in DAILY_FIELDS if f not in present]


def upsert_weekly(cur: pymysql.cursors.Cursor, rows: Iterable[Mapping[str, Any]]) -> int:
    return _upsert(cur, UPSERT_WEEKLY, WEEKLY_FIELDS, rows)


def upsert_performance(cur: pymysql.cursors.Cursor, rows: Iterable[Mapping[str, Any]]) -> int:
    return _upsert(cur, UPSERT_PERFORMANCE, PERFORMANCE_FIELDS, rows)


def closes_before(conn: pymysql.Connection, symbol: str, before: date, limit: int = 300) -> list[float]:
    """The last `limit` stored daily closes of a symbol before `before`, oldest first
    (the indicator history; 300 > the 250 days StockCharts uses to settle RSI)."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT close_price FROM daily_aggregates WHERE symbol = %s AND date < %s ORDER BY date DESC LIMIT %s",
            (symbol, before, limit),
        )
        closes = [float(row["close_price"]) for row in cur.fetchall()]
    closes.reverse()
    return closes


def daily_rows_between(conn: pymysql.Connection, symbol: str, start: date, end: date) -> list[dict[str, Any]]:
    """Daily rows of a symbol with start <= date <= end, oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(DAILY_FIELDS)} FROM daily_aggregates "
            "WHERE symbol = %s AND date BETWEEN %s AND %s ORDER BY date",
            (symbol, start, end),
        )
        return list(cur.fetchall())


def latest_daily_rows(conn: pymysql.Connection, symbol: str, limit: int,
                      fields: Sequence[str] = DAILY_FIELDS) -> list[dict[str, Any]]:
    """The newest `limit` daily rows of a symbol, oldest first."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {', '.join(fields)} FROM daily_aggregates WHERE symbol = %s ORDER BY date DESC LIMIT %s",
            (symbol, limit),
        )
        rows = list(cur.fetchall())
    rows.reverse()
    return rows


def count_daily(conn: pymysql.Connection, symbol: str | None = None) -> int:
    with conn.cursor() as cur:
        if symbol is None:
            cur.execute("SELECT COUNT(*) AS n FROM daily_aggregates")
        else:
            cur.execute("SELECT COUNT(*) AS n FROM daily_aggregates WHERE symbol = %s", (symbol,))
        return int(cur.fetchone()["n"])


def latest_date(conn: pymysql.Connection, on_or_before: date | None = None) -> date | None:
    """The newest date in daily_aggregates (optionally not after `on_or_before`)."""
    with conn.cursor() as cur:
        if on_or_before is None:
            cur.execute("SELECT MAX(date) AS d FROM daily_aggregates")
        else:
            cur.execute("SELECT MAX(date) AS d FROM daily_aggregates WHERE date <= %s", (on_or_before,))
        return cur.fetchone()["d"]


def has_daily_before(conn: pymysql.Connection, symbol: str, day: date) -> bool:
    """Whether any daily row of `symbol` is older than `day` (the backfill's "has history")."""
    with conn.cursor() as cur:
        cur.execute("SELECT 1 FROM daily_aggregates WHERE symbol = %s AND date < %s LIMIT 1", (symbol, day))
        return cur.fetchone() is not None
