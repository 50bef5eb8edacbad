"""Wiring of MongoDB and MySQL into the app (the flaskr db.py pattern).

One MongoClient per process (thread-safe, pooled), created lazily so that each
gunicorn worker makes its own after the fork. One MySQL connection per request,
opened on first use and closed at teardown. The queries themselves live in
database/.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import pymysql
from flask import Flask, current_app, g
from pymongo import MongoClient
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.clock import utc_now
from config import Settings
from database.mongo import get_db, make_client
from database.mongo.symbols import RegistryReader
from database.mysql import MySQLUnavailableError, connect
from database.mysql.dashboard import ping as mysql_ping
from database.setup_mongodb import ensure_indexes
from logs.logger_config import get_logger

log = get_logger("flask_web_app.db")
T = TypeVar("T")

MONGO_ERRORS: tuple[type[Exception], ...] = (PyMongoError,)
MYSQL_ERRORS: tuple[type[Exception], ...] = (
    pymysql.err.OperationalError, pymysql.err.InterfaceError, MySQLUnavailableError,
)
# A page waits at most this long for a store that is down, then says so.
MONGO_TIMEOUT_MS = 2000
MYSQL_CONNECT_TIMEOUT_S = 2

UNAVAILABLE = {
    "mongodb": "MongoDB is unreachable right now, so this part cannot be shown "
               "(check `docker compose ps mongodb`; /healthz shows what is down).",
    "mysql": "MySQL is unreachable right now, so this part cannot be shown "
             "(check `docker compose ps mysql`; /healthz shows what is down).",
}


class Stores:
    """The app's handles on MongoDB and MySQL."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._client: MongoClient | None = None
        self._lock = threading.Lock()
        self._indexes_ready = False

    @property
    def client(self) -> MongoClient:
        with self._lock:
            if self._client is None:
                self._client = make_client(self.settings, server_selection_timeout_ms=MONGO_TIMEOUT_MS)
            return self._client

    def mongo(self) -> Database:
        return get_db(self.client, self.settings)

    def ensure_indexes(self) -> bool:
        """Create the collections' indexes once per process; False while MongoDB is down.

        Called at start and again before a write that depends on a unique index
        (registration), in case MongoDB was down when the app started.
        """
        if self._indexes_ready:
            return True
        try:
            ensure_indexes(self.mongo())
        except MONGO_ERRORS as exc:
            log.warning("MongoDB indexes not ensured yet: %s", exc)
            return False
        self._indexes_ready = True
        return True

    def mysql_connect(self) -> pymysql.Connection:
        return connect(self.settings, connect_timeout=MYSQL_CONNECT_TIMEOUT_S)

    def health(self) -> dict[str, dict[str, Any]]:
        report: dict[str, dict[str, Any]] = {}
        try:
            self.client.admin.command("ping")
            report["mongodb"] = {"ok": True}
        except MONGO_ERRORS as exc:
            report["mongodb"] = {"ok": False, "error": type(exc).__name__}
        try:
            conn = self.mysql_connect()
            try:
                mysql_ping(conn)
            finally:
                conn.close()
            report["mysql"] = {"ok": True}
        except MYSQL_ERRORS as exc:
            report["mysql"] = {"ok": False, "error": type(exc).__name__}
        return report

    def close(self) -> None:
        with self._lock:
            if self._client is not None:
                self._client.close()
                self._client = None


def stores() -> Stores:
    return current_app.extensions["stores"]


def get_mongo() -> Database:
    return stores().mongo()


def get_mysql() -> pymysql.Connection:
    """This request's MySQL connection (opened on first use)."""
    if "mysql" not in g:
        # One failed connect per request: the page's other MySQL parts fail
        # at once instead of each waiting for its own connect timeout.
        if "mysql_error" in g:
            raise g.mysql_error
        try:
            g.mysql = stores().mysql_connect()
        except MYSQL_ERRORS as exc:
            g.mysql_error = exc
            raise
    return g.mysql


def close_mysql(_exc: BaseException | None = None) -> None:
    conn = g.pop("mysql", None)
    if conn is not None:
        with contextlib.suppress(Exception):  # already broken: nothing to release
            conn.close()


def attempt(store: str, fn: Callable[[], T], default: T) -> tuple[T, str | None]:
    """Run a read; when its store is down return (default, message for the page)."""
    errors = MONGO_ERRORS if store == "mongodb" else MYSQL_ERRORS
    try:
        return fn(), None
    except errors as exc:
        log.warning("%s read failed: %s", store, exc)
        if store == "mysql":
            close_mysql()
        return default, UNAVAILABLE[store]


def known_symbols() -> list[str]:
    """Every registered symbol (STOCK_SYMBOLS first), re-read every REREAD_SECONDS."""
    return registry().symbols()


def is_registered(symbol: str) -> bool:
    """In the registry. Before saying no, read it again: another worker (gunicorn) may have
    registered the symbol since this one last read it, e.g. the user's own addition a moment ago."""
    if symbol in known_symbols():
        return True
    registry().forget()
    return symbol in known_symbols()


def listed_symbols(own: list[str] | None = None) -> list[str]:
    """What the pages list for this visitor: their watchlist first, then the defaults (STOCK_SYMBOLS),
    then the tickers they added (`own`, read here when not given). Other users' tickers are
    registered (their dashboards and the API answer for them) but not listed: with MAX_SYMBOLS (500)
    registered, a page of every symbol would be one nobody reads, and 500 index walks a view."""
    from database.mongo.symbols import followed_by

    known = known_symbols()
    user = g.get("user")
    if own is None:
        own = [d["_id"] for d in attempt("mongodb", lambda: followed_by(get_mongo(), str(user["_id"])), [])[0]] \
            if user is not None else []
    watch = [s for s in (user or {}).get("watchlist", []) if s in known]
    defaults = [s for s in registry().defaults if s in known]
    # Own additions even before this worker re-reads the registry (they are registered by now).
    return list(dict.fromkeys([*watch, *defaults, *own]))


def registry() -> RegistryReader:
    return current_app.extensions["registry"]


def init_app(app: Flask, settings: Settings) -> Stores:
    s = Stores(settings)
    app.extensions["stores"] = s
    # Other workers' additions show within this; this worker's own at once (RegistryReader.forget).
    app.extensions["registry"] = RegistryReader(s.mongo, settings.stock_symbols, now=utc_now)
    app.teardown_appcontext(close_mysql)
    return s
