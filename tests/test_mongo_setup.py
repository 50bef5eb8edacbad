"""database/setup_mongodb.py on SecantusDB."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest
from pymongo import MongoClient
from pymongo.errors import DuplicateKeyError

from database.setup_mongodb import ensure_indexes
from scripts.servers import SecantusMongo


def test_indexes_created_idempotently_and_duplicates_rejected(mongo: SecantusMongo) -> None:
    client = MongoClient(mongo.uri, tz_aware=True)
    db = client[f"setup_{uuid.uuid4().hex[:8]}"]
    ensure_indexes(db)
    ensure_indexes(db)  # every writing service calls it at start

    prices = db.realtime_prices.index_information()
    assert prices["uq_symbol_timestamp"]["unique"] is True
    assert prices["uq_symbol_timestamp"]["key"] == [("symbol", 1), ("timestamp", 1)]
    assert "ix_timestamp" in prices
    assert db.news_articles.index_information()["uq_url"]["unique"] is True
    assert db.users.index_information()["uq_email"]["unique"] is True
    assert db.alert_history.index_information()["uq_alert_key"]["unique"] is True

    ts = dt.datetime(2026, 1, 13, 15, 30, tzinfo=dt.UTC)
    db.realtime_prices.insert_one({"symbol": "AAPL", "timestamp": ts, "price": 261.05})
    with pytest.raises(DuplicateKeyError):
        db.realtime_prices.insert_one({"symbol": "AAPL", "timestamp": ts, "price": 999.0})
    db.realtime_prices.insert_one({"symbol": "MSFT", "timestamp": ts, "price": 430.0})
    assert db.realtime_prices.count_documents({}) == 2
    assert db.realtime_prices.find_one({"symbol": "AAPL"})["price"] == 261.05

    db.users.insert_one({"email": "a@example.com"})
    with pytest.raises(DuplicateKeyError):
        db.users.insert_one({"email": "a@example.com"})
    client.close()
