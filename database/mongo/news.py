"""news_articles, the digest's readers (users) and digest_log (one digest per user per day)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from pymongo import DESCENDING, UpdateOne
from pymongo.database import Database
from pymongo.errors import BulkWriteError, DuplicateKeyError

from database.mongo import DIGEST_LOG, NEWS_ARTICLES, USERS
from database.mongo.users import CONFIRMED

ARTICLE_PROJECTION = {"_id": 0}
# Fixed at first sight; later sightings only add symbols, feeds and per-ticker sentiment.
_FIRST_SEEN = ("title", "summary", "source", "published_at", "published_date", "sentiment", "fetched_at")


def upsert_articles(db: Database, docs: Sequence[dict[str, Any]]) -> tuple[int, int]:
    """Store articles idempotently by canonical url; returns (new, already_stored).

    A second sighting (another run, another source, another symbol) changes no
    text, and merges its symbols into the stored list.
    """
    if not docs:
        return 0, 0
    ops = []
    for d in docs:
        update: dict[str, Any] = {
            "$setOnInsert": {k: d.get(k) for k in _FIRST_SEEN},
            "$addToSet": {"symbols": {"$each": list(d.get("symbols", []))},
                          "feeds": {"$each": list(d.get("feeds", []))}},
        }
        per_ticker = {f"ticker_sentiment.{sym}": s for sym, s in (d.get("ticker_sentiment") or {}).items()}
        if per_ticker:
            update["$set"] = per_ticker
        ops.append(UpdateOne({"url": d["url"]}, update, upsert=True))
    try:
        inserted = db[NEWS_ARTICLES].bulk_write(ops, ordered=False).upserted_count
    except BulkWriteError as exc:
        # Two runs racing on a new url: the loser's E11000 means the article is stored.
        if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
            raise
        inserted = exc.details.get("nUpserted", 0)
    return inserted, len(docs) - inserted


def news_for_symbols(db: Database, symbols: Iterable[str], since: datetime,
                     limit_per_symbol: int = 10) -> dict[str, list[dict[str, Any]]]:
    """Newest articles about each symbol published since `since` (index ix_symbols_published)."""
    coll = db[NEWS_ARTICLES]
    return {
        symbol: list(
            coll.find({"symbols": symbol, "published_at": {"$gte": since}}, ARTICLE_PROJECTION)
            .sort("published_at", DESCENDING)
            .limit(limit_per_symbol)
        )
        for symbol in symbols
    }


def latest_fetch(db: Database) -> datetime | None:
    """When the newest stored article was first read (None on an empty collection)."""
    doc = db[NEWS_ARTICLES].find_one({}, {"_id": 0, "fetched_at": 1}, sort=[("fetched_at", DESCENDING)])
    return doc.get("fetched_at") if doc else None


def digest_recipients(db: Database) -> list[dict[str, Any]]:
    """Users who opted in to the daily digest and confirmed their address: _id, email, name,
    watchlist (empty = every default symbol)."""
    cursor = db[USERS].find({"digest_opt_in": True, **CONFIRMED},
                            {"_id": 1, "email": 1, "name": 1, "watchlist": 1}).sort("email")
    return list(cursor)


def claim_digest(db: Database, email: str, date: str, now: datetime) -> bool:
    """Take the right to send `email` its digest for `date`; False if it was sent (or is
    being sent) already. The unique (email, date) index makes two runs agree on one winner.
    A digest that failed earlier can be claimed again."""
    key = {"email": email.lower(), "date": date}
    try:
        db[DIGEST_LOG].insert_one({**key, "status": "sending", "claimed_at": now})
        return True
    except DuplicateKeyError:
        retry = db[DIGEST_LOG].update_one({**key, "status": "failed"},
                                          {"$set": {"status": "sending", "claimed_at": now}})
        return retry.modified_count == 1


def finish_digest(db: Database, email: str, date: str, status: str, now: datetime, **info: Any) -> None:
    """Record how the claimed digest went: status "sent", "written" (to the outbox) or "failed"."""
    db[DIGEST_LOG].update_one({"email": email.lower(), "date": date},
                              {"$set": {"status": status, "finished_at": now, **info}})


def digest_log(db: Database, date: str) -> list[dict[str, Any]]:
    return list(db[DIGEST_LOG].find({"date": date}, {"_id": 0}).sort("email"))
