"""realtime_prices: the stream of quotes, one document per (symbol, timestamp)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from bson.errors import BSONError
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError, WriteError

from database.mongo import REALTIME_PRICES

# Fields the pages and the digest read; _id is left out.
QUOTE_PROJECTION = {"_id": 0}


def insert_quotes(db: Database, docs: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Store quotes idempotently; returns (inserted, already_present).

    One unordered bulk insert: the unique (symbol, timestamp) index rejects a
    redelivered quote (E11000) and the rest of the batch still goes in, so
    at-least-once delivery never produces a duplicate and the first write wins.
    Plain inserts rather than upserts: the common case (new quotes) costs one
    index probe instead of a query plus an insert per document.
    """
    if not docs:
        return 0, 0
    # Copies: insert_many adds _id to what it is given, and a retried batch
    # must not carry the _id of an earlier attempt.
    try:
        result = db[REALTIME_PRICES].insert_many([dict(d) for d in docs], ordered=False)
        inserted = len(result.inserted_ids)
    except BulkWriteError as exc:
        # Duplicates are the point of the unique index; anything else is a real failure.
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        inserted = exc.details.get("nInserted", 0)
    return inserted, len(docs) - inserted


# What one document can raise by itself: BSON cannot encode it (an int beyond 8 bytes
# raises OverflowError, a key or type it refuses InvalidDocument/TypeError), or the
# server refuses it (a write error: too large, fails a validator). Retrying never helps.
DOCUMENT_ERRORS = (BSONError, OverflowError, TypeError, ValueError, WriteError)


def insert_quotes_refusing(db: Database, docs: Sequence[dict[str, Any]]) -> tuple[int, int, dict[int, str]]:
    """As insert_quotes, but a document MongoDB cannot take is refused instead of failing
    the batch: returns (inserted, already_present, {index in docs: reason}). The others
    are stored; an error of the connection or the server (PyMongoError) still raises."""
    try:
        inserted, present = insert_quotes(db, docs)
        return inserted, present, {}
    except BulkWriteError as exc:
        if exc.details.get("writeConcernErrors"):
            raise
        refused = {e["index"]: f"MongoDB refused it: {e.get('errmsg', e.get('code'))}"
                   for e in exc.details.get("writeErrors", []) if e.get("code") != 11000}
        inserted = exc.details.get("nInserted", 0)
        return inserted, len(docs) - inserted - len(refused), refused
    except DOCUMENT_ERRORS:
        pass  # the driver could not encode one of them: find which, one at a time
    inserted, present, refused = 0, 0, {}
    for i, doc in enumerate(docs):
        try:
            db[REALTIME_PRICES].insert_one(dict(doc))
            inserted += 1
        except DuplicateKeyError:
            present += 1
        except DOCUMENT_ERRORS as exc:
            refused[i] = f"MongoDB cannot store it: {type(exc).__name__}: {exc}"
    return inserted, present, refused


def latest_quotes(db: Database, symbols: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The newest quote of each symbol (one index walk per symbol)."""
    coll = db[REALTIME_PRICES]
    latest: dict[str, dict[str, Any]] = {}
    for symbol in symbols:
        doc = coll.find_one({"symbol": symbol}, QUOTE_PROJECTION, sort=[("timestamp", DESCENDING)])
        if doc is not None:
            latest[symbol] = doc
    return latest


def intraday(db: Database, symbol: str, start: datetime, end: datetime, limit: int = 5000) -> list[dict[str, Any]]:
    """Quotes of one symbol in [start, end), oldest first (index range scan)."""
    cursor = (
        db[REALTIME_PRICES]
        .find({"symbol": symbol, "timestamp": {"$gte": start, "$lt": end}}, QUOTE_PROJECTION)
        .sort("timestamp", ASCENDING)
        .limit(limit)
    )
    return list(cursor)


def recent_quotes(db: Database, symbol: str, limit: int) -> list[dict[str, Any]]:
    """The newest `limit` quotes of one symbol, oldest first (index walked backwards).

    Added for the web app's sparklines.
    """
    cursor = (
        db[REALTIME_PRICES]
        .find({"symbol": symbol}, QUOTE_PROJECTION)
        .sort("timestamp", DESCENDING)
        .limit(limit)
    )
    docs = list(cursor)
    docs.reverse()
    return docs


def volumes_before(db: Database, symbol: str, before: datetime, limit: int) -> list[tuple[datetime, int]]:
    """(timestamp, volume) of the newest `limit` quotes of a symbol older than `before`,
    oldest first (the alerts service refills its volume window with them). Quotes sent
    while the market was closed (volume 0) are not part of any window."""
    cursor = (
        db[REALTIME_PRICES]
        .find({"symbol": symbol, "timestamp": {"$lt": before}, "market_open": {"$ne": False}},
              {"_id": 0, "timestamp": 1, "volume": 1})
        .sort("timestamp", DESCENDING)
        .limit(limit)
    )
    rows = [(d["timestamp"], int(d.get("volume") or 0)) for d in cursor]
    rows.reverse()
    return rows


def volumes_in_windows(db: Database, symbol: str, windows: Sequence[tuple[datetime, datetime]]) -> list[list[int]]:
    """Volumes of a symbol's quotes in each [start, end) window (one query; the alerts
    service's time-of-day baseline: the same bucket on earlier days)."""
    if not windows:
        return []
    # The symbol inside every clause: each is its own range walk of uq_symbol_timestamp.
    # Quotes sent while the market was closed (volume 0) are no part of any baseline.
    cursor = db[REALTIME_PRICES].find(
        {"$or": [{"symbol": symbol, "timestamp": {"$gte": a, "$lt": b}, "market_open": {"$ne": False}}
                 for a, b in windows]},
        {"_id": 0, "timestamp": 1, "volume": 1},
    )
    found: list[list[int]] = [[] for _ in windows]
    for doc in cursor:
        ts = doc["timestamp"]
        for i, (a, b) in enumerate(windows):
            if a <= ts < b:
                found[i].append(int(doc.get("volume") or 0))
                break
    return found
