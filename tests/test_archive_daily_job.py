"""The archive inside the daily job: `python batch/daily_aggregation.py` with ARCHIVE_ENABLED,
run from the repository root exactly as the batch container runs it, against
SecantusDB, the local MariaDB and a local S3 server (moto_server)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from batch.archive import S3ObjectStore, parse_partition_key, read_partition
from common.clock import utc_now
from database.mongo import REALTIME_PRICES
from scripts.processes import run_script
from scripts.servers import SecantusMongo
from tests.conftest import MYSQL
from tests.support.servers import MotoS3
from tests.test_archive import NY, day_quotes, strip


@pytest.fixture(scope="module")
def s3_server() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


@pytest.fixture
def job_env(mongo: SecantusMongo, mysql_db: str, s3_server: MotoS3) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    s3_server.client().create_bucket(Bucket=f"archive-{tag}")
    return {
        "MONGO_URI": mongo.uri, "MONGO_DB": f"stock_market_{tag}",
        "MYSQL_HOST": MYSQL["host"], "MYSQL_PORT": str(MYSQL["port"]), "MYSQL_USER": MYSQL["user"],
        "MYSQL_PASSWORD": MYSQL["password"], "MYSQL_DATABASE": mysql_db,
        "LOG_TO_ELASTICSEARCH": "false", "STOCK_SYMBOLS": "AAPL,MSFT", "RETENTION_DAYS": "90",
        "MARKET_TIMEZONE": "America/New_York", "ARCHIVE_ENABLED": "true",
        "ARCHIVE_S3_ENDPOINT_URL": s3_server.url, "ARCHIVE_S3_BUCKET": f"archive-{tag}",
        "ARCHIVE_S3_PREFIX": "archive/realtime_prices", "ARCHIVE_S3_REGION": s3_server.region,
        "ARCHIVE_S3_ACCESS_KEY_ID": s3_server.access_key, "ARCHIVE_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
    }


@pytest.fixture
def db(job_env: dict[str, str]) -> Iterator[Database]:
    client: MongoClient = MongoClient(job_env["MONGO_URI"], tz_aware=True)
    yield client[job_env["MONGO_DB"]]
    client.drop_database(job_env["MONGO_DB"])
    client.close()


def seed(db: Database) -> tuple[list[Any], list[dict[str, Any]]]:
    """Two expired days and yesterday's quotes for AAPL and MSFT; returns (expired days, docs)."""
    today = utc_now().astimezone(NY).date()
    expired = [today - timedelta(days=100), today - timedelta(days=95)]
    days = [*expired, today - timedelta(days=1)]
    docs = [q for sym, base in (("AAPL", 100.0), ("MSFT", 300.0)) for d in days for q in day_quotes(sym, d, 3, base)]
    db[REALTIME_PRICES].insert_many([dict(d) for d in docs])
    return expired, docs


def mongo_docs(db: Database) -> list[dict[str, Any]]:
    return [strip(d) for d in db[REALTIME_PRICES].find().sort([("symbol", 1), ("timestamp", 1)])]


@pytest.mark.clock
def test_the_daily_job_archives_expired_days_then_deletes_them(db: Database, job_env: dict[str, str],
                                                               s3_server: MotoS3) -> None:
    expired, docs = seed(db)
    yesterday = (utc_now().astimezone(NY) - timedelta(days=1)).date()

    result = run_script("batch/daily_aggregation.py", job_env, ["--date", yesterday.isoformat()], timeout=300)

    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    store = S3ObjectStore(s3_server.client(), job_env["ARCHIVE_S3_BUCKET"])
    keys = store.keys("")
    assert all(k.startswith("archive/realtime_prices/symbol=") for k in keys)
    assert sorted(parse_partition_key(k) for k in keys) == sorted((s, d) for s in ("AAPL", "MSFT") for d in expired)
    for symbol in ("AAPL", "MSFT"):
        for day in expired:
            expected = [d for d in docs if d["symbol"] == symbol and d["timestamp"].astimezone(NY).date() == day]
            assert read_partition(store, "archive/realtime_prices", symbol, day) == expected
    remaining = mongo_docs(db)
    assert {d["timestamp"].astimezone(NY).date() for d in remaining} == {yesterday}
    assert len(remaining) == 2 * 3
    assert "4 symbol-day(s) archived, 12 quotes deleted from MongoDB" in result.stdout


def test_an_upload_failure_in_the_daily_job_deletes_nothing_and_fails_the_run(db: Database,
                                                                            job_env: dict[str, str]) -> None:
    _, docs = seed(db)
    before = mongo_docs(db)
    env = dict(job_env, ARCHIVE_S3_BUCKET="no-such-bucket-" + uuid.uuid4().hex[:8])

    result = run_script("batch/daily_aggregation.py", env, [], timeout=300)

    output = result.stdout + result.stderr
    assert "FAILED, retention stopped" in output
    assert "NoSuchBucket" in output
    assert result.returncode != 0
    assert mongo_docs(db) == before
