"""Kafka I/O shared by the producer, the consumer and the alerts service.

Connecting retries with backoff (the broker may start after us, or go away), and
the dead-letter topic keeps the original bytes with the reason in headers.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, TopicAlreadyExistsError
from kafka.structs import OffsetAndMetadata

from common.clock import utc_now
from common.retry import STOPPED, retry
from config import Settings

log = logging.getLogger(__name__)
KAFKA_DOWN = (KafkaError, OSError)

# DLQ headers (values are UTF-8 bytes).
H_REASON = "dlq.reason"
H_TOPIC = "dlq.source.topic"
H_PARTITION = "dlq.source.partition"
H_OFFSET = "dlq.source.offset"
H_FAILED_AT = "dlq.failed_at"
H_TRUNCATED = "dlq.original_size"
H_KEY_TRUNCATED = "dlq.original_key_size"
# A bad message close to the broker's 1 MB limit plus our headers would not fit
# in the DLQ, and retrying it would stall the consumer forever: beyond this many
# bytes the copy is cut and the original size recorded in a header.
MAX_DLQ_VALUE = 900 * 1024
MAX_DLQ_KEY = 1024  # a key is a ticker: a huge one is hostile, and value + key must fit too


def _common(settings: Settings) -> dict[str, Any]:
    return {"bootstrap_servers": settings.kafka_bootstrap_servers.split(","), "client_id": "stock-analysis-system"}


def ensure_topics(settings: Settings, names: Iterable[str], stop: threading.Event) -> bool:
    """Create the topics (partitions/replication from settings) unless they exist. Idempotent.
    Retries while the broker is unreachable; False only if stopped first."""

    def create() -> None:
        admin = KafkaAdminClient(**_common(settings), request_timeout_ms=15000)
        try:
            existing = set(admin.list_topics())
            for name in names:
                if name in existing:
                    continue
                try:
                    admin.create_topics([NewTopic(name, settings.kafka_partitions, settings.kafka_replication_factor)])
                    log.info("created topic %s with %d partitions", name, settings.kafka_partitions)
                except TopicAlreadyExistsError:
                    pass  # another service won the race
        finally:
            admin.close()

    return retry(create, what="creating Kafka topics", retry_on=KAFKA_DOWN, stop=stop, log=log) is not STOPPED


def make_producer(settings: Settings, stop: threading.Event, **overrides: Any) -> KafkaProducer | None:
    """A durable producer: acks=all, idempotent, retrying. None only if stopped first."""
    config: dict[str, Any] = {
        **_common(settings),
        "acks": "all",
        "enable_idempotence": True,
        "retries": 2**31 - 1,  # bounded by delivery_timeout_ms
        "delivery_timeout_ms": 120000,
        "max_block_ms": 30000,
        "linger_ms": 5,
        "key_serializer": lambda k: k.encode("utf-8") if isinstance(k, str) else k,
    }
    config.update(overrides)
    producer = retry(lambda: KafkaProducer(**config), what="connecting the Kafka producer", retry_on=KAFKA_DOWN,
                     stop=stop, log=log)
    return None if producer is STOPPED else producer


def make_consumer(settings: Settings, group: str, topics: list[str], stop: threading.Event,
                  **overrides: Any) -> KafkaConsumer | None:
    """A group consumer with manual commits (we commit after the batch is stored)."""
    config: dict[str, Any] = {
        **_common(settings),
        "group_id": group,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "max_poll_records": 500,
        # Long enough to ride out a MongoDB/MySQL outage while a batch is retried;
        # if exceeded, the group rebalances and the batch is redelivered (idempotent).
        "max_poll_interval_ms": 600000,
    }
    config.update(overrides)

    def connect() -> KafkaConsumer:
        consumer = KafkaConsumer(**config)
        consumer.subscribe(topics)
        return consumer

    consumer = retry(connect, what=f"connecting Kafka consumer group {group}", retry_on=KAFKA_DOWN, stop=stop, log=log)
    return None if consumer is STOPPED else consumer


def consume_batches(consumer: KafkaConsumer, stop: threading.Event, handle: Callable[[list[ConsumerRecord]], bool],
                    log: Any, max_records: int = 500) -> None:
    """Poll batches and hand each to `handle` until stopped, or until `handle`
    returns False (it gave up on a batch; its offsets stay uncommitted)."""
    while not stop.is_set():
        try:
            polled = consumer.poll(timeout_ms=1000, max_records=max_records)
        except KafkaError as exc:
            log.warning("poll failed: %s; retrying", exc)
            stop.wait(1.0)
            continue
        records = [rec for batch in polled.values() for rec in batch]
        if records and not handle(records):
            return


def next_offsets(records: Iterable[ConsumerRecord]) -> dict[TopicPartition, OffsetAndMetadata]:
    """The offsets to commit after `records` are handled: last offset + 1 per partition."""
    offsets: dict[TopicPartition, int] = {}
    for rec in records:
        tp = TopicPartition(rec.topic, rec.partition)
        offsets[tp] = max(offsets.get(tp, -1), rec.offset + 1)
    return {tp: OffsetAndMetadata(off, "", -1) for tp, off in offsets.items()}


@dataclass
class DeadLetter:
    record: ConsumerRecord
    reason: str


def dlq_headers(dead: DeadLetter, failed_at: datetime | None = None) -> list[tuple[str, bytes]]:
    rec = dead.record
    when = (failed_at or utc_now()).isoformat(timespec="milliseconds")
    return [
        (H_REASON, dead.reason.encode("utf-8")),
        (H_TOPIC, rec.topic.encode("utf-8")),
        (H_PARTITION, str(rec.partition).encode()),
        (H_OFFSET, str(rec.offset).encode()),
        (H_FAILED_AT, when.encode()),
    ]


def dlq_message(dead: DeadLetter) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
    """The key, bytes and headers to send to the DLQ (the originals unless too large to fit)."""
    key = dead.record.key
    value = dead.record.value if dead.record.value is not None else b""
    headers = dlq_headers(dead)
    if len(value) > MAX_DLQ_VALUE:
        headers.append((H_TRUNCATED, str(len(value)).encode()))
        value = value[:MAX_DLQ_VALUE]
    if key is not None and len(key) > MAX_DLQ_KEY:
        headers.append((H_KEY_TRUNCATED, str(len(key)).encode()))
        key = key[:MAX_DLQ_KEY]
    return key, value, headers


def send_dead_letters(producer: KafkaProducer, topic: str, dead: list[DeadLetter], timeout: float = 30.0) -> None:
    """Send and wait for the broker's acknowledgement (raises KafkaError on failure):
    the source offsets are committed only once the DLQ holds the messages."""
    futures = []
    for d in dead:
        key, value, headers = dlq_message(d)
        futures.append(producer.send(topic, key=key, value=value, headers=headers))
    producer.flush(timeout=timeout)
    for future in futures:
        future.get(timeout=timeout)


def header(record: ConsumerRecord, name: str) -> str | None:
    """A header's value as text (DLQ readers)."""
    for key, value in record.headers or []:
        if key == name:
            return value.decode("utf-8", errors="replace") if value is not None else None
    return None
