"""streaming/producer.py run as its container runs it: fields, keys, sources, budget, faults."""

from __future__ import annotations

import json
import re
from datetime import datetime

from kafka import KafkaConsumer

from common.clock import utc_now
from database.mongo import get_db, make_client
from database.mongo.prices import insert_quotes
from scripts.processes import ServiceProcess
from scripts.servers import TansuBroker
from scripts.waiting import free_port, wait_for
from tests.conftest import Stack
from tests.support.http_fixture import RecordedApi, Request, Response
from tests.support.yahoo_api import (
    COOKIE,
    CRUMB_PATH,
    QUOTE,
    asked_symbols,
    moved_to,
    recorded_entries,
    serve_yahoo,
    yahoo_env,
)
from tests.test_streaming_support import read_topic
from tests.test_yahoo_finance import check_chrome

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
FIELDS = {"symbol", "timestamp", "price", "volume", "open", "high", "low", "change_percent", "previous_close", "source",
          "market_open"}
# Every minute a session, so the producer's quotes move whatever the hour the tests run.
ALWAYS_OPEN = {"MARKET_CALENDAR": "24/7"}


def check_message(record) -> dict:  # type: ignore[no-untyped-def]
    body = json.loads(record.value)
    assert set(body) == FIELDS
    assert record.key == body["symbol"].encode()
    ts = datetime.fromisoformat(body["timestamp"])
    assert body["timestamp"].endswith("+00:00") and ts.utcoffset().total_seconds() == 0
    assert body["low"] <= body["price"] <= body["high"] or body["source"] == "alpha_vantage"
    assert body["price"] > 0 and body["volume"] >= 0
    return body


def run_producer(stack: Stack, env: dict[str, str], ticks: int) -> tuple[str, list]:
    """The producer until it has logged `ticks` ticks, stopped with SIGTERM: its output and
    the records it delivered to the topic."""
    producer = ServiceProcess("streaming/producer.py", env).start()
    try:
        wait_for(lambda: producer.output().count("tick:") >= ticks, timeout=60, what=f"{ticks} ticks")
    finally:
        code = producer.stop()
    out = producer.output()
    assert code == 0, out
    delivered = int(re.search(r"producer stopped: (\d+) delivered", out).group(1))  # type: ignore[union-attr]
    settings = stack.settings()
    return out, read_topic(settings.kafka_bootstrap_servers, settings.kafka_topic, expect=delivered)


def test_simulation_only_keys_fields_topic_and_clean_shutdown(stack: Stack) -> None:
    settings = stack.settings()
    env = stack.with_env(SIMULATION_SEED="42", POLL_INTERVAL_SECONDS="0.3", **ALWAYS_OPEN)
    producer = ServiceProcess("streaming/producer.py", env).start()
    try:
        wait_for(lambda: producer.output().count("tick:") >= 4, timeout=60, what="four ticks")
    finally:
        code = producer.stop()
    out = producer.output()
    assert code == 0, out
    assert out.count("ALPHA_VANTAGE_API_KEY is not set") == 1
    delivered = int(re.search(r"producer stopped: (\d+) delivered, 0 not delivered \(0 still unsent\)", out).group(1))
    records = read_topic(settings.kafka_bootstrap_servers, settings.kafka_topic, expect=delivered)
    assert len(records) == delivered >= 28  # everything produced before SIGTERM is in Kafka
    bodies = [check_message(r) for r in records]
    assert {b["source"] for b in bodies} == {"simulated"}
    assert {b["symbol"] for b in bodies} == set(SYMBOLS)
    # Keyed by symbol: each symbol lives in exactly one partition.
    partitions: dict[str, set[int]] = {}
    for r in records:
        partitions.setdefault(r.key.decode(), set()).add(r.partition)
    assert all(len(p) == 1 for p in partitions.values())
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka_bootstrap_servers)
    try:
        assert consumer.partitions_for_topic(settings.kafka_topic) == {0, 1, 2}
    finally:
        consumer.close()


def alpha_vantage(req: Request) -> Response:
    """A real quote for AAPL; every other symbol meets one of the ways the API says no."""
    answers = {
        "AAPL": Response.fixture("alpha_vantage_global_quote_AAPL.json"),
        "GOOGL": Response.fixture("alpha_vantage_note.json"),
        "MSFT": Response.fixture("alpha_vantage_information.json"),
        "AMZN": Response.fixture("alpha_vantage_error_message.json"),
        "TSLA": Response.fixture("alpha_vantage_empty_quote.json"),
        "META": Response(503, b"<html>Service Unavailable</html>", "text/html"),
        "NVDA": Response.fixture("alpha_vantage_global_quote_AAPL.json", delay=1.5),
    }
    return answers[req.query["symbol"]]


def test_real_quotes_refusals_and_the_call_budget(stack: Stack, recorded_api: RecordedApi) -> None:
    recorded_api.route("/query", alpha_vantage)
    env = stack.with_env(
        ALPHA_VANTAGE_API_KEY="test-key", ALPHA_VANTAGE_URL=recorded_api.url + "/query", HTTP_TIMEOUT_SECONDS="0.5",
        ALPHA_VANTAGE_CALLS_PER_MINUTE="7", ALPHA_VANTAGE_CALLS_PER_DAY="7", POLL_INTERVAL_SECONDS="0.3",
        ALPHA_VANTAGE_SPREAD_DAILY_BUDGET="false",  # spend at full speed: the budget is what is tested
        SIMULATION_SEED="1", **ALWAYS_OPEN,
    )
    out, records = run_producer(stack, env, 12)
    calls = recorded_api.calls("/query")
    # The day's budget is 7: exactly 7 calls, one per symbol in turn, then simulation only.
    assert [c.query["symbol"] for c in calls] == SYMBOLS
    assert all(c.query["function"] == "GLOBAL_QUOTE" and c.query["apikey"] == "test-key" for c in calls)
    for kind in ("rate_limit_note", "rate_limit_information", "error_message", "empty_quote", "http_error", "timeout"):
        assert f"({kind})" in out, kind
    assert out.count("call budget spent") == 1
    bodies = [check_message(r) for r in records]
    real = [b for b in bodies if b["source"] == "alpha_vantage"]
    assert len(real) == 1 and real[0]["symbol"] == "AAPL" and real[0]["price"] == 261.05
    assert real[0]["previous_close"] == 260.21 and real[0]["change_percent"] == 0.3228
    assert len(bodies) - 1 == sum(b["source"] == "simulated" for b in bodies)
    # After the real quote, AAPL's simulation continues from 261.05.
    after = [b for b in bodies if b["symbol"] == "AAPL" and b["timestamp"] > real[0]["timestamp"]]
    assert after and abs(after[0]["price"] / 261.05 - 1) < 0.1


def test_broker_down_at_start_then_up(stack: Stack) -> None:
    port = free_port()
    env = stack.with_env(KAFKA_BOOTSTRAP_SERVERS=f"127.0.0.1:{port}", POLL_INTERVAL_SECONDS="0.3", **ALWAYS_OPEN)
    producer = ServiceProcess("streaming/producer.py", env).start()
    broker = TansuBroker(port=port)
    try:
        wait_for(lambda: "retrying in" in producer.output(), timeout=60, what="the producer retrying")
        assert producer.running
        broker.start()
        wait_for(lambda: producer.output().count("tick:") >= 2, timeout=90, what="ticks once the broker is up")
    finally:
        code = producer.stop()
        out = producer.output()
        if broker.proc is not None:
            records = read_topic(broker.bootstrap, stack.env["KAFKA_TOPIC"], expect=14)
            broker.stop()
    assert code == 0, out
    assert len(records) >= 14


def test_yahoo_quotes_from_recorded_answers(stack: Stack, recorded_api: RecordedApi) -> None:
    """The producer as in its container with QUOTE_SOURCES=yahoo,simulated: a live Yahoo
    answer, a market-closed one and a symbol Yahoo does not know, all in one batch request."""
    entries = {**moved_to(recorded_entries("yahoo_quote_open.json"), utc_now()),
               **recorded_entries("yahoo_quote_closed.json")}
    serve_yahoo(recorded_api, {s: entries[s] for s in ("AAPL", "MSFT")})
    env = stack.with_env(QUOTE_SOURCES="yahoo,alpha_vantage,simulated", **yahoo_env(recorded_api),
                         STOCK_SYMBOLS="AAPL,MSFT,ZZZZ", POLL_INTERVAL_SECONDS="0.3", YAHOO_REFRESH_SECONDS="5",
                         SIMULATION_SEED="3", **ALWAYS_OPEN)
    out, records = run_producer(stack, env, 4)
    assert "QUOTE_SOURCES: alpha_vantage skipped: ALPHA_VANTAGE_API_KEY is not set" in out
    assert "quotes from yahoo → simulated" in out
    assert out.count("Yahoo refused ZZZZ (unknown_symbol): Not Found") == 1
    bodies = [check_message(r) for r in records]
    by_symbol: dict[str, list[dict]] = {}
    for b in bodies:
        by_symbol.setdefault(b["symbol"], []).append(b)
    aapl, msft, zzzz = by_symbol["AAPL"], by_symbol["MSFT"], by_symbol["ZZZZ"]
    assert aapl[0]["source"] == "yahoo" and aapl[0]["market_open"] is True and aapl[0]["price"] == 259.7447
    assert len(aapl) == 1  # the next Yahoo request for AAPL waits YAHOO_REFRESH_SECONDS
    assert msft == [msft[0]] and msft[0]["source"] == "yahoo" and msft[0]["market_open"] is False
    assert msft[0]["volume"] == 0 and msft[0]["price"] == 481.2023
    assert len(zzzz) >= 4 and {b["source"] for b in zzzz} == {"simulated"}
    # One handshake and one request for the three; ZZZZ is not asked again. All of it as Chrome.
    assert asked_symbols(recorded_api) == [["AAPL", "MSFT", "ZZZZ"]]
    assert [c.path for c in recorded_api.calls()] == [COOKIE, CRUMB_PATH, QUOTE]
    check_chrome(recorded_api.calls())
    # The company names come from Yahoo's answer into the symbol registry (none for ZZZZ: named by itself).
    settings = stack.settings()
    client = make_client(settings)
    try:
        names = {d["_id"]: d["name"] for d in get_db(client, settings).symbols.find({}, {"name": 1})}
    finally:
        client.close()
    assert names == {"AAPL": "Apple Inc.", "MSFT": "Microsoft Corporation", "ZZZZ": "ZZZZ"}


def test_restart_continues_from_the_last_stored_quote(stack: Stack) -> None:
    """No jump back to the seed price after a restart: the simulation starts at the newest stored quote."""
    settings = stack.settings()
    last = {"symbol": "AAPL", "timestamp": utc_now(), "price": 123.45, "volume": 900, "open": 121.0,
            "high": 124.0, "low": 120.5, "previous_close": 120.0, "change_percent": 2.875, "source": "simulated",
            "market_open": True}
    insert_quotes(get_db(make_client(settings), settings), [last])
    out, records = run_producer(stack, stack.with_env(STOCK_SYMBOLS="AAPL", POLL_INTERVAL_SECONDS="0.3",
                                                      SIMULATION_SEED="5", **ALWAYS_OPEN), 3)
    assert "simulation continues from the last stored quote of AAPL" in out
    first = check_message(records[0])
    assert abs(first["price"] / 123.45 - 1) < 0.01 and first["open"] == 121.0 and first["previous_close"] == 120.0
