"""MongoDB reads of the Flask pages that are not about quotes: news and alert history.

Quotes are read through database.mongo.prices.
"""

from __future__ import annotations

from typing import Any

from pymongo import DESCENDING
from pymongo.database import Database

from database.mongo import ALERT_HISTORY, NEWS_ARTICLES

NEWS_PROJECTION = {"_id": 0, "url": 1, "title": 1, "summary": 1, "source": 1, "published_at": 1,
                   "symbols": 1, "sentiment": 1}
ALERT_PROJECTION = {"_id": 0}


def latest_news(db: Database, symbol: str, limit: int = 10) -> list[dict[str, Any]]:
    """Newest articles mentioning `symbol` (index ix_symbols_published)."""
    cursor = (
        db[NEWS_ARTICLES]
        .find({"symbols": symbol}, NEWS_PROJECTION)
        .sort("published_at", DESCENDING)
        .limit(limit)
    )
    return list(cursor)


def latest_alert_history(db: Database, limit: int = 10, symbol: str | None = None) -> list[dict[str, Any]]:
    """Newest alerts of every symbol (index ix_created), or of one symbol when given (the dashboard)."""
    query: dict[str, Any] = {} if symbol is None else {"symbol": symbol}
    return list(db[ALERT_HISTORY].find(query, ALERT_PROJECTION).sort("created_at", DESCENDING).limit(limit))
