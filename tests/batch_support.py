"""Shared fixtures of the batch tests: MongoDB (SecantusDB) and a fresh MariaDB
database only; the batch needs no Kafka, SMTP or Elasticsearch, so these tests
do not start them (LOG_TO_ELASTICSEARCH=false)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pymysql
import pytest
from pymongo import MongoClient
from pymongo.database import Database

from config.settings import Settings
from database.mysql import connect
from database.setup_mongodb import ensure_indexes
from scripts.servers import SecantusMongo
from tests.conftest import MYSQL, Stack, _base_env


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
