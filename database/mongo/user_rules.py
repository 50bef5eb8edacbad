"""Users' own alert rules: price_level_rules, user_alert_state and user_alerts.

- price_level_rules: _id, user_id (str), symbol, direction ("above" | "below"), level,
  mode ("once" | "rearm"), created_at, and the rule's state: armed, as_of, fired_at,
  fired_price. A state is stored with a conditional update on the as_of it was read
  with, so a rule deleted or changed meanwhile is never brought back.
- user_alert_state: _id "user_band|USER|SYMBOL", user_id, symbol, and the band state
  of the user's own price threshold (as alert_state is for the system's).
- user_alerts: alert_key (unique: user|rule|symbol|quote time), user_id, rule_id,
  symbol, rule, value, threshold, price, quote_timestamp, source, message, band,
  created_at. Storing the alert of a redelivered quote returns the stored twin.
- users_rules_version (in user_alert_state, _id "version"): bumped on every change
  of a rule or of a user's thresholds; the alerts service re-reads the rules when it moves.
"""

from __future__ import annotations

from datetime import datetime
from enum import Enum
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import DESCENDING, ReplaceOne, UpdateOne
from pymongo.database import Database

from database.mongo import PRICE_LEVEL_RULES, USER_ALERT_STATE, USER_ALERTS, USERS
from database.mongo.users import CONFIRMED

VERSION_ID = "version"


class Added(Enum):
    ADDED = "added"
    USER_FULL = "user_full"  # the user has the most rules one account may have


def _oid(rule_id: str) -> ObjectId | None:
    try:
        return ObjectId(rule_id)
    except (InvalidId, TypeError):
        return None


def bump_version(db: Database) -> None:
    db[USER_ALERT_STATE].update_one({"_id": VERSION_ID}, {"$inc": {"n": 1}}, upsert=True)


def rules_version(db: Database) -> int:
    doc = db[USER_ALERT_STATE].find_one({"_id": VERSION_ID})
    return int(doc["n"]) if doc else 0


# --- price levels ----------------------------------------------------------------

def add_level_rule(db: Database, user_id: str, *, symbol: str, direction: str, level: float, mode: str,
                   now: datetime, max_per_user: int) -> tuple[Added, str | None]:
    """Store a rule unless the user has max_per_user already; (outcome, the new rule's id).
    Inserted, then counted: a rule that finds itself over the limit deletes itself, so
    simultaneous posts of one user never pass it (at worst both of the last two are refused)."""
    if db[PRICE_LEVEL_RULES].count_documents({"user_id": user_id}, limit=max_per_user) >= max_per_user:
        return Added.USER_FULL, None
    result = db[PRICE_LEVEL_RULES].insert_one({
        "user_id": user_id, "symbol": symbol, "direction": direction, "level": float(level), "mode": mode,
        "created_at": now, "armed": True, "as_of": None, "fired_at": None, "fired_price": None})
    if db[PRICE_LEVEL_RULES].count_documents({"user_id": user_id}, limit=max_per_user + 1) > max_per_user:
        db[PRICE_LEVEL_RULES].delete_one({"_id": result.inserted_id})
        return Added.USER_FULL, None
    bump_version(db)
    return Added.ADDED, str(result.inserted_id)


def delete_level_rule(db: Database, user_id: str, rule_id: str) -> bool:
    """Delete one of the user's rules; False when there is no such rule of theirs."""
    oid = _oid(rule_id)
    if oid is None:
        return False
    deleted = db[PRICE_LEVEL_RULES].delete_one({"_id": oid, "user_id": user_id}).deleted_count == 1
    if deleted:
        bump_version(db)
    return deleted


def level_rules_of(db: Database, user_id: str, symbol: str | None = None) -> list[dict[str, Any]]:
    query: dict[str, Any] = {"user_id": user_id}
    if symbol is not None:
        query["symbol"] = symbol
    return list(db[PRICE_LEVEL_RULES].find(query).sort([("symbol", 1), ("level", 1)]))


def all_level_rules(db: Database) -> list[dict[str, Any]]:
    return list(db[PRICE_LEVEL_RULES].find({}))


def save_level_states(db: Database, states: list[tuple[str, datetime | None, dict[str, Any]]]) -> int:
    """Store rules' new states, each (rule id, the as_of it was read with, new state), in one
    round trip; a rule is changed only if it still has the state it was read with. Returns how
    many were stored: fewer when a rule is gone (deleted by its owner) or moved on by another reader."""
    ops = [UpdateOne({"_id": oid, "as_of": read_as_of}, {"$set": state})
           for rule_id, read_as_of, state in states if (oid := _oid(rule_id)) is not None]
    if not ops:
        return 0
    return db[PRICE_LEVEL_RULES].bulk_write(ops, ordered=False).matched_count


# --- users' own thresholds ----------------------------------------------------------

def threshold_users(db: Database) -> list[dict[str, Any]]:
    """Users whose own price threshold or volume multiplier is set, alerts on and address confirmed."""
    return list(db[USERS].find(
        {"alert_opt_in": True, **CONFIRMED, "$or": [{"alert_price_threshold": {"$type": "number"}},
                                                     {"alert_volume_multiplier": {"$type": "number"}}]},
        {"watchlist": 1, "alert_price_threshold": 1, "alert_volume_multiplier": 1}))


def load_band_states(db: Database, symbol: str) -> dict[str, dict[str, Any]]:
    """Every user's band state of a symbol, by user id (one query the first time a symbol is quoted)."""
    return {d["user_id"]: d for d in db[USER_ALERT_STATE].find({"symbol": symbol}, {"_id": 0})}


def save_band_states(db: Database, symbol: str, states: list[tuple[str, dict[str, Any]]]) -> None:
    """Users' new band states of one symbol, each (user id, state), in one round trip."""
    if states:
        db[USER_ALERT_STATE].bulk_write([
            ReplaceOne({"_id": f"user_band|{user_id}|{symbol}"}, {"user_id": user_id, "symbol": symbol, **state},
                       upsert=True) for user_id, state in states], ordered=False)


# --- the alerts -------------------------------------------------------------------

def store_user_alerts(db: Database, records: list[dict[str, Any]], created_at: datetime) -> tuple[set[str], set[str]]:
    """Insert the alerts whose alert_key is not stored yet, in one round trip; returns (keys newly
    stored, keys whose deliveries are not planned yet: the new ones and any a crash left unplanned)."""
    if not records:
        return set(), set()
    result = db[USER_ALERTS].bulk_write([
        UpdateOne({"alert_key": r["alert_key"]},
                  {"$setOnInsert": {**r, "created_at": created_at, "delivered": False}}, upsert=True)
        for r in records], ordered=False)
    new = {records[i]["alert_key"] for i in result.upserted_ids}
    keys = [r["alert_key"] for r in records]
    waiting = {d["alert_key"] for d in db[USER_ALERTS].find({"alert_key": {"$in": keys}, "delivered": False},
                                                           {"alert_key": 1})}
    return new, waiting


def mark_user_alerts_delivered(db: Database, alert_keys: list[str]) -> None:
    """Their deliveries are planned (a redelivered quote then plans nothing again)."""
    if alert_keys:
        db[USER_ALERTS].update_many({"alert_key": {"$in": alert_keys}}, {"$set": {"delivered": True}})


def last_user_alert_time(db: Database, user_id: str, symbol: str, rule: str) -> datetime | None:
    doc = db[USER_ALERTS].find_one({"user_id": user_id, "symbol": symbol, "rule": rule}, {"quote_timestamp": 1},
                                   sort=[("quote_timestamp", DESCENDING)])
    return doc["quote_timestamp"] if doc else None


def user_alerts_of(db: Database, user_id: str, limit: int = 20, symbol: str | None = None) -> list[dict[str, Any]]:
    """A user's newest own alerts (of one symbol when given: the dashboard)."""
    query: dict[str, Any] = {"user_id": user_id}
    if symbol is not None:
        query["symbol"] = symbol
    return list(db[USER_ALERTS].find(query, {"_id": 0}).sort("quote_timestamp", DESCENDING).limit(limit))


def recipient(db: Database, user_id: str) -> dict[str, Any] | None:
    """Where a user's own alert goes: their address (only when confirmed), webhook and cap."""
    oid = _oid(user_id)
    if oid is None:
        return None
    return db[USERS].find_one({"_id": oid, **CONFIRMED},
                              {"email": 1, "alert_daily_cap": 1, "alert_webhook_url": 1, "alert_opt_in": 1})
