"""alert_log: the MySQL copy of every alert (Grafana and the batch read it).

alert_key is UNIQUE, so INSERT IGNORE makes storing a redelivered alert a no-op.
Timestamps are stored as naive UTC (DATETIME has no zone).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pymysql

UNKNOWN_COLUMN = 1054


class MissingWhyColumnsError(RuntimeError):
    """alert_log predates band/baseline (database/migrations/001_alert_log_why.sql not run)."""


def _naive_utc(ts: datetime) -> datetime:
    return ts.astimezone(UTC).replace(tzinfo=None) if ts.tzinfo else ts


def insert_alert(conn: pymysql.Connection, record: dict[str, Any], email_status: str, created_at: datetime,
                 *, with_why: bool = True) -> bool:
    """Store the alert once; False when its alert_key is already there.

    with_why=False leaves out band/baseline (an alert_log from before them);
    with them missing, MissingWhyColumnsError."""
    columns = ["alert_key", "symbol", "rule", "value", "threshold", "price", "quote_timestamp", "message", "source",
               "email_status", "created_at"]
    values = [record["alert_key"], record["symbol"], record["rule"], record["value"], record["threshold"],
              record["price"], _naive_utc(record["quote_timestamp"]), record["message"][:512], record["source"],
              email_status, _naive_utc(created_at)]
    if with_why:
        columns += ["band", "baseline", "baseline_kind"]
        values += [record.get("band"), record.get("baseline"), record.get("baseline_kind")]
    sql = (f"INSERT IGNORE INTO alert_log ({', '.join(columns)}) "  # noqa: S608 - fixed column names
           f"VALUES ({', '.join(['%s'] * len(columns))})")
    with conn.cursor() as cur:
        try:
            count = cur.execute(sql, values)
        except (pymysql.err.OperationalError, pymysql.err.ProgrammingError) as exc:
            if exc.args and exc.args[0] == UNKNOWN_COLUMN:
                raise MissingWhyColumnsError(str(exc)) from exc
            raise
    return count == 1


def set_email_status(conn: pymysql.Connection, alert_key: str, status: str, error: str | None) -> None:
    with conn.cursor() as cur:
        cur.execute("UPDATE alert_log SET email_status = %s, email_error = %s WHERE alert_key = %s",
                    (status, error[:512] if error else None, alert_key))

