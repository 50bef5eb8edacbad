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

MAX_SYMBOLS holds the same way under parallel adds of different new symbols: the registry's own
counter, `symbol_quotas` {_id: REGISTRY_QUOTA, count, version, changed_at}, counts the documents of
`symbols`. An add that may insert takes a registry slot (the conditional $inc) before its upsert
and gives it back when the upsert found the document there; seeding adds what it inserted and
takes off what it deleted (defaults are never refused), a last-follower removal takes off the
document it deleted. Every change bumps `version` and `changed_at` before the document changes,
so a rebuild (a counter missing, or drifted: a process that died between its slot and its
write) never races a change in flight: it recounts only after SETTLE_SECONDS without a change,
and only if nothing changed while it counted.
"""

from __future__ import annotations

import contextlib
import enum
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError, PyMongoError

from database.mongo import SYMBOL_QUOTAS, SYMBOLS

# How often a long-running service re-reads the registry: a symbol added on the dashboard is
# quoted, stored and accepted everywhere within about twice this.
REREAD_SECONDS = 15.0

# The registry's counter in `symbol_quotas` (user ids are ObjectId hex, so this never collides).
REGISTRY_QUOTA = "registry"
# A counter untouched this long has no add or removal in flight (each takes milliseconds), so a
# difference from the collection is drift, not a change half done.
SETTLE_SECONDS = 60.0


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
    rebuild_registry_count(db, now)  # services seed as they start: the moment to mend a drifted counter
    _touch_registry(db, now)
    db[SYMBOLS].update_many({"_id": {"$nin": symbols}, "seeded": True}, {"$set": {"seeded": False}})
    gone = db[SYMBOLS].delete_many({"_id": {"$nin": symbols}, "seeded": False, "followers": {"$size": 0}})
    inserted = 0
    for symbol in symbols:
        try:
            result = db[SYMBOLS].update_one(
                {"_id": symbol},
                {"$set": {"seeded": True},
                 "$setOnInsert": {"name": (names or {}).get(symbol, symbol), "followers": [], "added_at": now,
                                  "simulated": False}},
                upsert=True)
            inserted += result.upserted_id is not None
        except DuplicateKeyError:  # another service inserted it between our find and insert
            db[SYMBOLS].update_one({"_id": symbol}, {"$set": {"seeded": True}})
    # Defaults are registered whatever MAX_SYMBOLS says: counted, never refused.
    if inserted - gone.deleted_count:
        _count_registry(db, inserted - gone.deleted_count, now)


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
    if existing is None and registry_full(db, max_symbols, now):
        return Added.REGISTRY_FULL  # said before the user's slot is taken, as the page asks for it first
    if not _take_slot(db, user_id, max_per_user):
        # A parallel add of this very symbol may hold the last slot: that is a duplicate.
        mine = db[SYMBOLS].count_documents({"_id": symbol, "followers": user_id})
        return Added.DUPLICATE if mine else Added.USER_FULL
    follow = {"$addToSet": {"followers": user_id}}
    # A symbol already in the collection takes no registry slot: follow it without inserting.
    result = db[SYMBOLS].update_one({"_id": symbol}, follow)
    followed = result.modified_count == 1
    if result.matched_count == 0:  # not there (or removed meanwhile): inserting needs a registry slot
        if not _take_registry_slot(db, max_symbols, now):
            _free_slot(db, user_id)
            return Added.REGISTRY_FULL
        try:
            result = db[SYMBOLS].update_one(
                {"_id": symbol},
                {**follow, "$setOnInsert": {"name": name, "seeded": False, "added_at": now, "simulated": simulated}},
                upsert=True)
            inserted = result.upserted_id is not None
            followed = inserted or result.modified_count == 1
        except DuplicateKeyError:  # another user registered it a moment ago: follow that one
            inserted = False
            followed = db[SYMBOLS].update_one({"_id": symbol}, follow).modified_count == 1
        if not inserted:  # someone else's insert counted it: our slot goes back
            _count_registry(db, -1, now)
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


def registry_count(db: Database, now: datetime) -> int:
    """The registry's counter (created from the collection when missing)."""
    _ensure_registry_count(db, now)
    doc = db[SYMBOL_QUOTAS].find_one({"_id": REGISTRY_QUOTA})
    return int(doc["count"]) if doc else 0


def registry_full(db: Database, max_symbols: int, now: datetime) -> bool:
    """A look without taking a slot; a counter at the limit is rebuilt first when it drifted."""
    if registry_count(db, now) < max_symbols:
        return False
    return not rebuild_registry_count(db, now) or registry_count(db, now) >= max_symbols


def _ensure_registry_count(db: Database, now: datetime) -> None:
    with contextlib.suppress(DuplicateKeyError):  # the first change since the counter exists
        db[SYMBOL_QUOTAS].insert_one({"_id": REGISTRY_QUOTA, "count": db[SYMBOLS].count_documents({}),
                                      "version": 0, "changed_at": now})


def _take_registry_slot(db: Database, max_symbols: int, now: datetime) -> bool:
    """One of the registry's `max_symbols` slots, atomically; a counter that says full while
    the collection does not is rebuilt (if settled) and asked once more."""
    _ensure_registry_count(db, now)
    for _ in range(2):
        result = db[SYMBOL_QUOTAS].update_one(
            {"_id": REGISTRY_QUOTA, "count": {"$lt": max_symbols}},
            {"$inc": {"count": 1, "version": 1}, "$set": {"changed_at": now}})
        if result.modified_count == 1:
            return True
        if not rebuild_registry_count(db, now):
            return False
    return False


def _count_registry(db: Database, delta: int, now: datetime) -> None:
    _ensure_registry_count(db, now)
    db[SYMBOL_QUOTAS].update_one({"_id": REGISTRY_QUOTA},
                                 {"$inc": {"count": delta, "version": 1}, "$set": {"changed_at": now}})


def _touch_registry(db: Database, now: datetime) -> None:
    """Announce a change about to happen to the collection, so no rebuild counts it half done."""
    _ensure_registry_count(db, now)
    db[SYMBOL_QUOTAS].update_one({"_id": REGISTRY_QUOTA}, {"$inc": {"version": 1}, "$set": {"changed_at": now}})


def rebuild_registry_count(db: Database, now: datetime) -> bool:
    """Set the counter to the collection's size when it differs and has settled (untouched for
    SETTLE_SECONDS before `now`); the $set matches only the version read, so a change that
    started meanwhile wins. True when the counter changed."""
    _ensure_registry_count(db, now)
    doc = db[SYMBOL_QUOTAS].find_one({"_id": REGISTRY_QUOTA})
    if doc is None:
        return False
    changed_at = doc.get("changed_at")
    if changed_at is not None and changed_at.tzinfo is None:
        changed_at = changed_at.replace(tzinfo=UTC)
    if changed_at is not None and now - changed_at < timedelta(seconds=SETTLE_SECONDS):
        return False
    actual = db[SYMBOLS].count_documents({})
    if actual == doc["count"]:
        return False
    result = db[SYMBOL_QUOTAS].update_one(
        {"_id": REGISTRY_QUOTA, "version": doc.get("version"), "count": doc["count"]},
        {"$set": {"count": actual, "changed_at": now}, "$inc": {"version": 1}})
    return result.modified_count == 1


def remove_follower(db: Database, symbol: str, user_id: str, now: datetime | None = None) -> bool:
    """`user_id` stops following `symbol`; the last follower's removal unregisters a user-added
    symbol (its stored quotes stay) and frees its registry slot. False when the user did not follow it."""
    if not isinstance(symbol, str):
        return False
    result = db[SYMBOLS].update_one({"_id": symbol, "followers": user_id}, {"$pull": {"followers": user_id}})
    if result.modified_count == 0:
        return False
    _free_slot(db, user_id)
    now = now or datetime.now(UTC)
    last = {"_id": symbol, "seeded": {"$ne": True}, "followers": {"$size": 0}}
    if db[SYMBOLS].count_documents(last):
        _touch_registry(db, now)
        if db[SYMBOLS].delete_one(last).deleted_count:
            _count_registry(db, -1, now)
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
