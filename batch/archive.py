"""Archive of expiring quotes to S3 as Parquet, run by the daily job before retention.

With ARCHIVE_ENABLED the daily job calls `archive_before_retention` instead of the
plain retention delete. For every (symbol, market day) older than the retention
limit it writes one Parquet file

    s3://ARCHIVE_S3_BUCKET/ARCHIVE_S3_PREFIX/symbol=AAPL/date=2026-01-13/quotes.parquet

(Hive-style partitions, so Athena, Spark, DuckDB or pyarrow.dataset read the
prefix as one table with `symbol` and `date` columns) and only after that upload
succeeded deletes those very documents (by _id) from MongoDB.

Guarantees:
- Nothing is deleted that was not uploaded first. An upload failure stops the
  step at once: that partition and every later one stay in MongoDB, the report
  says which key failed and why, and the next run tries again.
- Re-archiving a day writes the same key again: the file is replaced, never
  duplicated. If the key already exists (e.g. a run uploaded, then died before
  its delete), the rows already in it are kept and the MongoDB rows replace
  those with the same timestamp, so a re-run can never shrink the archive.
- Whole market days only: the limit is moved back to the local midnight of the
  retention cutoff, so a day is archived and deleted in one piece (quotes of
  the cutoff's own day wait for the next run, at most one day longer).
- Memory is bounded by one symbol's day of quotes, whatever the backlog.

The Parquet conversion (`rows_to_table`, `table_to_parquet`, `parquet_to_rows`,
`merge_tables`, `partition_key`) is pure and tested without servers; S3 is behind
the small `ObjectStore` protocol, with boto3 in `S3ObjectStore`.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pymongo.database import Database

from common.quote import ARCHIVE_FIELDS
from config import Settings
from database.mongo import archive_reads
from database.mongo.price_stats import day_bounds
from logs.logger_config import get_logger

log = get_logger("batch.archive")

FILE_NAME = "quotes.parquet"
KEY_RE = re.compile(r"(?:^|/)symbol=(?P<symbol>[^/]+)/date=(?P<date>\d{4}-\d{2}-\d{2})/" + re.escape(FILE_NAME) + "$")

_TS = pa.timestamp("ms", tz="UTC")  # BSON datetimes are milliseconds: lossless
# The Arrow type of each archived field (common/quote.py ARCHIVE_FIELDS: the stored
# document minus `symbol`, which is the partition; Hive layouts keep partition columns
# out of the files, and Spark and Athena refuse a column that is in both).
_TYPES: dict[str, pa.DataType] = {
    "timestamp": _TS, "price": pa.float64(), "volume": pa.int64(), "open": pa.float64(), "high": pa.float64(),
    "low": pa.float64(), "change_percent": pa.float64(), "previous_close": pa.float64(), "source": pa.string(),
    "market_open": pa.bool_(), "price_change_pct": pa.float64(), "processed_at": _TS,
}
# Fields outside the shape are kept as JSON in `extra`, so archiving never drops data.
SCHEMA = pa.schema([pa.field(name, _TYPES[name], nullable=name != "timestamp") for name in ARCHIVE_FIELDS]
                   + [pa.field("extra", pa.string())])
_COLUMNS = list(ARCHIVE_FIELDS)
_SKIP = {"_id", "symbol"}
# Columns files written before them lack; such a file carried the field in `extra`.
_ADDED_COLUMNS = ("market_open",)


# --- pure: keys, tables, Parquet bytes -----------------------------------------
def partition_key(prefix: str, symbol: str, day: date) -> str:
    """The object key of one symbol's day; the same inputs always give the same key."""
    path = f"symbol={symbol}/date={day.isoformat()}/{FILE_NAME}"
    prefix = prefix.strip("/")
    return f"{prefix}/{path}" if prefix else path


def parse_partition_key(key: str) -> tuple[str, date] | None:
    """(symbol, day) of an archive key, or None for any other object."""
    m = KEY_RE.search(key)
    return (m.group("symbol"), date.fromisoformat(m.group("date"))) if m else None


def _utc(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # pymongo without tz_aware: BSON dates are UTC
    return value


def rows_to_table(rows: Iterable[Mapping[str, Any]]) -> pa.Table:
    """MongoDB quote documents (one symbol) → an Arrow table of SCHEMA, in the given order."""
    columns: dict[str, list[Any]] = {name: [] for name in SCHEMA.names}
    for row in rows:
        for name in _COLUMNS:
            columns[name].append(_utc(row.get(name)))
        extra = {k: v for k, v in row.items() if k not in _SKIP and k not in _COLUMNS}
        columns["extra"].append(json.dumps(extra, default=str, sort_keys=True) if extra else None)
    return pa.Table.from_pydict(columns, schema=SCHEMA)


def table_to_parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd")
    return buf.getvalue()


def parquet_to_table(data: bytes) -> pa.Table:
    # One day of one symbol is small; without the thread pool there is also no pool
    # to tear down at exit (pyarrow 26 + boto3 aborted there in about 1 run in 5).
    return pq.read_table(io.BytesIO(data), use_threads=False, pre_buffer=False)


def upgrade_table(table: pa.Table) -> pa.Table:
    """A table of any archive version → SCHEMA. An older file (no market_open column) had
    the flag in `extra`: it moves to its column, so merged files carry it in one place."""
    missing = [name for name in _ADDED_COLUMNS if name not in table.column_names]
    if not missing:
        return table.cast(SCHEMA)
    extras = [json.loads(e) if e else {} for e in table.column("extra").to_pylist()]
    for name in missing:
        table = table.append_column(name, pa.array([e.pop(name, None) for e in extras], _TYPES[name]))
    table = table.set_column(table.schema.get_field_index("extra"), "extra",
                             pa.array([json.dumps(e, sort_keys=True) if e else None for e in extras], pa.string()))
    return table.select(SCHEMA.names).cast(SCHEMA)


def table_to_rows(table: pa.Table, symbol: str | None = None) -> list[dict[str, Any]]:
    """Rows back as dicts in the document shape (symbol from the partition, `extra` unpacked).
    A null market_open reads back absent, as in the documents of producers that did not say."""
    rows = []
    for row in table.to_pylist():
        extra = row.pop("extra", None)
        if row.get("market_open", False) is None:
            del row["market_open"]
        if symbol is not None:
            row = {"symbol": symbol, **row}
        if extra:
            row.update(json.loads(extra))
        rows.append(row)
    return rows


def parquet_to_rows(data: bytes, symbol: str | None = None) -> list[dict[str, Any]]:
    return table_to_rows(parquet_to_table(data), symbol)


def merge_tables(existing: pa.Table, new: pa.Table) -> pa.Table:
    """`new` plus the rows of `existing` whose timestamp is not in `new`, by timestamp."""
    existing = upgrade_table(existing)
    keep = pc.invert(pc.is_in(existing["timestamp"], value_set=new["timestamp"]))
    return pa.concat_tables([existing.filter(keep), new]).sort_by("timestamp")


def archive_limit(cutoff: datetime, tz: ZoneInfo) -> datetime:
    """Local midnight starting the market day that contains `cutoff`."""
    return day_bounds(cutoff.astimezone(tz).date(), tz)[0]


# --- the object store ------------------------------------------------------------
class ObjectStore(Protocol):
    def put(self, key: str, data: bytes) -> None: ...
    def get(self, key: str) -> bytes | None: ...
    def keys(self, prefix: str) -> list[str]: ...
    def url(self, key: str) -> str: ...


class S3ObjectStore:
    """One bucket of S3 or an S3-compatible server (MinIO, moto) through boto3."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def put(self, key: str, data: bytes) -> None:
        # Content-MD5 makes the server reject a body that arrived damaged.
        md5 = base64.b64encode(hashlib.md5(data).digest()).decode()  # noqa: S324 - integrity, not security
        self.client.put_object(Bucket=self.bucket, Key=key, Body=data, ContentMD5=md5,
                               ContentType="application/vnd.apache.parquet")

    def get(self, key: str) -> bytes | None:
        try:
            return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return None

    def keys(self, prefix: str) -> list[str]:
        found: list[str] = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix):
            found.extend(obj["Key"] for obj in page.get("Contents", []))
        return sorted(found)

    def url(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def make_s3_client(settings: Settings) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5, read_timeout=60, retries={"max_attempts": 3, "mode": "standard"},
        # Path-style URLs and checksums only when required: what S3-compatible
        # servers (MinIO, moto) accept as well as AWS.
        s3={"addressing_style": "path" if settings.archive_s3_endpoint_url else "auto"},
        request_checksum_calculation="when_required", response_checksum_validation="when_required",
    )
    return boto3.client(
        "s3",
        endpoint_url=settings.archive_s3_endpoint_url or None,
        region_name=settings.archive_s3_region,
        aws_access_key_id=settings.archive_s3_access_key_id or None,
        aws_secret_access_key=settings.archive_s3_secret_access_key or None,
        config=config,
    )


def make_store(settings: Settings) -> S3ObjectStore:
    return S3ObjectStore(make_s3_client(settings), settings.archive_s3_bucket)


# --- the archive step ---------------------------------------------------------------
@dataclass
class ArchivedPartition:
    symbol: str
    day: date
    key: str
    rows: int
    deleted: int


@dataclass
class ArchiveReport:
    limit: datetime
    partitions: list[ArchivedPartition] = field(default_factory=list)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def deleted(self) -> int:
        return sum(p.deleted for p in self.partitions)

    def describe(self) -> str:
        done = f"{len(self.partitions)} symbol-day(s) archived, {self.deleted} quotes deleted from MongoDB"
        if self.ok:
            return f"archive before {self.limit.isoformat()}: {done}"
        return f"archive before {self.limit.isoformat()} FAILED, retention stopped: {self.error}; before that {done}"


def archive_partition(store: ObjectStore, key: str, docs: list[dict[str, Any]]) -> int:
    """Upload one symbol's day; returns the rows in the stored file."""
    table = rows_to_table(docs)
    existing = store.get(key)
    if existing is not None:
        table = merge_tables(parquet_to_table(existing), table)
    store.put(key, table_to_parquet(table))
    return table.num_rows


def archive_before_retention(db: Database, settings: Settings, cutoff: datetime,
                             store: ObjectStore | None = None) -> ArchiveReport:
    """Archive then delete every whole market day of quotes before `cutoff`.

    Returns the report; `report.ok` is False when an upload failed, in which case
    nothing from that partition on was deleted (the error is logged too). A
    MongoDB error propagates, like any database failure of the daily job.
    """
    report = ArchiveReport(limit=archive_limit(cutoff, settings.tz))
    try:
        store = store or make_store(settings)
    except (ImportError, ValueError) as exc:  # boto3 not installed, a malformed endpoint URL
        report.error = f"cannot open the archive store: {type(exc).__name__}: {exc}"
    else:
        for symbol in archive_reads.symbols_before(db, report.limit):
            if not _archive_symbol(db, settings, store, symbol, report):
                break
    (log.info if report.ok else log.error)("%s", report.describe())
    return report


def _archive_symbol(db: Database, settings: Settings, store: ObjectStore, symbol: str, report: ArchiveReport) -> bool:
    """Archive and delete each day of one symbol before the limit; False after a failed upload."""
    tz = settings.tz
    after: datetime | None = None
    while (first := archive_reads.first_quote_time(db, symbol, report.limit, after)) is not None:
        day = first.astimezone(tz).date()
        start, after = day_bounds(day, tz)
        docs = archive_reads.day_quotes(db, symbol, start, after)
        key = partition_key(settings.archive_s3_prefix, symbol, day)
        try:
            rows = archive_partition(store, key, docs)
        except Exception as exc:  # any failure to store the file: keep the quotes
            report.error = f"upload of {store.url(key)} failed: {type(exc).__name__}: {str(exc)[:300]}"
            return False
        deleted = archive_reads.delete_ids(db, [d["_id"] for d in docs])
        report.partitions.append(ArchivedPartition(symbol, day, key, rows, deleted))
        log.info("archived %s %s: %d quotes to %s (file holds %d), %d deleted from MongoDB",
                 symbol, day, len(docs), store.url(key), rows, deleted)
    return True


# --- reading back ---------------------------------------------------------------------
def read_partition(store: ObjectStore, prefix: str, symbol: str, day: date) -> list[dict[str, Any]] | None:
    """The archived quotes of one symbol's day (document shape), or None if not archived."""
    data = store.get(partition_key(prefix, symbol, day))
    return None if data is None else parquet_to_rows(data, symbol)


def list_partitions(store: ObjectStore, prefix: str, symbol: str | None = None) -> list[tuple[str, date]]:
    """(symbol, day) of every archived file under the prefix, optionally for one symbol."""
    base = prefix.strip("/")
    scope = f"{base}/" if base else ""
    if symbol:
        scope += f"symbol={symbol}/"
    return sorted(p for k in store.keys(scope) if (p := parse_partition_key(k)) is not None)
