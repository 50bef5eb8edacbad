"""realtime_prices read by the batch job: per-symbol figures of one market day,
and the retention delete.

The figures come from MongoDB's aggregation pipeline, one pipeline per symbol:
$match on (symbol, timestamp range) walks the uq_symbol_timestamp index, so
only that symbol's quotes of that day are read, in timestamp order, and
$group reduces them on the server. Nothing is loaded into the batch process
beyond one small document per symbol.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from pymongo.database import Database

from database.mongo import REALTIME_PRICES


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) of a calendar day in the market time zone, as aware datetimes.

    A DST day is 23 or 25 hours long; building both ends from local midnights
    (rather than start + 24h) keeps that right.
    """
    start = datetime.combine(day, time.min, tzinfo=tz)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=tz)
    return start, end


def _pipeline(symbol: str, start: datetime, end: datetime) -> list[dict[str, Any]]:
    return [
        # Quotes sent while the market was closed repeat the last price: not part of the day.
        {"$match": {"symbol": symbol, "timestamp": {"$gte": start, "$lt": end}, "market_open": {"$ne": False}}},
        # Index order already; the explicit sort makes $first/$last well defined.
        {"$sort": {"timestamp": 1}},
        {"$group": {
            "_id": "$symbol",
            "open": {"$first": "$price"},
            "close": {"$last": "$price"},
            "high": {"$max": "$price"},
            "low": {"$min": "$price"},
            "avg_price": {"$avg": "$price"},
            "volatility": {"$stdDevPop": "$price"},
            "total_volume": {"$sum": {"$ifNull": ["$volume", 0]}},
            "tick_count": {"$sum": 1},
            "sources": {"$addToSet": "$source"},
            "first_at": {"$min": "$timestamp"},
            "last_at": {"$max": "$timestamp"},
        }},
    ]


def symbol_day_stats(db: Database, symbol: str, start: datetime, end: datetime) -> dict[str, Any] | None:
    """Figures of one symbol's quotes in [start, end), or None when it has none."""
    # No hint: equality on symbol plus a timestamp range makes uq_symbol_timestamp the
    # planner's choice on MongoDB, and a hint would only pin a plan needlessly.
    result = list(db[REALTIME_PRICES].aggregate(_pipeline(symbol, start, end)))
    if not result:
        return None
    stats = result[0]
    stats["symbol"] = stats.pop("_id")
    return stats


def day_stats(db: Database, symbols: Iterable[str], start: datetime, end: datetime) -> dict[str, dict[str, Any] | None]:
    """symbol -> figures (None for a symbol without quotes in [start, end))."""
    return {symbol: symbol_day_stats(db, symbol, start, end) for symbol in symbols}


def delete_older_than(db: Database, cutoff: datetime) -> int:
    """Retention: delete quotes with timestamp < cutoff (ix_timestamp); returns how many."""
    return db[REALTIME_PRICES].delete_many({"timestamp": {"$lt": cutoff}}).deleted_count


def first_quote_at(db: Database, symbol: str) -> datetime | None:
    """Timestamp of a symbol's oldest stored quote (one index step), or None."""
    doc = db[REALTIME_PRICES].find_one({"symbol": symbol}, {"_id": 0, "timestamp": 1}, sort=[("timestamp", 1)])
    return None if doc is None else doc["timestamp"]
