"""A bad message too large to fit in the DLQ with its headers is cut, not retried forever."""

from __future__ import annotations

import threading

from kafka.consumer.fetcher import ConsumerRecord

from streaming.kafka_io import (
    H_KEY_TRUNCATED,
    H_REASON,
    H_TRUNCATED,
    MAX_DLQ_KEY,
    MAX_DLQ_VALUE,
    DeadLetter,
    header,
    make_producer,
    send_dead_letters,
)
from tests.conftest import Stack
from tests.test_streaming_support import make_topics, read_topic


def _record(value: bytes, offset: int) -> ConsumerRecord:
    return ConsumerRecord("stock-prices", 0, None, offset, 0, 0, b"AAPL", value, [], None, 4, len(value), 0)


def test_oversized_dead_letter_is_cut_and_says_its_size(stack: Stack) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_dlq_topic)
    producer = make_producer(settings, threading.Event())
    assert producer is not None
    huge = b"\x00" * 1_048_000  # at the 1 MiB request limit: with the DLQ headers it would not fit
    small = b"not json"
    try:
        send_dead_letters(producer, settings.kafka_dlq_topic, [
            DeadLetter(_record(huge, 7), "not valid JSON"), DeadLetter(_record(small, 8), "not valid JSON"),
        ])
    finally:
        producer.close()
    records = sorted(read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic, expect=2),
                     key=lambda r: len(r.value))
    kept, cut = records
    assert kept.value == small and header(kept, H_TRUNCATED) is None
    assert len(cut.value) == MAX_DLQ_VALUE and cut.value == huge[:MAX_DLQ_VALUE]
    assert header(cut, H_TRUNCATED) == str(len(huge))
    assert header(cut, H_REASON) == "not valid JSON"


def test_dead_letter_with_a_huge_key_is_cut_too(stack: Stack) -> None:
    # The key is a ticker; a hostile producer can make it nearly 1 MiB, and the copy with the DLQ
    # headers would then be over the producer's request limit, retried forever, stalling the partition.
    settings = stack.settings()
    make_topics(settings, settings.kafka_dlq_topic)
    producer = make_producer(settings, threading.Event())
    assert producer is not None
    key = b"K" * 1_048_400
    record = ConsumerRecord("stock-prices", 0, None, 9, 0, 0, key, b"{}", [], None, len(key), 2, 0)
    try:
        send_dead_letters(producer, settings.kafka_dlq_topic, [DeadLetter(record, "missing field(s)")])
    finally:
        producer.close()
    [dead] = read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic, expect=1)
    assert dead.key == key[:MAX_DLQ_KEY] and dead.value == b"{}"
    assert header(dead, H_KEY_TRUNCATED) == str(len(key)) and header(dead, H_TRUNCATED) is None
