"""The Alpha Vantage call budget, shared by every process through MongoDB.

The producer, the backfill and the news job all spend the same API key, so the
budget cannot live in one process's memory. Each minute and each UTC day is a
counter document; a call is taken with one atomic conditional $inc.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from database.mongo import API_BUDGET


class MongoCallBudget:
    def __init__(self, db: Database, per_minute: int, per_day: int, name: str = "alpha_vantage",
                 clock: Callable[[], float] = time.time) -> None:
        self.coll = db[API_BUDGET]
        self.per_minute = per_minute
        self.per_day = per_day
        self.name = name
        self.clock = clock

    def _take(self, key: str, limit: int, expires_at: datetime) -> bool:
        try:
            # Matches only while under the limit; at the limit the upsert tries to
            # insert a second document with the same _id and fails: exhausted.
            self.coll.update_one(
                {"_id": key, "count": {"$lt": limit}},
                {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": expires_at}},
                upsert=True,
            )
            return True
        except DuplicateKeyError:
            return False

    def try_spend(self) -> bool:
        if self.per_minute <= 0 or self.per_day <= 0:
            return False
        now = datetime.fromtimestamp(self.clock(), tz=UTC)
        minute_key = f"{self.name}:minute:{now:%Y-%m-%dT%H:%M}"
        day_key = f"{self.name}:day:{now:%Y-%m-%d}"
        if not self._take(minute_key, self.per_minute, now + timedelta(minutes=2)):
            return False
        if not self._take(day_key, self.per_day, now + timedelta(days=2)):
            self.coll.update_one({"_id": minute_key}, {"$inc": {"count": -1}})  # give the minute back
            return False
        return True
