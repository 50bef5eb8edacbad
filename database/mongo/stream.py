"""Reads of the web app's push channel: what was stored after a position.

The position is `_id` (an ObjectId: creation second first, so it grows with time, and the
default `_id_` index answers a range on it without any index of ours). Two processes
writing in the same second are not ordered among themselves by their ObjectIds, so the
reader also sweeps, now and then, the positions of the last few seconds for one it has
not sent (flask_web_app/push.py `Tail`, flask_web_app/live_feed.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from bson import ObjectId
from pymongo import ASCENDING, DESCENDING
from pymongo.database import Database

from database.mongo import USER_ALERTS


def stored_after(db: Database, collection: str, after: ObjectId | None, limit: int = 1000) -> list[dict[str, Any]]:
    """Documents with _id above `after` (all when None), oldest position first. realtime_prices
    holds only what the consumer accepted (a quote sent to the DLQ is never stored)."""
    query = {} if after is None else {"_id": {"$gt": after}}
    return list(db[collection].find(query).sort("_id", ASCENDING).limit(limit))


def own_alerts_after(db: Database, user_id: str, after: ObjectId | None, limit: int = 1000) -> list[dict[str, Any]]:
    """One user's own alerts (user_alerts) with _id above `after`, oldest position first: a
    signed-in page's replay. The index on user_id (ix_user_symbol_rule_time) narrows it to the
    user's alerts; no index of its own, since replays are rare and each user's alerts few."""
    query: dict[str, Any] = {"user_id": user_id}
    if after is not None:
        query["_id"] = {"$gt": after}
    return list(db[USER_ALERTS].find(query).sort("_id", ASCENDING).limit(limit))


def positions_after(db: Database, collection: str, after: ObjectId, limit: int = 5000) -> list[ObjectId]:
    """Only the _ids above `after` (the sweep for late writers: small answers)."""
    cursor = db[collection].find({"_id": {"$gt": after}}, {"_id": 1}).sort("_id", ASCENDING).limit(limit)
    return [d["_id"] for d in cursor]


def stored_by_ids(db: Database, collection: str, ids: Sequence[ObjectId]) -> list[dict[str, Any]]:
    if not ids:
        return []
    return list(db[collection].find({"_id": {"$in": list(ids)}}).sort("_id", ASCENDING))


def newest_positions(db: Database, collections: Iterable[str]) -> list[ObjectId | None]:
    """The newest _id of each collection, in order (None for an empty one)."""
    out: list[ObjectId | None] = []
    for collection in collections:
        doc = db[collection].find_one({}, {"_id": 1}, sort=[("_id", DESCENDING)])
        out.append(doc["_id"] if doc else None)
    return out
