"""MySQL reads of the Flask dashboard: daily series, performance, alert_log.

Every statement is parameterised and walks an index:
daily_aggregates (symbol, date) unique key, stock_performance primary key,
alert_log (symbol, created_at) / (created_at).
"""

from __future__ import annotations

from typing import Any

import pymysql

from database.mysql.aggregates import DAILY_FIELDS, ER_BAD_FIELD, INDICATOR_FIELDS, latest_daily_rows

ALERT_COLUMNS = (
    "alert_key, symbol, rule, value, threshold, price, quote_timestamp, message, source, "
    "email_status, created_at"
)


# daily_aggregates before database/migrations/002_daily_indicators.sql (issue 23's indicators).
PRE_002_FIELDS = tuple(f for f in DAILY_FIELDS if f not in INDICATOR_FIELDS[2:])


def daily_series(conn: pymysql.Connection, symbol: str, days: int) -> list[dict[str, Any]]:
    """The last `days` daily rows of a symbol, oldest first. On a table the migration has not
    reached yet the rows come without EMA/Bollinger/MACD (the chart leaves them out) rather
    than the page saying MySQL is down."""
    try:
        return latest_daily_rows(conn, symbol, days)
    except pymysql.err.OperationalError as exc:
        if exc.args[0] != ER_BAD_FIELD:
            raise
    return latest_daily_rows(conn, symbol, days, PRE_002_FIELDS)


def performance(conn: pymysql.Connection, symbols: list[str]) -> list[dict[str, Any]]:
    """stock_performance rows of the given symbols, in the given order."""
    if not symbols:
        return []
    placeholders = ", ".join(["%s"] * len(symbols))
    with conn.cursor() as cur:
        cur.execute(
            "SELECT symbol, as_of_date, latest_close, return_7d_pct, return_30d_pct, return_90d_pct, "
            "annualized_volatility_pct, max_drawdown_90d_pct, rsi_14, sma_20, trend, source "
            f"FROM stock_performance WHERE symbol IN ({placeholders})",
            tuple(symbols),
        )
        by_symbol = {row["symbol"]: row for row in cur.fetchall()}
    return [by_symbol[s] for s in symbols if s in by_symbol]


def latest_alerts(conn: pymysql.Connection, symbol: str | None, limit: int) -> list[dict[str, Any]]:
    """Newest alert_log rows, of one symbol or of all."""
    with conn.cursor() as cur:
        if symbol is None:
            cur.execute(f"SELECT {ALERT_COLUMNS} FROM alert_log ORDER BY created_at DESC LIMIT %s", (limit,))
        else:
            cur.execute(
                f"SELECT {ALERT_COLUMNS} FROM alert_log WHERE symbol = %s ORDER BY created_at DESC LIMIT %s",
                (symbol, limit),
            )
        return list(cur.fetchall())


def ping(conn: pymysql.Connection) -> None:
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        cur.fetchall()
