"""users and login_attempts: accounts of the Flask app and the login throttle.

Users: email (unique, lower-case), name, password_hash, watchlist (symbols;
empty = all), digest_opt_in, alert_opt_in, created_at, and their own alert rules
(absent or None = the system's): alert_price_threshold, alert_volume_multiplier,
alert_daily_cap, alert_webhook_url.

login_attempts holds one counter per throttle key (an email or a client
address) so that every gunicorn worker sees the same failures.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId
from pymongo import ReturnDocument
from pymongo.database import Database
from pymongo.errors import DuplicateKeyError

from database.mongo import LOGIN_ATTEMPTS, USERS

ALERT_RULE_FIELDS = ("alert_price_threshold", "alert_volume_multiplier", "alert_daily_cap", "alert_webhook_url")


class EmailTakenError(ValueError):
    """An account with this email already exists."""


def create_user(
    db: Database,
    *,
    email: str,
    name: str,
    password_hash: str,
    watchlist: list[str],
    digest_opt_in: bool,
    alert_opt_in: bool,
    created_at: datetime,
) -> str:
    """Insert a user; EmailTakenError when the (lower-cased) email exists. Returns the id."""
    doc = {
        "email": email.strip().lower(),
        "name": name,
        "password_hash": password_hash,
        "watchlist": list(watchlist),
        "digest_opt_in": bool(digest_opt_in),
        "alert_opt_in": bool(alert_opt_in),
        "created_at": created_at,
    }
    try:
        result = db[USERS].insert_one(doc)
    except DuplicateKeyError as exc:
        # The unique index decides, so two simultaneous sign-ups cannot both win.
        raise EmailTakenError(doc["email"]) from exc
    return str(result.inserted_id)


def find_by_email(db: Database, email: str) -> dict[str, Any] | None:
    if not isinstance(email, str):  # never let a dict ({"$ne": ...}) become a query operator
        return None
    return db[USERS].find_one({"email": email.strip().lower()})


def find_by_id(db: Database, user_id: str) -> dict[str, Any] | None:
    try:
        oid = ObjectId(user_id)
    except (InvalidId, TypeError):
        return None
    return db[USERS].find_one({"_id": oid})


def update_profile(
    db: Database, user_id: str, *, name: str, watchlist: list[str], digest_opt_in: bool, alert_opt_in: bool,
    alert_rules: dict[str, Any] | None = None,
) -> bool:
    rules = {k: v for k, v in (alert_rules or {}).items() if k in ALERT_RULE_FIELDS}
    result = db[USERS].update_one(
        {"_id": ObjectId(user_id)},
        {"$set": {"name": name, "watchlist": list(watchlist), "digest_opt_in": bool(digest_opt_in),
                  "alert_opt_in": bool(alert_opt_in), **rules}},
    )
    return result.matched_count == 1


def set_password_hash(db: Database, user_id: str, password_hash: str) -> bool:
    result = db[USERS].update_one({"_id": ObjectId(user_id)}, {"$set": {"password_hash": password_hash}})
    return result.matched_count == 1


# --- login throttle -------------------------------------------------------------

def failed_login_count(db: Database, key: str, now: datetime) -> tuple[int, datetime | None]:
    """(failures in the current window, when the window ends) for a throttle key."""
    doc = db[LOGIN_ATTEMPTS].find_one({"key": key})
    if doc is None or doc["expires_at"] <= now:
        return 0, None
    return int(doc["count"]), doc["expires_at"]


def record_failed_login(db: Database, key: str, now: datetime, window: timedelta) -> int:
    """Count one failure for `key`; returns the failures in the current window.

    A window starts at the first failure and lasts `window`; a failure after it
    ended starts a new one. Two steps, each atomic on the server: reset an
    expired counter, then $inc (upsert) — concurrent workers never lose a count.
    """
    coll = db[LOGIN_ATTEMPTS]
    coll.update_one({"key": key, "expires_at": {"$lte": now}}, {"$set": {"count": 0, "expires_at": now + window}})
    try:
        doc = coll.find_one_and_update(
            {"key": key},
            {"$inc": {"count": 1}, "$setOnInsert": {"expires_at": now + window}},
            upsert=True,
            return_document=ReturnDocument.AFTER,
        )
    except DuplicateKeyError:
        # Lost an upsert race with another worker: the document exists now.
        doc = coll.find_one_and_update({"key": key}, {"$inc": {"count": 1}}, return_document=ReturnDocument.AFTER)
    return int(doc["count"]) if doc else 1


def clear_failed_logins(db: Database, key: str) -> None:
    db[LOGIN_ATTEMPTS].delete_one({"key": key})
