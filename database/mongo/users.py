"""users and login_attempts: accounts of the Flask app and the login throttle.

Users: email (unique, lower-case), name, password_hash, watchlist (symbols;
empty = all), digest_opt_in, alert_opt_in, created_at, and their own alert rules
(absent or None = the system's): alert_price_threshold, alert_volume_multiplier,
alert_daily_cap, alert_webhook_url; email_confirmed (True once the owner followed
the confirmation link: only then do alerts and digests go to the address).

login_attempts holds one counter per throttle key (an (email, client address)
pair or a client address) so that every gunicorn worker sees the same attempts.
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

# Mail (alerts, digests) goes only to users matching this: nobody gets mail for an address they do not own.
CONFIRMED: dict[str, Any] = {"email_confirmed": True}
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
        "email_confirmed": False,
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


def confirm_email(db: Database, user_id: str, email: str, now: datetime) -> bool:
    """Mark the address confirmed (what the confirmation link does); False when the
    user is gone or has another address now."""
    try:
        oid = ObjectId(user_id)
    except (InvalidId, TypeError):
        return False
    result = db[USERS].update_one({"_id": oid, "email": email},
                                  {"$set": {"email_confirmed": True, "email_confirmed_at": now}})
    return result.matched_count == 1


# --- login throttle -------------------------------------------------------------

def count_attempt(db: Database, key: str, now: datetime, window: timedelta) -> tuple[int, datetime]:
    """Count one login attempt for `key` before the password is checked; returns
    (attempts in the current window including this one, when the window ends).

    Counting first, atomically ($inc on the server), is what makes the limit hold
    for parallel attempts: each gets its own number, and only those within the
    limit are checked. A window starts at the first attempt and lasts `window`.
    Two steps, each atomic: reset an expired counter, then $inc (upsert).
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
    if doc is None:  # deleted in between by a successful login: count afresh
        return count_attempt(db, key, now, window)
    return int(doc["count"]), doc["expires_at"]


def forgive_attempt(db: Database, key: str) -> None:
    """Take back one counted attempt (it was a successful login, not a failure)."""
    db[LOGIN_ATTEMPTS].update_one({"key": key, "count": {"$gt": 0}}, {"$inc": {"count": -1}})


def clear_attempts(db: Database, key: str) -> None:
    db[LOGIN_ATTEMPTS].delete_one({"key": key})
