"""Reads of the web app's push channel: what was stored after a position.

The position is `_id` (an ObjectId: creation second first, so it grows with time, and the
default `_id_` index answers a range on it without any index of ours). Two processes
writing in the same second are not ordered among themselves by their ObjectIds, so the
reader also sweeps, now and then, the positions of the last few seconds for one it has
not sent (flask_web_app/push.py `Tail`, flask_web_app/live_feed.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from database.mongo import ALERT_HISTORY, REALTIME_PRICES

# The collections the push channel follows.
FOLLOWED = (REALTIME_PRICES, ALERT_HISTORY)


def stored_after(db: Database, collection: str, after: ObjectId | None, limit: int = 1000) -> list[dict[str, Any]]:
    """Documents with _id above `after` (all when None), oldest position first. realtime_prices
    holds only what the consumer accepted (a quote sent to the DLQ is never stored)."""
    query = {} if after is None else {"_id": {"$gt": after}}
    return list(db[collection].find(query).sort("_id", ASCENDING).limit(limit))


def positions_after(db: Database, collection: str, after: ObjectId, limit: int = 5000) -> list[ObjectId]:
    """Only the _ids above `after` (the sweep for late writers: small answers)."""
    cursor = db[collection].find({"_id": {"$gt": after}}, {"_id": 1}).sort("_id", ASCENDING).limit(limit)
    return [d["_id"] for d in cursor]


def stored_by_ids(db: Database, collection: str, ids: Sequence[ObjectId]) -> list[dict[str, Any]]:
    if not ids:
        return []
    return list(db[collection].find({"_id": {"$in": list(ids)}}).sort("_id", ASCENDING))


def newest_positions(db: Database) -> tuple[ObjectId | None, ObjectId | None]:
    """The newest _id of realtime_prices and of alert_history (None for an empty collection)."""
    out: list[ObjectId | None] = []
    for collection in FOLLOWED:
        doc = db[collection].find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
        out.append(doc["_id"] if doc else None)
    return out[0], out[1]
