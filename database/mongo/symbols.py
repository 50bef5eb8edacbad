"""symbols: the registry of followed tickers (which symbols the pipeline quotes, stores and aggregates).

One document per symbol, keyed by the ticker:
    _id         the ticker ("IBM")
    name        the company's name as the source gave it (or the ticker)
    seeded      True for the STOCK_SYMBOLS defaults: everyone's, never removed from the registry
    followers   ids (str) of the users who added it
    added_at    when it entered the registry
    simulated   True when no real source was asked (only the simulator in the chain)
    backfilled_at  when the batch's backfill watcher gave it daily history (absent: not yet), so
                a restarted batch container does not redo it

A symbol is registered while it is seeded or has a follower; the last follower's removal
deletes its document (its stored quotes stay). Limits (MAX_SYMBOLS, MAX_SYMBOLS_PER_USER) are
checked here so every caller says no the same way.

The per-user limit holds under parallel adds (two web workers, a double click): a user's slot is
taken by one conditional update of their counter in `symbol_quotas` ({_id: user id, count}), which
only matches while count < the limit, before the follow is written; a follow that turns out to be
a duplicate gives its slot back, and a removal frees one.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from database.mongo import SYMBOL_QUOTAS, SYMBOLS

# How often a long-running service re-reads the registry: a symbol added on the dashboard is
# quoted, stored and accepted everywhere within about twice this.
REREAD_SECONDS = 15.0


class Added(enum.StrEnum):
    """The outcome of `add_follower`, each with the sentence the page shows."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    DEFAULT = "default"
    REGISTRY_FULL = "registry_full"
    USER_FULL = "user_full"


# Registered = seeded or followed by someone.
_REGISTERED = {"$or": [{"seeded": True}, {"followers.0": {"$exists": True}}]}


def seed_symbols(db: Database, symbols: Iterable[str], now: datetime, names: dict[str, str] | None = None) -> None:
    """Register the defaults; idempotent and safe when services start at once (the first insert wins).
    A symbol taken out of STOCK_SYMBOLS stops being a default (and leaves the registry unless followed)."""
    symbols = list(symbols)
    db[SYMBOLS].update_many({"_id": {"$nin": symbols}, "seeded": True}, {"$set": {"seeded": False}})
    db[SYMBOLS].delete_many({"_id": {"$nin": symbols}, "seeded": False, "followers": {"$size": 0}})
    for symbol in symbols:
        try:
            db[SYMBOLS].update_one(
                {"_id": symbol},
                {"$set": {"seeded": True},
                 "$setOnInsert": {"name": (names or {}).get(symbol, symbol), "followers": [], "added_at": now,
                                  "simulated": False}},
                upsert=True)
        except DuplicateKeyError:  # another service inserted it between our find and insert
            db[SYMBOLS].update_one({"_id": symbol}, {"$set": {"seeded": True}})


def registered_symbols(db: Database, defaults: Iterable[str] = ()) -> list[str]:
    """Every registered symbol: `defaults` first in their order, then the others as they were added."""
    docs = db[SYMBOLS].find(_REGISTERED, {"_id": 1}).sort([("added_at", 1), ("_id", 1)])
    first = list(dict.fromkeys(defaults))
    return first + [d["_id"] for d in docs if d["_id"] not in first]


def registry_entries(db: Database) -> list[dict[str, Any]]:
    """Every registered symbol's _id, name and followers, in the order they were added."""
    return list(db[SYMBOLS].find(_REGISTERED, {"_id": 1, "name": 1, "followers": 1})
                .sort([("added_at", 1), ("_id", 1)]))


def name_unnamed(db: Database, names: dict[str, str]) -> int:
    """Give symbols still named by their ticker the company name a source answered with
    (the first real name wins; a name never changes afterwards). Returns how many changed."""
    changed = 0
    for symbol, name in names.items():
        if name and name != symbol:
            changed += db[SYMBOLS].update_one({"_id": symbol, "name": {"$in": [symbol, None]}},
                                              {"$set": {"name": name}}).modified_count
    return changed


def awaiting_backfill(db: Database) -> list[str]:
    """Registered symbols the backfill has not handled yet, in the order they were added."""
    docs = db[SYMBOLS].find({**_REGISTERED, "backfilled_at": {"$exists": False}},
                            {"_id": 1}).sort([("added_at", 1), ("_id", 1)])
    return [d["_id"] for d in docs]


def mark_backfilled(db: Database, symbols: Iterable[str], now: datetime) -> None:
    """Record that `symbols` have their daily history (a symbol removed meanwhile is not revived)."""
    symbols = list(symbols)
    if symbols:
        db[SYMBOLS].update_many({"_id": {"$in": symbols}}, {"$set": {"backfilled_at": now}})


def find_symbol(db: Database, symbol: str) -> dict[str, Any] | None:
    return db[SYMBOLS].find_one({"_id": symbol}) if isinstance(symbol, str) else None


def followed_by(db: Database, user_id: str) -> list[dict[str, Any]]:
    """The symbols a user added, oldest first."""
    return list(db[SYMBOLS].find({"followers": user_id}).sort([("added_at", 1), ("_id", 1)]))


def add_follower(db: Database, symbol: str, user_id: str, *, name: str, simulated: bool, now: datetime,
                 max_symbols: int, max_per_user: int) -> Added:
    """Make `user_id` follow `symbol` (registering it if new), within the limits."""
    existing = find_symbol(db, symbol)
    if existing is not None and existing.get("seeded"):
        return Added.DEFAULT
    if existing is not None and user_id in existing.get("followers", []):
        return Added.DUPLICATE
    if existing is None or not existing.get("followers"):
        total = db[SYMBOLS].count_documents(_REGISTERED)
        if total >= max_symbols:
            return Added.REGISTRY_FULL
    if not _take_slot(db, user_id, max_per_user):
        # A parallel add of this very symbol may hold the last slot: that is a duplicate.
        mine = db[SYMBOLS].count_documents({"_id": symbol, "followers": user_id})
        return Added.DUPLICATE if mine else Added.USER_FULL
    change = {"$addToSet": {"followers": user_id},
              "$setOnInsert": {"name": name, "seeded": False, "added_at": now, "simulated": simulated}}
    try:
        result = db[SYMBOLS].update_one({"_id": symbol}, change, upsert=True)
        followed = result.upserted_id is not None or result.modified_count == 1
    except DuplicateKeyError:  # another user registered it a moment ago: follow that one
        followed = db[SYMBOLS].update_one({"_id": symbol}, {"$addToSet": {"followers": user_id}}).modified_count == 1
    if not followed:  # the same user's parallel add of the same symbol won: give the slot back
        _free_slot(db, user_id)
        return Added.DUPLICATE
    return Added.ADDED


def _take_slot(db: Database, user_id: str, max_per_user: int) -> bool:
    """One of the user's `max_per_user` slots, atomically: the $inc matches only below the limit."""
    with contextlib.suppress(DuplicateKeyError):  # the first add since counters exist: what they follow now
        db[SYMBOL_QUOTAS].insert_one({"_id": user_id, "count": db[SYMBOLS].count_documents({"followers": user_id})})
    result = db[SYMBOL_QUOTAS].update_one({"_id": user_id, "count": {"$lt": max_per_user}}, {"$inc": {"count": 1}})
    return result.modified_count == 1


def _free_slot(db: Database, user_id: str) -> None:
    db[SYMBOL_QUOTAS].update_one({"_id": user_id, "count": {"$gt": 0}}, {"$inc": {"count": -1}})


def remove_follower(db: Database, symbol: str, user_id: str) -> bool:
    """`user_id` stops following `symbol`; the last follower's removal unregisters a user-added
    symbol (its stored quotes stay). False when the user did not follow it."""
    if not isinstance(symbol, str):
        return False
    result = db[SYMBOLS].update_one({"_id": symbol, "followers": user_id}, {"$pull": {"followers": user_id}})
    if result.modified_count == 0:
        return False
    _free_slot(db, user_id)
    db[SYMBOLS].delete_one({"_id": symbol, "seeded": {"$ne": True}, "followers": {"$size": 0}})
    return True


class RegistryReader:
    """The registered symbols for a long-running service, read at most every `ttl` seconds.

    The first read seeds the defaults (STOCK_SYMBOLS), so whichever service starts first seeds
    the registry. While MongoDB is down the last read stands (before any read: the defaults),
    so a store outage never empties the producer's or the consumer's list."""

    def __init__(self, db: Callable[[], Database], defaults: Iterable[str], *, ttl: float = REREAD_SECONDS,
                 now: Callable[[], datetime], monotonic: Callable[[], float] = time.monotonic) -> None:
        self._db = db
        self.defaults = list(dict.fromkeys(defaults))
        self.ttl = ttl
        self._now = now
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._symbols = list(self.defaults)
        self._read_at: float | None = None
        self._seeded = False
        self.error: PyMongoError | None = None  # the last read's failure, None once a read works

    def symbols(self) -> list[str]:
        with self._lock:
            if self._read_at is None or self._monotonic() - self._read_at >= self.ttl:
                self._read()
            return list(self._symbols)

    def forget(self) -> None:
        """Read again on the next call (after this process changed the registry)."""
        with self._lock:
            self._read_at = None

    def _read(self) -> None:
        self._read_at = self._monotonic()
        try:
            db = self._db()
            if not self._seeded:
                seed_symbols(db, self.defaults, self._now())
                self._seeded = True
            self._symbols = registered_symbols(db, self.defaults)
            self.error = None
        except PyMongoError as exc:
            self.error = exc
