"""The producer's source status (common/source_status.py): one document, replaced each tick."""

from __future__ import annotations

from typing import Any

from pymongo.database import Database

from common.source_status import STATUS_ID
from database.mongo import SOURCE_STATUS


def save(db: Database, doc: dict[str, Any]) -> None:
    db[SOURCE_STATUS].replace_one({"_id": doc["_id"]}, doc, upsert=True)


def load(db: Database) -> dict[str, Any] | None:
    return db[SOURCE_STATUS].find_one({"_id": STATUS_ID})
