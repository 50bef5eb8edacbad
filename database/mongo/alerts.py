"""alert_history: every alert raised by streaming/alerts.py, and who receives them.

alert_key (symbol|rule|quote timestamp) is unique, so storing the alert of a
redelivered quote returns the stored twin instead of adding a second one.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database

from database.mongo import ALERT_HISTORY, USERS


def store_alert(db: Database, record: dict[str, Any], email_status: str, created_at: datetime) -> tuple[dict[str, Any], bool]:
    """Insert the alert unless its alert_key exists; returns (stored document, newly inserted)."""
    doc = {**record, "email_status": email_status, "email_error": None, "created_at": created_at}
    before = db[ALERT_HISTORY].find_one_and_update(
        {"alert_key": record["alert_key"]}, {"$setOnInsert": doc}, upsert=True,
        projection={"_id": 0}, return_document=ReturnDocument.BEFORE,
    )
    return (before, False) if before is not None else (doc, True)


def set_email_status(db: Database, alert_key: str, status: str, error: str | None) -> None:
    db[ALERT_HISTORY].update_one({"alert_key": alert_key}, {"$set": {"email_status": status, "email_error": error}})


def last_alert_time(db: Database, symbol: str, rule: str) -> datetime | None:
    """Quote timestamp of the newest alert of this symbol and rule (the cooldown's memory)."""
    doc = db[ALERT_HISTORY].find_one({"symbol": symbol, "rule": rule}, {"quote_timestamp": 1, "_id": 0},
                                     sort=[("quote_timestamp", DESCENDING)])
    return doc["quote_timestamp"] if doc else None


def alerts_for(db: Database, symbol: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
    """Newest alerts first, optionally of one symbol."""
    query: dict[str, Any] = {} if symbol is None else {"symbol": symbol}
    return list(db[ALERT_HISTORY].find(query, {"_id": 0}).sort("created_at", DESCENDING).limit(limit))


def opted_in_emails(db: Database, symbol: str) -> list[str]:
    """Users who opted in to alerts and watch this symbol (an empty watchlist means all)."""
    cursor = db[USERS].find(
        {"alert_opt_in": True, "$or": [{"watchlist": symbol}, {"watchlist": {"$size": 0}}]},
        {"email": 1, "_id": 0},
    )
    return [doc["email"] for doc in cursor if doc.get("email")]
