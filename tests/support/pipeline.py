"""Reading back what a local stack's pipeline did (MongoDB, MySQL, topics, the log
index) and running producer/consumer/alerts on the test servers: test-only."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from typing import Any

from scripts.local_stack import LocalStack
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import free_port, wait_for

# ---------------------------------------------------------------------- reading back
# What the producer says for each delivered quote at DEBUG (streaming/producer.py).
_SENT = re.compile(r"streaming.producer: sent (\S+) (\S+) ")
_SENT_AT = re.compile(r"streaming.producer: sent (\S+) (\S+) .*? to (partition \d+ offset \d+)")
_STOPPED = re.compile(r"producer stopped: (\d+) delivered, (\d+) not delivered \((\d+) still unsent\)")


def ms_utc(ts: datetime) -> datetime:
    """MongoDB keeps milliseconds; the consumer truncates to them (streaming/schema.py)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def delivered_keys(*outputs: str) -> set[tuple[str, datetime]]:
    """(symbol, timestamp) of every quote the producer saw acknowledged by Kafka
    (its DEBUG line per delivery; run the producer with LOG_LEVEL=DEBUG)."""
    return {(m.group(1), ms_utc(datetime.fromisoformat(m.group(2)))) for out in outputs for m in _SENT.finditer(out)}


def delivered_count(output: str) -> tuple[int, int, int]:
    """The producer's last line on SIGTERM: (delivered, not delivered, still unsent)."""
    found = _STOPPED.findall(output)
    if not found:
        raise AssertionError("the producer did not log its delivered count (was it stopped with SIGTERM?)")
    delivered, failed, unsent = (int(x) for x in found[-1])
    return delivered, failed, unsent


class StackProbe:
    """Reads what the pipeline did: MongoDB, MySQL, topics (to the fetch high-water mark), ES."""

    def __init__(self, stack: LocalStack) -> None:
        from pymongo import MongoClient

        self.stack = stack
        self.settings = stack.settings()
        self.client: Any = MongoClient(self.settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
        self.db = self.client[self.settings.mongo_db]

    def close(self) -> None:
        self.client.close()

    # MongoDB
    def stored_count(self) -> int:
        return int(self.db.realtime_prices.count_documents({}))

    def stored_keys(self) -> list[tuple[str, datetime]]:
        docs = self.db.realtime_prices.find({}, {"symbol": 1, "timestamp": 1})
        return [(d["symbol"], ms_utc(d["timestamp"])) for d in docs]

    def alert_history(self) -> list[dict[str, Any]]:
        return list(self.db.alert_history.find({}, {"_id": 0}).sort("quote_timestamp", 1))

    # MySQL
    def mysql_rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = self.stack._mysql_root(self.stack.mysql_database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def alert_rows(self) -> list[dict[str, Any]]:
        return self.mysql_rows("SELECT alert_key, symbol, rule, value, email_status, email_error FROM alert_log"
                               " ORDER BY id")

    # Kafka
    def produce(self, messages: list[tuple[str | None, bytes]], topic: str | None = None) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers, acks="all", linger_ms=5,
                                 max_request_size=2 * 1024 * 1024)
        try:
            futures = [producer.send(topic or self.settings.kafka_topic, key=k.encode() if k else None, value=v)
                       for k, v in messages]
            producer.flush(timeout=120)
            for f in futures:
                f.get(timeout=60)
        finally:
            producer.close()

    def read_topic(self, topic: str, timeout: float = 60.0) -> list[Any]:
        """Every record of `topic` up to its high-water mark as the fetch reports it
        (Tansu's end_offsets is not reliable)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap_servers, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 fetch_max_bytes=8 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024)
        try:
            parts = wait_for(lambda: consumer.partitions_for_topic(topic), timeout=timeout, what=f"topic {topic}")
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            consumer.seek_to_beginning()
            records: list[Any] = []
            deadline = time.monotonic() + timeout

            def done() -> bool:
                for tp in tps:
                    hw = consumer.highwater(tp)
                    if hw is None or consumer.position(tp) < hw:
                        return False
                return True

            while True:
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
                if done():
                    return records
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(records)} records read from {topic}; high-water mark not reached")
        finally:
            consumer.close()

    # Elasticsearch
    def log_count(self, service: str, since: datetime | None = None) -> int:
        import requests

        query: dict[str, Any] = {"bool": {"filter": [{"term": {"service": service}}]}}
        if since is not None:
            query["bool"]["filter"].append({"range": {"timestamp": {"gte": since.isoformat(timespec="milliseconds")}}})
        assert self.stack.es is not None
        resp = requests.post(f"{self.stack.es.url}/{self.settings.es_log_index}/_count", json={"query": query},
                             timeout=10)
        if resp.status_code == 404:
            return 0
        resp.raise_for_status()
        return int(resp.json()["count"])

    # Rates
    def stored_rate(self, seconds: float) -> float:
        """Quotes stored per second over the next `seconds` (a measured window, not a wait)."""
        start_n, start_t = self.stored_count(), time.monotonic()
        deadline = start_t + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return (self.stored_count() - start_n) / (time.monotonic() - start_t)

    def settle_and_account(self, extra: set[tuple[str, datetime]] | None = None,
                           timeout: float = 120.0) -> tuple[int, set[tuple[str, datetime]]]:
        """Stop the producer cleanly and check "nothing lost": every quote it delivered
        (plus `extra`, quotes a test produced itself) is in MongoDB exactly once, and
        nothing else is. Returns (delivered count from its last line, the keys)."""
        producer = self.stack.processes["producer"]
        assert producer.stop() == 0, producer.output()[-3000:]
        outputs = [p.output() for p in [*self.stack.retired, producer] if p.name == "producer"]
        delivered, _failed, unsent = delivered_count(outputs[-1])
        assert unsent == 0, f"{unsent} quotes never sent"
        expected = delivered_keys(*outputs) | (extra or set())
        assert len(expected) >= delivered * 0.99 or delivered == 0, (len(expected), delivered)
        # Past the wait, the comparison below names each missing quote and where the topic has it.
        with suppress(TimeoutError):
            wait_for(lambda: self.stored_count() >= len(expected), timeout=timeout,
                     what=f"{len(expected)} quotes in MongoDB (have {self.stored_count()})")
        keys = self.stored_keys()
        assert len(keys) == len(set(keys)), "a quote is stored twice"
        missing = expected - set(keys)
        assert set(keys) == expected, (f"missing {len(missing)}: {self.where_in_topic(missing, outputs)}; "
                                       f"unexpected {len(set(keys) - expected)}: {sorted(set(keys) - expected)[:5]}")
        return delivered, expected

    def where_in_topic(self, missing: set[tuple[str, datetime]], producer_outputs: list[str]) -> str:
        """Tells a quote the consumer skipped from one the broker lost: for each missing key,
        the partition/offset the producer was acknowledged at and where (if anywhere) the
        topic holds it now."""
        import json

        acked = {(m.group(1), ms_utc(datetime.fromisoformat(m.group(2)))): m.group(3)
                 for out in producer_outputs for m in _SENT_AT.finditer(out)}
        in_topic: dict[tuple[str, datetime], str] = {}
        for record in self.read_topic(self.settings.kafka_topic):
            try:
                body = json.loads(record.value)
                key = (body["symbol"], ms_utc(datetime.fromisoformat(body["timestamp"])))
            except (ValueError, KeyError, TypeError):
                continue
            in_topic[key] = f"p{record.partition}@{record.offset}"
        return "; ".join(f"{s} {ts.isoformat()} acked at {acked.get((s, ts), '?')}, in topic at "
                         f"{in_topic.get((s, ts), 'NOWHERE (the broker lost it)')}"
                         for s, ts in sorted(missing)[:10])


STREAMING = ["producer", "consumer", "alerts"]
# Thresholds no simulated move reaches, so the only alerts are the ones a test injects.
QUIET_ALERTS = {"PRICE_CHANGE_THRESHOLD": "15", "VOLUME_THRESHOLD_MULTIPLIER": "1000"}
# Tests never ask the real Yahoo, and quotes move whatever the hour (every minute a session).
TEST_QUOTES = {"QUOTE_SOURCES": "alpha_vantage,simulated", "MARKET_CALENDAR": "24/7"}


@contextmanager
def pipeline(*, mysql: dict[str, Any], database: str, kafka: TansuBroker | None = None,
             mongo: SecantusMongo | None = None, es: OsmemSearch | None = None, smtp: SmtpServer | None = None,
             env: dict[str, str] | None = None, roles: list[str] | None = None,
             min_stored: int = 14, role_env: dict[str, dict[str, str]] | None = None,
             ) -> Iterator[tuple[LocalStack, StackProbe]]:
    """Producer, consumer and alerts (or `roles`) as processes on the given servers (others are
    started and stopped here), with their own topic, groups, Mongo database and log
    index; `role_env` adds variables for one role. Yields once quotes are flowing into MongoDB."""
    import uuid

    stack = LocalStack(mysql_host=mysql["host"], mysql_port=int(mysql["port"]), mysql_user=mysql["user"],
                       mysql_password=mysql["password"], mysql_database=database, kafka=kafka, mongo=mongo,
                       es=es, smtp=smtp, poll_interval=0.5, roles=roles or list(STREAMING),
                       tag=uuid.uuid4().hex[:10], flask_port=free_port(),
                       extra_env={"SIMULATION_SEED": "8", "LOG_LEVEL": "INFO", **QUIET_ALERTS, **TEST_QUOTES,
                                  **(env or {})},
                       role_env={**(role_env or {}),  # the producer logs one line per delivered quote
                                 "producer": {"LOG_LEVEL": "DEBUG", **(role_env or {}).get("producer", {})}})
    probe: StackProbe | None = None
    try:
        stack.start()
        probe = StackProbe(stack)
        if "consumer" in stack.roles:
            wait_for(lambda: probe.stored_count() >= min_stored, timeout=90, what="quotes flowing into MongoDB")
        yield stack, probe
    finally:
        if probe is not None:
            probe.close()
        stack.stop()
