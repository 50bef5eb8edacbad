"""alert_log: the MySQL copy of every alert (Grafana and the batch read it).

alert_key is UNIQUE, so INSERT IGNORE makes storing a redelivered alert a no-op.
Timestamps are stored as naive UTC (DATETIME has no zone).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pymysql


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def insert_alert(conn: pymysql.Connection, record: dict[str, Any], email_status: str, created_at: datetime) -> bool:
    """Store the alert once; False when its alert_key is already there."""
    with conn.cursor() as cur:
        count = cur.execute(
            "INSERT IGNORE INTO alert_log (alert_key, symbol, rule, value, threshold, price, quote_timestamp,"
            " message, source, email_status, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
            (record["alert_key"], record["symbol"], record["rule"], record["value"], record["threshold"],
             record["price"], _naive_utc(record["quote_timestamp"]), record["message"][:512], record["source"],
             email_status, _naive_utc(created_at)),
        )
    return count == 1


def set_email_status(conn: pymysql.Connection, alert_key: str, status: str, error: str | None) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE alert_log SET email_status = %s, email_error = %s WHERE alert_key = %s",
                    (status, error[:512] if error else None, alert_key))


def recent_alerts(conn: pymysql.Connection, limit: int = 100) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute("SELECT alert_key, symbol, rule, value, threshold, price, quote_timestamp, message, source,"
                    " email_status, email_error, created_at FROM alert_log ORDER BY created_at DESC, id DESC"
                    " LIMIT %s", (limit,))
        return list(cur.fetchall())
