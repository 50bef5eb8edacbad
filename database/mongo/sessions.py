"""web_sessions: the Flask app's server-side sessions.

The browser's cookie holds only a random token; the record is stored under the
token's SHA-256, so a copy of this collection cannot be replayed as cookies.
A record carries the user id (None before login), so logout and a password
change can end every session of a user.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from pymongo.database import Database

from database.mongo import WEB_SESSIONS


def session_key(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def load(db: Database, token: str, now: datetime) -> dict[str, Any] | None:
    """The session's data, or None when unknown or expired."""
    doc = db[WEB_SESSIONS].find_one({"_id": session_key(token)})
    if doc is None or doc["expires_at"] <= now:
        return None
    return dict(doc.get("data") or {})


def signed_in_user(db: Database, token: str, now: datetime) -> str | None:
    """The user a live session is signed in as (None: signed out, ended or expired): one read by
    _id, without the session's data."""
    doc = db[WEB_SESSIONS].find_one({"_id": session_key(token)}, {"user_id": 1, "expires_at": 1})
    if doc is None or doc["expires_at"] <= now:
        return None
    user_id = doc.get("user_id")
    return user_id if isinstance(user_id, str) else None


def save(db: Database, token: str, data: dict[str, Any], user_id: str | None, expires_at: datetime) -> None:
    db[WEB_SESSIONS].replace_one({"_id": session_key(token)},
                                 {"data": data, "user_id": user_id, "expires_at": expires_at}, upsert=True)


def delete(db: Database, token: str) -> None:
    db[WEB_SESSIONS].delete_one({"_id": session_key(token)})


def delete_user_sessions(db: Database, user_id: str, *, keep_token: str | None = None) -> int:
    """End every session of a user (but `keep_token`'s); returns how many."""
    query: dict[str, Any] = {"user_id": user_id}
    if keep_token is not None:
        query["_id"] = {"$ne": session_key(keep_token)}
    return db[WEB_SESSIONS].delete_many(query).deleted_count
