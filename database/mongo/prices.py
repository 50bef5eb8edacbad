"""realtime_prices: the stream of quotes, one document per (symbol, timestamp)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError

from database.mongo import REALTIME_PRICES

# Fields the pages and the digest read; _id is left out.
QUOTE_PROJECTION = {"_id": 0}


def insert_quotes(db: Database, docs: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Store quotes idempotently; returns (inserted, already_present).

    One unordered bulk of upserts keyed on (symbol, timestamp): a redelivered
    quote matches its stored twin and changes nothing ($setOnInsert), so
    at-least-once delivery never produces a duplicate.
    """
    if not docs:
        return 0, 0
    ops = [
        UpdateOne({"symbol": d["symbol"], "timestamp": d["timestamp"]}, {"$setOnInsert": d}, upsert=True)
        for d in docs
    ]
    try:
        result = db[REALTIME_PRICES].bulk_write(ops, ordered=False)
        inserted = result.upserted_count
    except BulkWriteError as exc:
        # Two upserts of the same new key racing (two consumers, or one batch
        # holding a quote twice) lose with E11000: the document is there, which
        # is all we wanted. Anything else is a real failure.
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        inserted = exc.details.get("nUpserted", 0)
    return inserted, len(docs) - inserted


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


def count_quotes(db: Database, symbol: str | None = None) -> int:
    return db[REALTIME_PRICES].count_documents({} if symbol is None else {"symbol": symbol})
