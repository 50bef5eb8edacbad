"""The producer's source status (common/source_status.py): one document, replaced each tick."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from database.mongo import SOURCE_STATUS

STATUS_ID = "producer"  # the one document's _id


def save(db: Database, doc: dict[str, Any]) -> None:
    db[SOURCE_STATUS].replace_one({"_id": STATUS_ID}, {**doc, "_id": STATUS_ID}, upsert=True)


def load(db: Database) -> dict[str, Any] | None:
    return db[SOURCE_STATUS].find_one({"_id": STATUS_ID})
