"""Open MongoDB and MySQL for a batch run, failing fast with a clear message."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pymysql
from pymongo.database import Database
from pymongo.errors import PyMongoError

from config import Settings
from database.mongo import get_db, make_client
from database.mysql import MySQLUnavailableError, connect_with_retry
from database.setup_mongodb import ensure_indexes
from logs.logger_config import get_logger


class StoreUnavailableError(RuntimeError):
    """A database the batch needs is down or refused us; the message says which."""


def describe_failure(exc: BaseException, settings: Settings) -> str | None:
    """One clear line for a database failure, or None if `exc` is not one."""
    if isinstance(exc, StoreUnavailableError | MySQLUnavailableError):
        return str(exc)
    if isinstance(exc, PyMongoError):
        return f"MongoDB at {settings.mongo_uri} failed: {type(exc).__name__}: {str(exc)[:300]}"
    if isinstance(exc, pymysql.err.MySQLError):
        return f"MySQL at {settings.mysql_host}:{settings.mysql_port} failed: {type(exc).__name__}: {exc}"
    return None


@contextmanager
def open_stores(settings: Settings, *, mysql_attempts: int = 3) -> Iterator[tuple[Database, pymysql.Connection]]:
    """(MongoDB database, MySQL connection); StoreUnavailableError when either is down."""
    client = make_client(settings)
    conn = None
    try:
        try:
            client.admin.command("ping")
            db = get_db(client, settings)
            # The day pipeline relies on the (symbol, timestamp) index: make sure it exists.
            ensure_indexes(db)
        except PyMongoError as exc:
            raise StoreUnavailableError(f"MongoDB at {settings.mongo_uri} is unreachable: {str(exc)[:300]}") from exc
        try:
            conn = connect_with_retry(settings, attempts=mysql_attempts, backoff=1.0)
        except MySQLUnavailableError as exc:
            raise StoreUnavailableError(str(exc)) from exc
        except pymysql.err.MySQLError as exc:  # e.g. access denied, unknown database
            raise StoreUnavailableError(
                f"MySQL at {settings.mysql_host}:{settings.mysql_port} refused the connection: {exc}"
            ) from exc
        yield db, conn
    finally:
        if conn is not None:
            conn.close()
        client.close()


def run_with_stores(settings: Settings, what: str, job: Callable[[Database, pymysql.Connection], object]) -> int:
    """Run a one-shot job on both stores; a store that is down is one clear line and exit 1
    (the next run is unaffected). Anything else is a bug and raises."""
    try:
        with open_stores(settings) as (db, conn):
            job(db, conn)
    except Exception as exc:
        message = describe_failure(exc, settings)
        if message is None:
            raise
        get_logger("batch.stores").error("%s failed: %s", what, message)
        print(f"{what} failed: {message}", file=sys.stderr)
        return 1
    return 0
