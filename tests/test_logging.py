"""logs/logger_config.py against a real Elasticsearch-compatible server (osmem)."""

from __future__ import annotations

import io
import logging
import time
import uuid
from collections.abc import Iterator

import pytest

from config.settings import Settings
from logs.logger_config import ElasticsearchHandler, make_es_client, record_to_doc
from scripts.es_compat import NODE_CLASS_PATH
from scripts.processes import run_script
from scripts.servers import OsmemSearch
from scripts.waiting import wait_for


def _client(url: str):  # type: ignore[no-untyped-def]
    return make_es_client(Settings(_env_file=None, elasticsearch_url=url, elasticsearch_node_class=NODE_CLASS_PATH))  # type: ignore[call-arg]


def _count(url: str, index: str, **term: str) -> int:
    client = _client(url)
    try:
        if not client.indices.exists(index=index):
            return 0
        client.indices.refresh(index=index)
        query = {"term": term} if term else {"match_all": {}}
        return int(client.count(index=index, query=query)["count"])
    finally:
        client.close()


def _logger(handler: logging.Handler, stream: io.StringIO | None = None) -> logging.Logger:
    logger = logging.getLogger(f"test.{uuid.uuid4().hex[:8]}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    if stream is not None:
        logger.addHandler(logging.StreamHandler(stream))
    return logger


@pytest.fixture
def private_es() -> Iterator[OsmemSearch]:
    """An Elasticsearch stand-in of this test's own, so stopping it harms no other test."""
    server = OsmemSearch().start()
    yield server
    if server.proc is not None:
        server.stop()


def test_record_to_doc_has_every_field() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        record = logging.getLogger("kafka_producer").makeRecord(
            "kafka_producer", logging.ERROR, "producer.py", 45, "sent %s", ("AAPL",), __import__("sys").exc_info(),
            func="send_message", extra={"symbol": "AAPL"},
        )
    doc = record_to_doc(record, "producer", "host-1")
    assert doc["level"] == "ERROR" and doc["logger"] == "kafka_producer" and doc["message"] == "sent AAPL"
    assert doc["function"] == "send_message" and doc["line"] == 45 and doc["module"] == "producer"
    assert doc["service"] == "producer" and doc["host"] == "host-1"
    assert doc["timestamp"].endswith("+00:00")
    assert "ValueError: boom" in doc["exception"]
    assert doc["context"] == {"symbol": "AAPL"}


def test_component_log_reaches_the_index_with_every_field(es: OsmemSearch) -> None:
    """A real entry point (database/setup_mongodb.py is the smallest) logs into stock-system-logs."""
    index = f"stock-system-logs-{uuid.uuid4().hex[:8]}"
    proc = run_script("database/setup_mongodb.py", {
        "ELASTICSEARCH_URL": es.url, "ELASTICSEARCH_NODE_CLASS": NODE_CLASS_PATH, "ES_LOG_INDEX": index,
        # No MongoDB here: the failure itself is what gets logged (with its exception).
        "MONGO_URI": "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=300",
    }, timeout=120)
    assert proc.returncode != 0
    client = _client(es.url)
    wait_for(lambda: _count(es.url, index) >= 1, timeout=30, what="log documents")
    hits = client.search(index=index, size=10)["hits"]["hits"]
    docs = [h["_source"] for h in hits]
    doc = next(d for d in docs if d["level"] == "CRITICAL")
    for key in ("timestamp", "level", "logger", "message", "module", "function", "line", "service", "host",
                "exception"):
        assert key in doc, key
    assert doc["service"] == "setup_mongodb"
    mapping = client.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert mapping["timestamp"]["type"] == "date"
    assert mapping["level"]["type"] == "keyword" and mapping["service"]["type"] == "keyword"
    assert mapping["message"]["type"] == "text"
    client.close()


def _burst(logger: logging.Logger, n: int) -> float:
    start = time.perf_counter()
    for i in range(n):
        logger.info("burst record %d", i)
    return time.perf_counter() - start


def test_outage_neither_raises_nor_blocks_and_records_arrive_later(private_es: OsmemSearch) -> None:
    index = f"logs-outage-{uuid.uuid4().hex[:8]}"
    up_handler = ElasticsearchHandler(_client(private_es.url), index + "-up", "test", max_queue=50_000)
    up_stream = io.StringIO()
    time_up = _burst(_logger(up_handler, up_stream), 10_000)
    assert up_handler.flush(timeout=120)

    private_es.stop()
    handler = ElasticsearchHandler(_client(private_es.url), index, "test", max_queue=50_000, max_backoff=1.0)
    stream = io.StringIO()
    logger = _logger(handler, stream)
    time_down = _burst(logger, 10_000)
    assert time_down < time_up + 1.0, (time_down, time_up)
    assert stream.getvalue().count("burst record") == 10_000  # stdout keeps every line
    assert handler.pending == 10_000

    private_es.start()
    wait_for(lambda: _count(private_es.url, index) == 10_000, timeout=120, interval=0.5,
             what="queued records after ES returned")
    handler.close()
    up_handler.close()


def test_full_queue_drops_oldest_and_reports_the_count(private_es: OsmemSearch) -> None:
    index = f"logs-drop-{uuid.uuid4().hex[:8]}"
    private_es.stop()
    handler = ElasticsearchHandler(_client(private_es.url), index, "test", max_queue=50, max_backoff=0.5)
    logger = _logger(handler)
    # The drop report is logged through the root logger; route it to this handler too.
    drop_logger = logging.getLogger("logs.logger_config")
    drop_logger.addHandler(handler)
    try:
        for i in range(200):
            logger.info("record %d", i)
        private_es.start()
        wait_for(lambda: _count(private_es.url, index, level="WARNING") >= 1, timeout=60, what="drop report")
        client = _client(private_es.url)
        client.indices.refresh(index=index)
        msgs = [h["_source"]["message"] for h in client.search(index=index, size=500)["hits"]["hits"]]
        client.close()
        kept = sorted(int(m.split()[1]) for m in msgs if m.startswith("record "))
        assert kept and kept[-1] == 199 and 0 not in kept  # the oldest went, the newest stayed
        report = next(m for m in msgs if "dropped" in m)
        assert int(report.split("dropped ")[1].split()[0]) == 200 - 50 + (50 - len(kept))
    finally:
        drop_logger.removeHandler(handler)
        handler.close()
