"""Helpers for the streaming tests (no tests here): write and read topics directly."""

from __future__ import annotations

import json
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from config import Settings
from streaming.kafka_io import ensure_topics

T0 = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)


def make_topics(settings: Settings, *names: str) -> None:
    assert ensure_topics(settings, list(names) or [settings.kafka_topic], threading.Event())


def quote_bytes(symbol: str, i: int, **fields: Any) -> bytes:
    """A valid quote message, timestamp T0 + i seconds."""
    body: dict[str, Any] = {
        "symbol": symbol, "timestamp": (T0 + timedelta(seconds=i)).isoformat(), "price": 100.0 + i % 50 / 10,
        "volume": 1000, "open": 100.0, "high": 106.0, "low": 99.0, "previous_close": 100.0,
        "change_percent": 0.5, "source": "simulated",
    }
    body.update(fields)
    return json.dumps(body).encode()


def produce(bootstrap: str, topic: str, messages: list[tuple[str | None, bytes]]) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for key, value in messages:
            producer.send(topic, key=key.encode() if key else None, value=value)
        producer.flush(timeout=60)
    finally:
        producer.close()


def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 30.0) -> list[ConsumerRecord]:
    """All records of a topic once at least `expect` are there (no group, from the start)."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             auto_offset_reset="earliest")
    try:
        deadline = time.monotonic() + timeout
        parts = None
        while not parts:
            parts = consumer.partitions_for_topic(topic)
            if time.monotonic() > deadline:
                raise TimeoutError(f"topic {topic} does not exist")
            if not parts:
                time.sleep(0.2)
        consumer.assign([TopicPartition(topic, p) for p in parts])
        consumer.seek_to_beginning()
        records: list[ConsumerRecord] = []
        while len(records) < expect:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{len(records)} of {expect} records in {topic}")
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        # Anything beyond `expect` that is already there too (one more short poll).
        for batch in consumer.poll(timeout_ms=300).values():
            records.extend(batch)
        return records
    finally:
        consumer.close()
