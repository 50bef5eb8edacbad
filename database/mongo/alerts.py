"""alert_history, alert_state and alert_deliveries: every alert raised by
streaming/alerts.py, the state behind the price-band rule, and who got each alert.

alert_key (symbol|rule|quote timestamp) is unique, so storing the alert of a
redelivered quote returns the stored twin instead of adding a second one. A
delivery's _id is alert_key|channel|recipient, so it is planned (and counted
against a user's daily cap) once, however often the quote is redelivered.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pymongo import DESCENDING, ReturnDocument
from pymongo.database import Database

from database.mongo import ALERT_DELIVERIES, ALERT_HISTORY, ALERT_STATE, USERS
from database.mongo.users import CONFIRMED


def store_alert(db: Database, record: dict[str, Any], email_status: str,
                created_at: datetime) -> tuple[dict[str, Any], bool]:
    """Insert the alert unless its alert_key exists; returns (stored document, newly inserted)."""
    doc = {**record, "email_status": email_status, "email_error": None, "created_at": created_at}
    before = db[ALERT_HISTORY].find_one_and_update(
        {"alert_key": record["alert_key"]}, {"$setOnInsert": doc}, upsert=True,
        projection={"_id": 0}, return_document=ReturnDocument.BEFORE,
    )
    return (before, False) if before is not None else (doc, True)


def set_email_status(db: Database, alert_key: str, status: str, error: str | None) -> None:
    """alert_history is public (/api/alert-history): callers pass an error without addresses."""
    db[ALERT_HISTORY].update_one({"alert_key": alert_key}, {"$set": {"email_status": status, "email_error": error}})


def last_alert_time(db: Database, symbol: str, rule: str) -> datetime | None:
    """Quote timestamp of the newest alert of this symbol and rule (the cooldown's memory)."""
    doc = db[ALERT_HISTORY].find_one({"symbol": symbol, "rule": rule}, {"quote_timestamp": 1, "_id": 0},
                                     sort=[("quote_timestamp", DESCENDING)])
    return doc["quote_timestamp"] if doc else None


# --- price-band state ------------------------------------------------------------

def _state_id(symbol: str) -> str:
    return f"price_band|{symbol}"


def load_band_state(db: Database, symbol: str) -> dict[str, Any] | None:
    return db[ALERT_STATE].find_one({"_id": _state_id(symbol)}, {"_id": 0})


def save_band_state(db: Database, symbol: str, state: dict[str, Any]) -> None:
    db[ALERT_STATE].replace_one({"_id": _state_id(symbol)}, {"symbol": symbol, **state}, upsert=True)


# --- recipients and deliveries -------------------------------------------------------

def alert_subscribers(db: Database, symbol: str) -> list[dict[str, Any]]:
    """Users who turned alerts on, confirmed their address and watch this symbol (an
    empty watchlist means all), with their own rules (missing fields: the system's)."""
    cursor = db[USERS].find(
        {"alert_opt_in": True, **CONFIRMED, "$or": [{"watchlist": symbol}, {"watchlist": {"$size": 0}}]},
        {"email": 1, "watchlist": 1, "alert_opt_in": 1, "alert_price_threshold": 1, "alert_volume_multiplier": 1,
         "alert_daily_cap": 1, "alert_webhook_url": 1},
    )
    return list(cursor)


def plan_delivery(db: Database, doc: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """Record a delivery (doc has _id) unless it exists; returns (stored, newly planned)."""
    before = db[ALERT_DELIVERIES].find_one_and_update(
        {"_id": doc["_id"]}, {"$setOnInsert": doc}, upsert=True, return_document=ReturnDocument.BEFORE)
    return (before, False) if before is not None else (doc, True)


def set_delivery_status(db: Database, delivery_id: str, status: str, error: str | None, attempts: int,
                        at: datetime) -> None:
    db[ALERT_DELIVERIES].update_one({"_id": delivery_id}, {"$set": {
        "status": status, "error": error[:512] if error else None, "attempts": attempts, "updated_at": at}})


def counted_alerts(db: Database, user_id: str, day: str) -> int:
    """How many alerts count against a user's cap on a market day (planned ones, not the capped)."""
    return len(db[ALERT_DELIVERIES].distinct("alert_key", {"user_id": user_id, "day": day,
                                                           "status": {"$ne": "capped"}}))


def unfinished_deliveries(db: Database, channel: str, days: list[str]) -> list[dict[str, Any]]:
    """Deliveries of a channel still pending (a restart picks them up again)."""
    return list(db[ALERT_DELIVERIES].find({"channel": channel, "status": "pending", "day": {"$in": days}}))


def deliveries_for(db: Database, user_id: str | None = None, *, alert_key: str | None = None,
                   limit: int = 0) -> list[dict[str, Any]]:
    """Deliveries of one user or one alert, newest first (without the webhook URL)."""
    query: dict[str, Any] = {}
    if alert_key is not None:
        query["alert_key"] = alert_key
    if user_id is not None:
        query["user_id"] = user_id
    return list(db[ALERT_DELIVERIES].find(query, {"url": 0}).sort("created_at", DESCENDING).limit(limit))
