"""streaming/consumer.py against real Tansu and SecantusDB, run as its container runs it."""

from __future__ import annotations

import json
import tempfile
from datetime import UTC, datetime

from pymongo import MongoClient

from database.mongo import REALTIME_PRICES
from scripts.processes import ServiceProcess
from scripts.servers import SecantusMongo
from scripts.waiting import wait_for
from streaming.kafka_io import H_OFFSET, H_REASON, header
from tests.conftest import Stack
from tests.test_streaming_schema import DESIGN_EXAMPLE
from tests.test_streaming_support import make_topics, produce, quote_bytes, read_topic

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]


def prices(stack: Stack, uri: str | None = None):  # type: ignore[no-untyped-def]
    settings = stack.settings()
    return MongoClient(uri or settings.mongo_uri, tz_aware=True)[settings.mongo_db][REALTIME_PRICES]


def test_design_example_stored_and_malformed_go_to_dlq(stack: Stack) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    bad = [
        b"{not json",
        json.dumps({k: v for k, v in DESIGN_EXAMPLE.items() if k != "volume"}).encode(),
        json.dumps(dict(DESIGN_EXAMPLE, symbol="MSFT", price=-3.0)).encode(),
        json.dumps(dict(DESIGN_EXAMPLE, symbol="MSFT", timestamp="13/01/2026 15:30")).encode(),
    ]
    # Everything keyed AAPL: one partition, so the good ones sit between the bad ones.
    messages = [("AAPL", quote_bytes("AAPL", 1)), ("AAPL", bad[0]), ("AAPL", json.dumps(DESIGN_EXAMPLE).encode()),
                ("AAPL", bad[1]), ("AAPL", bad[2]), ("AAPL", bad[3]), ("AAPL", quote_bytes("AAPL", 2))]
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic, messages)

    consumer = ServiceProcess("streaming/consumer.py", stack.env).start()
    try:
        coll = prices(stack)
        wait_for(lambda: coll.count_documents({}) == 3, timeout=60, what="3 good quotes stored")
        dead = read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic, expect=4)
    finally:
        assert consumer.stop() == 0, consumer.output()
    assert [d.value for d in dead] == bad  # original bytes, in order
    reasons = [header(d, H_REASON) for d in dead]
    assert "not JSON" in reasons[0] and "missing field(s): volume" in reasons[1]
    assert "price must be positive" in reasons[2] and "timestamp does not parse" in reasons[3]
    assert [header(d, H_OFFSET) for d in dead] == ["1", "3", "4", "5"]

    doc = coll.find_one({"timestamp": datetime(2026, 1, 13, 15, 30, tzinfo=UTC)}, {"_id": 0})
    assert doc is not None and doc["price"] == 261.05 and doc["volume"] == 287051
    assert abs(doc["price_change_pct"] - (261.05 - 260.22) / 260.22 * 100) < 1e-3
    assert isinstance(doc["processed_at"], datetime)
    out = consumer.output()
    assert "to DLQ" in out and "price must be positive" in out and "batch of" in out


def test_10000_messages_exactly_once_across_a_kill(stack: Stack) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    total = 10_000
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [(SYMBOLS[i % 7], quote_bytes(SYMBOLS[i % 7], i)) for i in range(total)])
    coll = prices(stack)
    # Small batches so the kill lands mid-stream, between a write and its commit.
    env = stack.with_env(LOG_LEVEL="INFO")
    first = ServiceProcess("streaming/consumer.py", env, name="consumer-a").start()
    try:
        wait_for(lambda: coll.count_documents({}) >= 2000, timeout=90, what="first consumer under way")
        first.kill()  # SIGKILL: no clean shutdown, no final commit
    finally:
        first.kill()
    stopped_at = coll.count_documents({})
    assert stopped_at < total
    # Two containers in the same group now share the partitions (compose --scale).
    others = [ServiceProcess("streaming/consumer.py", env, name=f"consumer-{n}").start() for n in "bc"]
    try:
        wait_for(lambda: coll.count_documents({}) >= total, timeout=120, what="all quotes stored")
        # Nothing beyond the total arrives later either.
        assert coll.count_documents({}) == total
        keys = {(d["symbol"], d["timestamp"]) for d in coll.find({}, {"symbol": 1, "timestamp": 1})}
        assert len(keys) == total
    finally:
        for proc in others:
            assert proc.stop() == 0, proc.output()


def test_mongodb_down_for_a_while_loses_nothing(stack: Stack) -> None:
    # A private MongoDB with on-disk storage, so that it can stop and come back with its data.
    store = tempfile.mkdtemp(prefix="secantus-")
    mongo = SecantusMongo(storage_path=f"{store}/db.sqlite").start()
    env = stack.with_env(MONGO_URI=mongo.uri)
    settings = stack.settings(mongo_uri=mongo.uri)
    make_topics(settings, settings.kafka_topic)
    coll = prices(stack, mongo.uri)
    consumer = ServiceProcess("streaming/consumer.py", env).start()
    try:
        produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
                [(SYMBOLS[i % 7], quote_bytes(SYMBOLS[i % 7], i)) for i in range(100)])
        wait_for(lambda: coll.count_documents({}) == 100, timeout=60, what="first 100 stored")
        mongo.stop()
        produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
                [(SYMBOLS[i % 7], quote_bytes(SYMBOLS[i % 7], i)) for i in range(100, 300)])
        wait_for(lambda: "writing quotes to MongoDB failed" in consumer.output(), timeout=60,
                 what="the consumer noticing MongoDB is down")
        assert consumer.running
        mongo.start()
        wait_for(lambda: coll.count_documents({}) == 300, timeout=90, what="the rest stored after MongoDB returned")
        assert len({(d["symbol"], d["timestamp"]) for d in coll.find()}) == 300
    finally:
        code = consumer.stop()
        mongo.stop()
    assert code == 0, consumer.output()
