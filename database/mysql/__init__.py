"""MySQL connection handling for stock_analytics.

Queries live in the modules of this package (one per area: aggregates, alerts,
...); services call those functions and never write SQL of their own. Every
statement uses parameters, never string formatting of values.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pymysql
import pymysql.cursors

from common.retry import Backoff, retry
from config import Settings

log = logging.getLogger(__name__)
SCHEMA_PATH = Path(__file__).resolve().parent.parent / "mysql_schema.sql"


class MySQLUnavailableError(RuntimeError):
    """MySQL could not be reached after the retries allowed."""


def connect(settings: Settings, *, database: str | None = None, connect_timeout: int = 5) -> pymysql.Connection:
    """A new autocommit connection returning rows as dicts."""
    return pymysql.connect(
        host=settings.mysql_host,
        port=settings.mysql_port,
        user=settings.mysql_user,
        password=settings.mysql_password,
        database=database if database is not None else settings.mysql_database,
        connect_timeout=connect_timeout,
        read_timeout=30,
        write_timeout=30,
        autocommit=True,
        charset="utf8mb4",
        cursorclass=pymysql.cursors.DictCursor,
    )


def connect_with_retry(
    settings: Settings, *, attempts: int = 5, backoff: float = 1.0, max_backoff: float = 15.0
) -> pymysql.Connection:
    """Connect, retrying with exponential backoff; MySQLUnavailableError with the cause when it gives up."""
    try:
        return retry(lambda: connect(settings),
                     what=f"connecting to MySQL at {settings.mysql_host}:{settings.mysql_port}",
                     retry_on=(pymysql.err.OperationalError,), attempts=attempts,
                     backoff=Backoff(backoff, max_backoff), log=log)
    except pymysql.err.OperationalError as last:
        raise MySQLUnavailableError(
            f"MySQL at {settings.mysql_host}:{settings.mysql_port} is unreachable after {attempts} attempts: {last}"
        ) from None


@contextmanager
def transaction(conn: pymysql.Connection) -> Iterator[pymysql.cursors.DictCursor]:
    """A cursor inside one transaction: committed on success, rolled back on error."""
    conn.begin()
    try:
        with conn.cursor() as cur:
            yield cur
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


def split_sql(script: str) -> list[str]:
    """Split a schema script into statements.

    The schema has no procedures and no ';' inside string literals, so ';' ends
    each statement (tests/test_mysql_schema.py would catch a violation).
    """
    without_comments = re.sub(r"^\s*--.*$", "", script, flags=re.MULTILINE)
    return [stmt.strip() for stmt in without_comments.split(";") if stmt.strip()]


def schema_statements(database: str = "stock_analytics") -> list[str]:
    """The statements of database/mysql_schema.sql, optionally for another database name."""
    script = SCHEMA_PATH.read_text(encoding="utf-8")
    if database != "stock_analytics":
        script = script.replace("stock_analytics", database)
    return split_sql(script)


def apply_schema(conn: pymysql.Connection, database: str = "stock_analytics") -> None:
    """Run the schema (idempotent) on a connection with enough privileges (root)."""
    with conn.cursor() as cur:
        for stmt in schema_statements(database):
            cur.execute(stmt)
