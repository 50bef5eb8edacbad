"""Shared fixtures of the batch tests: MongoDB (SecantusDB) and a fresh MariaDB
database only; the batch needs no Kafka, SMTP or Elasticsearch, so these tests
do not start them (LOG_TO_ELASTICSEARCH=false)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from config.settings import Settings
from database.mongo.prices import insert_quotes
from database.mysql import connect
from database.setup_mongodb import ensure_indexes
from tests.conftest import MYSQL, Stack, _base_env
from tests.support.servers import SecantusMongo


@pytest.fixture
def batch_stack(mongo: SecantusMongo, mysql_db: str) -> Stack:
    tag = uuid.uuid4().hex[:10]
    env = _base_env(tag)
    env.update({
        "MONGO_URI": mongo.uri, "LOG_TO_ELASTICSEARCH": "false",
        "MYSQL_HOST": MYSQL["host"], "MYSQL_PORT": str(MYSQL["port"]),
        "MYSQL_USER": MYSQL["user"], "MYSQL_PASSWORD": MYSQL["password"], "MYSQL_DATABASE": mysql_db,
        "STOCK_SYMBOLS": "AAPL,MSFT", "MARKET_TIMEZONE": "America/New_York",
    })
    return Stack(env, {"mongo": mongo})


@pytest.fixture
def settings(batch_stack: Stack) -> Settings:
    return batch_stack.settings()


@pytest.fixture
def mdb(settings: Settings) -> Iterator[Database]:
    client: MongoClient = MongoClient(settings.mongo_uri, tz_aware=True)
    db = client[settings.mongo_db]
    ensure_indexes(db)
    yield db
    client.drop_database(settings.mongo_db)
    client.close()


@pytest.fixture
def conn(settings: Settings) -> Iterator[pymysql.Connection]:
    connection = connect(settings)
    yield connection
    connection.close()


def quote(symbol: str, ts: datetime, price: float, volume: int = 100, source: str = "simulated") -> dict[str, Any]:
    return {"symbol": symbol, "timestamp": ts.astimezone(UTC), "price": price, "volume": volume,
            "source": source, "processed_at": ts.astimezone(UTC)}


def day_quotes(symbol: str, day: date, prices: list[float], tz: Any, *, start_hour: int = 10,
               step_seconds: int = 900, volume: int = 100, source: str = "simulated") -> list[dict[str, Any]]:
    """Quotes of one market day at `start_hour` local time, `step_seconds` apart."""
    start = datetime(day.year, day.month, day.day, start_hour, tzinfo=tz)
    return [quote(symbol, start + timedelta(seconds=i * step_seconds), p, volume + i, source)
            for i, p in enumerate(prices)]


def load(db: Database, docs: list[dict[str, Any]]) -> None:
    inserted, _ = insert_quotes(db, docs)
    assert inserted == len(docs)


def rows(conn: pymysql.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())
