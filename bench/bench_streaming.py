"""Benchmark: quotes through Kafka into MongoDB, the consumer as built vs a naive baseline.

    python bench/bench_streaming.py [--messages 50000] [--baseline-messages 5000]

Starts its own Tansu (Kafka) and SecantusDB (MongoDB) on free ports unless
--bootstrap / --mongo-uri point at running servers. For each consumer a producer
thread sends quotes as fast as it can (timestamp = send time) while the consumer
drains the topic; we report messages/s (first record received → last stored) and
p50/p99 latency from the quote's timestamp to its document being stored.

- built:    streaming.consumer.PriceConsumer (batches of up to 500, one unordered
            bulk insert per batch, one commit per batch)
- baseline: the same validation, then insert_one and a commit per message

The baseline runs on fewer messages by default (it is slow; its rate is steady),
both on the same servers in the same run. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import threading
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from kafka import KafkaConsumer, KafkaProducer, TopicPartition  # noqa: E402
from kafka.structs import OffsetAndMetadata  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.errors import DuplicateKeyError  # noqa: E402

from config.settings import Settings  # noqa: E402
from database.mongo import REALTIME_PRICES  # noqa: E402
from database.setup_mongodb import ensure_indexes  # noqa: E402
from streaming.consumer import PriceConsumer  # noqa: E402
from streaming.kafka_io import ensure_topics, make_consumer, make_producer  # noqa: E402
from streaming.schema import parse_message, to_document, to_message  # noqa: E402

SYMBOLS = [f"S{i:04d}" for i in range(1000)]


class _QuietLog:
    def info(self, *a: Any, **k: Any) -> None: ...
    def debug(self, *a: Any, **k: Any) -> None: ...
    def warning(self, msg: str, *a: Any, **k: Any) -> None: print("warning:", msg % a, file=sys.stderr)


def produce(bootstrap: str, topic: str, count: int) -> None:
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5, batch_size=65536)
    last: dict[str, datetime] = {}
    for i in range(count):
        symbol = SYMBOLS[i % len(SYMBOLS)]
        now = datetime.now(UTC).replace(microsecond=datetime.now(UTC).microsecond // 1000 * 1000)
        ts = max(now, last.get(symbol, now - timedelta(seconds=1)) + timedelta(milliseconds=1))
        last[symbol] = ts
        price = 100 + (i % 97) / 10
        quote = {"symbol": symbol, "timestamp": ts, "price": price, "volume": 1000 + i % 500, "open": 100.0,
                 "high": max(price, 110.0), "low": 99.0, "previous_close": 100.0, "change_percent": 0.5,
                 "source": "simulated"}
        producer.send(topic, key=symbol.encode(), value=to_message(quote))
    producer.flush()
    producer.close()


def wait_assigned(consumer: KafkaConsumer) -> None:
    # Join the group before producing, so latency does not include the join.
    while not consumer.assignment():
        polled = consumer.poll(timeout_ms=200)
        assert not polled, "topic should be empty before the producer starts"


def summarise(name: str, count: int, started: float, finished: float, latencies: list[float]) -> dict[str, float]:
    rate = count / (finished - started)
    lat = sorted(latencies)
    result = {"messages": count, "seconds": finished - started, "msgs_per_s": rate,
              "p50_ms": statistics.median(lat) * 1000, "p99_ms": lat[int(len(lat) * 0.99) - 1] * 1000}
    print(f"{name:9s} {count:7d} msgs in {result['seconds']:7.2f}s  {rate:9.1f} msgs/s  "
          f"p50 {result['p50_ms']:9.1f} ms  p99 {result['p99_ms']:9.1f} ms", flush=True)
    return result


def run_built(settings: Settings, count: int) -> dict[str, float]:
    stop = threading.Event()
    db = MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]
    consumer = make_consumer(settings, settings.kafka_consumer_group, [settings.kafka_topic], stop)
    dlq = make_producer(settings, stop)
    assert consumer is not None and dlq is not None
    wait_assigned(consumer)
    latencies: list[float] = []
    marks: dict[str, float] = {}

    def on_stored(docs: list[dict[str, Any]], stored_at: float) -> None:
        marks.setdefault("first", stored_at)
        latencies.extend(stored_at - d["timestamp"].timestamp() for d in docs)
        if len(latencies) >= count:
            marks["last"] = stored_at
            stop.set()

    worker = PriceConsumer(settings, consumer, db, dlq, stop, _QuietLog(), on_stored=on_stored)
    original_handle = worker.handle

    def handle(records: list[Any]) -> bool:
        marks.setdefault("start", time.time())  # first record in hand
        return original_handle(records)

    worker.handle = handle  # type: ignore[method-assign]
    producer = threading.Thread(target=produce, args=(settings.kafka_bootstrap_servers, settings.kafka_topic, count))
    producer.start()
    worker.run()
    producer.join()
    consumer.close()
    dlq.close()
    assert db[REALTIME_PRICES].count_documents({}) == count
    return summarise("built", count, marks["start"], marks["last"], latencies)


def run_baseline(settings: Settings, count: int) -> dict[str, float]:
    db = MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]
    consumer = make_consumer(settings, settings.kafka_consumer_group, [settings.kafka_topic], threading.Event())
    assert consumer is not None
    wait_assigned(consumer)
    producer = threading.Thread(target=produce, args=(settings.kafka_bootstrap_servers, settings.kafka_topic, count))
    producer.start()
    latencies: list[float] = []
    started = 0.0
    finished = 0.0
    while len(latencies) < count:
        for records in consumer.poll(timeout_ms=1000).values():
            for rec in records:
                started = started or time.time()
                doc = to_document(parse_message(rec.value), datetime.now(UTC))
                with contextlib.suppress(DuplicateKeyError):  # a redelivery: already stored
                    db[REALTIME_PRICES].insert_one(doc)
                finished = time.time()
                latencies.append(finished - doc["timestamp"].timestamp())
                consumer.commit({TopicPartition(rec.topic, rec.partition): OffsetAndMetadata(rec.offset + 1, "", -1)})
    producer.join()
    consumer.close()
    return summarise("baseline", count, started, finished, latencies)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--messages", type=int, default=50_000)
    parser.add_argument("--baseline-messages", type=int, default=5_000)
    parser.add_argument("--bootstrap", help="Kafka host:port (default: start Tansu)")
    parser.add_argument("--mongo-uri", help="MongoDB URI (default: start SecantusDB)")
    args = parser.parse_args()

    servers: list[Any] = []
    if not args.bootstrap or not args.mongo_uri:
        from scripts.servers import SecantusMongo, TansuBroker
    if not args.bootstrap:
        servers.append(TansuBroker().start())
        args.bootstrap = servers[-1].bootstrap
    if not args.mongo_uri:
        servers.append(SecantusMongo().start())
        args.mongo_uri = servers[-1].uri
    try:
        results = {}
        for name, count, runner in (("built", args.messages, run_built),
                                    ("baseline", args.baseline_messages, run_baseline)):
            tag = f"{name}-{uuid.uuid4().hex[:6]}"
            settings = Settings(_env_file=None, kafka_bootstrap_servers=args.bootstrap, mongo_uri=args.mongo_uri,  # type: ignore[call-arg]
                                kafka_topic=f"bench-{tag}", kafka_dlq_topic=f"bench-{tag}.dlq",
                                kafka_consumer_group=f"bench-{tag}", mongo_db=f"bench_{tag.replace('-', '_')}",
                                kafka_session_timeout_ms=6000, kafka_heartbeat_interval_ms=1000,
                                log_to_elasticsearch=False, stock_symbols=SYMBOLS)
            ensure_topics(settings, [settings.kafka_topic, settings.kafka_dlq_topic], threading.Event())
            ensure_indexes(MongoClient(args.mongo_uri)[settings.mongo_db])
            results[name] = runner(settings, count)
        ratio = results["built"]["msgs_per_s"] / results["baseline"]["msgs_per_s"]
        print(f"throughput ratio built/baseline: {ratio:.1f}x (required >= 5x)")
        print(json.dumps(results, indent=2))
        return 0 if ratio >= 5 else 1
    finally:
        for server in reversed(servers):
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
