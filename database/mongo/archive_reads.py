"""realtime_prices as the archive step (batch/archive.py) reads and deletes it.

The archive works one (symbol, market day) at a time so memory stays bounded by
one symbol's day of quotes, whatever the backlog:

- `symbols_before` finds which symbols have quotes older than the limit
  (ix_timestamp);
- `first_quote_time` jumps to the next day that has quotes, so gaps of days
  cost one index probe, not one query per empty day (uq_symbol_timestamp);
- `day_quotes` reads that day with an index range scan, oldest first;
- `delete_ids` removes exactly the documents that were uploaded, by _id, never
  by a time range that could take a quote the archive did not see.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from pymongo import ASCENDING
from pymongo.database import Database

from database.mongo import REALTIME_PRICES

# Deleting by _id in slices keeps each command far below MongoDB's 16 MB limit.
DELETE_CHUNK = 1000


def symbols_before(db: Database, limit: datetime) -> list[str]:
    """Symbols that have at least one quote with timestamp < limit, sorted."""
    return sorted(db[REALTIME_PRICES].distinct("symbol", {"timestamp": {"$lt": limit}}))


def first_quote_time(db: Database, symbol: str, limit: datetime, after: datetime | None = None) -> datetime | None:
    """Timestamp of the symbol's oldest quote in [after, limit), or None."""
    span: dict[str, datetime] = {"$lt": limit}
    if after is not None:
        span["$gte"] = after
    doc = db[REALTIME_PRICES].find_one(
        {"symbol": symbol, "timestamp": span}, {"_id": 0, "timestamp": 1}, sort=[("timestamp", ASCENDING)]
    )
    return None if doc is None else doc["timestamp"]


def day_quotes(db: Database, symbol: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    """Every quote of `symbol` in [start, end), oldest first, with its _id."""
    cursor = db[REALTIME_PRICES].find({"symbol": symbol, "timestamp": {"$gte": start, "$lt": end}}).sort(
        "timestamp", ASCENDING
    )
    return list(cursor)


def delete_ids(db: Database, ids: Sequence[Any]) -> int:
    """Delete these documents; returns how many were deleted."""
    deleted = 0
    for i in range(0, len(ids), DELETE_CHUNK):
        deleted += db[REALTIME_PRICES].delete_many({"_id": {"$in": list(ids[i:i + DELETE_CHUNK])}}).deleted_count
    return deleted
