"""Reads of the web app's push channel: what was stored after a position.

The position is `_id` (an ObjectId: creation second first, so it grows with time, and the
default `_id_` index answers a range on it without any index of ours). Two processes
writing in the same second are not ordered among themselves by their ObjectIds, so the
reader asks from a floor a few seconds before its newest position and drops what it
already sent (flask_web_app/push.py `Tail`).
"""

from __future__ import annotations

from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from database.mongo import ALERT_HISTORY, REALTIME_PRICES


def _after(db: Database, collection: str, floor: ObjectId | None, limit: int) -> list[dict[str, Any]]:
    query = {} if floor is None else {"_id": {"$gt": floor}}
    return list(db[collection].find(query).sort("_id", ASCENDING).limit(limit))


def quotes_after(db: Database, floor: ObjectId | None, limit: int = 1000) -> list[dict[str, Any]]:
    """Stored quotes with _id above `floor`, oldest position first (only what the consumer accepted)."""
    return _after(db, REALTIME_PRICES, floor, limit)


def alerts_after(db: Database, floor: ObjectId | None, limit: int = 1000) -> list[dict[str, Any]]:
    """Stored alerts (alert_history) with _id above `floor`, oldest position first."""
    return _after(db, ALERT_HISTORY, floor, limit)


def newest_positions(db: Database) -> tuple[ObjectId | None, ObjectId | None]:
    """The newest _id of realtime_prices and of alert_history (None for an empty collection)."""
    out: list[ObjectId | None] = []
    for collection in (REALTIME_PRICES, ALERT_HISTORY):
        doc = db[collection].find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
        out.append(doc["_id"] if doc else None)
    return out[0], out[1]
