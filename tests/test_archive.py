"""Archive of expiring quotes to S3 as Parquet (batch/archive.py, batch/read_archive.py).

Pure parts without servers; the archive step against SecantusDB (MongoDB) and a
real local S3 server (moto_server), each test in its own database and bucket.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from batch import archive
from batch.archive import (
    S3ObjectStore,
    archive_before_retention,
    archive_limit,
    list_partitions,
    merge_tables,
    parquet_to_rows,
    parse_partition_key,
    partition_key,
    rows_to_table,
    table_to_parquet,
)
from config.settings import Settings
from database.mongo import REALTIME_PRICES
from database.setup_mongodb import ensure_indexes
from scripts.processes import run_script
from scripts.servers import SecantusMongo
from tests.support.servers import MotoS3

NY = ZoneInfo("America/New_York")


def quote(symbol: str, ts: datetime, price: float, **extra: Any) -> dict[str, Any]:
    return {
        "symbol": symbol, "timestamp": ts, "price": price, "volume": 1000 + int(price),
        "open": price - 1, "high": price + 1, "low": price - 2, "previous_close": price - 0.5,
        "change_percent": 0.25, "price_change_pct": 0.5, "source": "simulated",
        "processed_at": ts + timedelta(seconds=1), **extra,
    }


def day_quotes(symbol: str, day: date, n: int, base: float) -> list[dict[str, Any]]:
    """n quotes spread over market hours of `day` (New York time)."""
    start = datetime(day.year, day.month, day.day, 9, 30, tzinfo=NY).astimezone(UTC)
    return [quote(symbol, start + timedelta(minutes=15 * i), base + i) for i in range(n)]


def strip(doc: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k != "_id"}


# --- pure ------------------------------------------------------------------------------
def test_partition_key_layout_and_parse() -> None:
    key = partition_key("/realtime_prices/", "BRK.B", date(2026, 1, 13))
    assert key == "realtime_prices/symbol=BRK.B/date=2026-01-13/quotes.parquet"
    assert parse_partition_key(key) == ("BRK.B", date(2026, 1, 13))
    assert partition_key("", "AAPL", date(2026, 1, 2)) == "symbol=AAPL/date=2026-01-02/quotes.parquet"
    assert parse_partition_key("realtime_prices/symbol=AAPL/other.txt") is None


def test_parquet_round_trip_keeps_every_field() -> None:
    docs = day_quotes("AAPL", date(2026, 1, 13), 3, 100.0)
    docs[1]["note"] = "an unexpected field"  # outside the documented shape: kept in `extra`
    docs[2]["previous_close"] = None
    rows = parquet_to_rows(table_to_parquet(rows_to_table(docs)), "AAPL")
    assert rows == docs


def test_merge_keeps_old_rows_and_replaces_same_timestamps() -> None:
    old = day_quotes("AAPL", date(2026, 1, 13), 3, 100.0)
    new = [dict(old[1], price=555.0), quote("AAPL", old[2]["timestamp"] + timedelta(minutes=1), 7.0)]
    merged = parquet_to_rows(table_to_parquet(merge_tables(rows_to_table(old), rows_to_table(new))), "AAPL")
    assert [r["price"] for r in merged] == [100.0, 555.0, 102.0, 7.0]


def test_archive_limit_is_the_local_midnight_of_the_cutoff_day() -> None:
    cutoff = datetime(2026, 3, 8, 15, 0, tzinfo=UTC)  # DST starts in New York that day
    assert archive_limit(cutoff, NY) == datetime(2026, 3, 8, 0, 0, tzinfo=NY)
    assert archive_limit(datetime(2026, 1, 13, 3, 0, tzinfo=UTC), NY) == datetime(2026, 1, 12, tzinfo=NY)


# --- against servers -----------------------------------------------------------------------
@pytest.fixture(scope="session")
def s3_server() -> Iterator[MotoS3]:
    server = MotoS3().start()
    yield server
    server.stop()


@pytest.fixture
def env(mongo: SecantusMongo, s3_server: MotoS3) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    s3_server.client().create_bucket(Bucket=f"archive-{tag}")
    return {
        "MONGO_URI": mongo.uri, "MONGO_DB": f"stock_market_{tag}", "LOG_TO_ELASTICSEARCH": "false",
        "MARKET_TIMEZONE": "America/New_York", "ARCHIVE_ENABLED": "true",
        "ARCHIVE_S3_ENDPOINT_URL": s3_server.url, "ARCHIVE_S3_BUCKET": f"archive-{tag}",
        "ARCHIVE_S3_PREFIX": "realtime_prices", "ARCHIVE_S3_REGION": s3_server.region,
        "ARCHIVE_S3_ACCESS_KEY_ID": s3_server.access_key, "ARCHIVE_S3_SECRET_ACCESS_KEY": s3_server.secret_key,
    }


@pytest.fixture
def settings(env: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})  # type: ignore[call-arg]


@pytest.fixture
def db(settings: Settings) -> Iterator[Database]:
    client: MongoClient = MongoClient(settings.mongo_uri, tz_aware=True)
    database = client[settings.mongo_db]
    ensure_indexes(database)
    yield database
    client.drop_database(settings.mongo_db)
    client.close()


def stored(db: Database) -> list[dict[str, Any]]:
    return [strip(d) for d in db[REALTIME_PRICES].find().sort([("symbol", 1), ("timestamp", 1)])]


OLD_DAYS = [date(2026, 1, 12), date(2026, 1, 13), date(2026, 1, 15)]  # a gap on the 14th
KEEP_DAY = date(2026, 1, 16)
CUTOFF = datetime(2026, 1, 16, 20, 0, tzinfo=UTC)  # mid-day of the 16th in New York


def load(db: Database) -> list[dict[str, Any]]:
    docs = [q for sym, base in (("AAPL", 100.0), ("MSFT", 300.0))
            for day in [*OLD_DAYS, KEEP_DAY] for q in day_quotes(sym, day, 4, base)]
    db[REALTIME_PRICES].insert_many([dict(d) for d in docs])
    return docs


def test_days_land_with_the_partition_layout_and_equal_the_mongodb_rows(db: Database, settings: Settings,
                                                                        s3_server: MotoS3) -> None:
    load(db)
    before = stored(db)
    report = archive_before_retention(db, settings, CUTOFF)

    assert report.ok, report.error
    keys = S3ObjectStore(s3_server.client(), settings.archive_s3_bucket).keys("")
    assert keys == sorted(partition_key("realtime_prices", s, d) for s in ("AAPL", "MSFT") for d in OLD_DAYS)
    store = S3ObjectStore(s3_server.client(), settings.archive_s3_bucket)
    for symbol in ("AAPL", "MSFT"):
        for day in OLD_DAYS:
            expected = [d for d in before if d["symbol"] == symbol and d["timestamp"].astimezone(NY).date() == day]
            assert archive.read_partition(store, "realtime_prices", symbol, day) == expected
    assert list_partitions(store, "realtime_prices", "MSFT") == [("MSFT", d) for d in OLD_DAYS]


def test_retention_deletes_exactly_what_was_archived(db: Database, settings: Settings, s3_server: MotoS3) -> None:
    load(db)
    before = stored(db)
    report = archive_before_retention(db, settings, CUTOFF)

    after = stored(db)
    store = S3ObjectStore(s3_server.client(), settings.archive_s3_bucket)
    archived = [r for s, d in list_partitions(store, "realtime_prices")
                for r in archive.read_partition(store, "realtime_prices", s, d) or []]
    deleted = [d for d in before if d not in after]
    by_key = lambda r: (r["symbol"], r["timestamp"])  # noqa: E731
    assert sorted(deleted, key=by_key) == sorted(archived, key=by_key)
    assert report.deleted == len(deleted) == 2 * 3 * 4
    # The cutoff's own day (some of it older than the cutoff) stays whole for the next run.
    assert {d["timestamp"].astimezone(NY).date() for d in after} == {KEEP_DAY}
    assert len(after) == 2 * 4


def test_an_upload_failure_deletes_nothing_and_says_so(db: Database, settings: Settings,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    load(db)
    before = stored(db)
    missing_bucket = settings.model_copy(update={"archive_s3_bucket": "no-such-bucket-" + uuid.uuid4().hex[:8]})
    with caplog.at_level(logging.ERROR, logger="batch.archive"):
        report = archive_before_retention(db, missing_bucket, CUTOFF)

    assert not report.ok
    assert "symbol=AAPL/date=2026-01-12/quotes.parquet failed" in (report.error or "")
    assert "NoSuchBucket" in (report.error or "")
    assert report.deleted == 0
    assert stored(db) == before
    assert any("FAILED, retention stopped" in r.getMessage() for r in caplog.records)


class FailingAfter:
    """The real S3 store, except that uploads fail after the first `ok` ones."""

    def __init__(self, inner: S3ObjectStore, ok: int) -> None:
        self.inner, self.ok = inner, ok

    def put(self, key: str, data: bytes) -> None:
        if self.ok <= 0:
            raise ConnectionError("connection reset by peer")
        self.ok -= 1
        self.inner.put(key, data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def test_a_failure_midway_keeps_everything_not_yet_uploaded(db: Database, settings: Settings,
                                                            s3_server: MotoS3) -> None:
    load(db)
    before = stored(db)
    store = S3ObjectStore(s3_server.client(), settings.archive_s3_bucket)
    report = archive_before_retention(db, settings, CUTOFF, store=FailingAfter(store, ok=2))

    assert not report.ok and "ConnectionError" in (report.error or "")
    assert [(p.symbol, p.day) for p in report.partitions] == [("AAPL", OLD_DAYS[0]), ("AAPL", OLD_DAYS[1])]
    uploaded = [r for p in report.partitions
                for r in archive.read_partition(store, "realtime_prices", p.symbol, p.day) or []]
    assert stored(db) == [d for d in before if d not in uploaded]
    assert len(store.keys("")) == 2

    # The next run (store healthy again) picks up where this one stopped.
    again = archive_before_retention(db, settings, CUTOFF)
    assert again.ok and len(again.partitions) == 4
    assert len(store.keys("")) == 6


def test_re_archiving_a_day_replaces_its_file_without_duplicates(db: Database, settings: Settings,
                                                                 s3_server: MotoS3) -> None:
    day = OLD_DAYS[0]
    first = day_quotes("AAPL", day, 3, 100.0)
    db[REALTIME_PRICES].insert_many([dict(d) for d in first])
    assert archive_before_retention(db, settings, CUTOFF).ok

    # The same day again (e.g. the quotes came back from a restore), one quote changed, one new.
    second = [dict(first[0], price=99.0), quote("AAPL", first[-1]["timestamp"] + timedelta(minutes=1), 1.0)]
    db[REALTIME_PRICES].insert_many([dict(d) for d in second])
    assert archive_before_retention(db, settings, CUTOFF).ok

    store = S3ObjectStore(s3_server.client(), settings.archive_s3_bucket)
    assert store.keys("") == [partition_key("realtime_prices", "AAPL", day)]
    rows = archive.read_partition(store, "realtime_prices", "AAPL", day)
    assert rows == [second[0], first[1], first[2], second[1]]
    assert stored(db) == []


def test_read_archive_command_reads_a_day_back(db: Database, settings: Settings, env: dict[str, str]) -> None:
    docs = day_quotes("AAPL", OLD_DAYS[1], 4, 100.0)
    db[REALTIME_PRICES].insert_many([dict(d) for d in docs])
    assert archive_before_retention(db, settings, CUTOFF).ok

    shown = run_script("batch/read_archive.py", env, ["--symbol", "aapl", "--date", "2026-01-13"], timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "symbol=AAPL/date=2026-01-13/quotes.parquet" in shown.stdout
    assert "AAPL 2026-01-13: 4 quotes" in shown.stdout
    assert "open 100.0000  close 103.0000" in shown.stdout

    lines = run_script("batch/read_archive.py", env, ["--symbol", "AAPL", "--date", "2026-01-13", "--jsonl"],
                       timeout=60)
    assert lines.returncode == 0 and len(lines.stdout.splitlines()) == 4

    listed = run_script("batch/read_archive.py", env, ["--list"], timeout=60)
    assert "AAPL 2026-01-13 s3://" in listed.stdout and "1 archived symbol-day(s)" in listed.stdout

    absent = run_script("batch/read_archive.py", env, ["--symbol", "AAPL", "--date", "2026-01-14"], timeout=60)
    assert absent.returncode == 1 and "not archived" in absent.stderr
