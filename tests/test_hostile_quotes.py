"""Issue 19: hostile quotes at the edges of every field. The schema refuses each with a
reason (pure), and on the real servers the consumer sends each to the DLQ while it and
the alerts service keep running, store the next good quote and survive a restart."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient

from database.mongo import ALERT_HISTORY, REALTIME_PRICES
from database.mongo.prices import insert_quotes_refusing
from database.setup_mongodb import ensure_indexes
from scripts.processes import ServiceProcess
from scripts.servers import SecantusMongo
from scripts.waiting import wait_for
from streaming.kafka_io import H_OFFSET, H_REASON, header
from streaming.schema import InvalidQuote, parse_message
from tests.conftest import Stack, mysql_root
from tests.test_streaming_schema import DESIGN_EXAMPLE
from tests.test_streaming_support import make_topics, produce, quote_bytes, read_topic

MB = 2**20
NOW = datetime(2026, 1, 13, 16, 0, tzinfo=UTC)


def _msg(**fields: Any) -> bytes:
    """The design example with `fields` replaced (a field given as ... is left out)."""
    body = {k: v for k, v in dict(DESIGN_EXAMPLE, **fields).items() if v is not ...}
    return json.dumps(body).encode()


def hostile(big: int = MB) -> list[tuple[str, bytes, str]]:
    """(case id, message bytes, part of the reason). `big` is the length of the huge strings:
    1 MB for the schema, less on Kafka (its default message limit is 1 MB)."""
    s = "x" * big
    return [
        # ---- timestamp
        ("ts-year-1", _msg(timestamp="0001-01-01T00:00:00"), "is before 2000-01-01"),
        ("ts-year-1-offset", _msg(timestamp="0001-01-01T00:00:00+01:00"), "does not parse as ISO 8601 in range"),
        ("ts-1900", _msg(timestamp="1900-01-01T00:00:00Z"), "is before 2000-01-01"),
        ("ts-1969", _msg(timestamp="1969-12-31T23:59:59+00:00"), "is before 2000-01-01"),
        ("ts-9999", _msg(timestamp="9999-12-31T23:59:59"), "in the future"),
        ("ts-9999-offset", _msg(timestamp="9999-12-31T23:59:59-01:00"), "does not parse as ISO 8601 in range"),
        ("ts-next-year", _msg(timestamp=(NOW + timedelta(days=365)).isoformat()), "in the future"),
        ("ts-2**63", _msg(timestamp=2**63), "timestamp is not a string"),
        ("ts--2**63", _msg(timestamp=-(2**63)), "timestamp is not a string"),
        ("ts-2**63-string", _msg(timestamp=str(2**63)), "does not parse"),
        ("ts-NaN", _msg(timestamp=float("nan")), "timestamp is not a string"),
        ("ts-inf", _msg(timestamp=float("inf")), "timestamp is not a string"),
        ("ts-1MB", _msg(timestamp="2026-01-13T15:30:00" + s), "longer than 64 characters"),
        ("ts-object", _msg(timestamp={"$date": "2026-01-13T15:30:00Z"}), "timestamp is not a string"),
        ("ts-empty", _msg(timestamp=""), "does not parse"),
        # ---- volume
        ("vol-2**63-1", _msg(volume=2**63 - 1), "beyond the plausible"),
        ("vol-2**63", _msg(volume=2**63), "beyond the plausible"),
        ("vol-2**64", _msg(volume=2**64), "beyond the plausible"),
        ("vol-10**400", _msg(volume=10**400), "beyond the plausible"),
        ("vol-5000-digits", _msg(volume=0).replace(b'"volume": 0', b'"volume": ' + b"9" * 5000), "not JSON we accept"),
        ("vol-1e300", _msg(volume=1e300), "beyond the plausible"),
        ("vol-negative", _msg(volume=-1), "volume must be a whole number >= 0"),
        ("vol--2**63", _msg(volume=-(2**63)), "volume must be a whole number >= 0"),
        ("vol-fraction", _msg(volume=1.5), "volume must be a whole number >= 0"),
        ("vol-NaN", _msg(volume=float("nan")), "volume must be a whole number >= 0"),
        ("vol-inf", _msg(volume=float("inf")), "volume must be a whole number >= 0"),
        ("vol-string", _msg(volume="287051"), "volume is not a number"),
        ("vol-float-string", _msg(volume="2.87e5"), "volume is not a number"),
        ("vol-bool", _msg(volume=True), "volume is not a number"),
        ("vol-list", _msg(volume=[287051]), "volume is not a number"),
        ("vol-object", _msg(volume={"$numberLong": "287051"}), "volume is not a number"),
        # ---- prices
        ("price-NaN", _msg(price=float("nan")), "price is not finite"),
        ("price-inf", _msg(price=float("inf")), "price is not finite"),
        ("price--inf", _msg(price=float("-inf")), "price is not finite"),
        ("price-zero", _msg(price=0), "price must be positive"),
        ("price-negative", _msg(price=-261.05), "price must be positive"),
        ("price-1e-300", _msg(price=1e-300), "outside the plausible"),
        ("price-1e300", _msg(price=1e300, high=1e300), "outside the plausible"),
        ("price-2**64", _msg(price=2**64), "outside the plausible"),
        ("price-10**400", _msg(price=10**400), "price is out of range"),
        ("price-string", _msg(price="261.05"), "price is not a number"),
        ("price-1MB-string", _msg(price="9" * big), "price is not a number"),
        ("price-bool", _msg(price=True), "price is not a number"),
        ("price-object", _msg(price={"$numberDecimal": "261.05"}), "price is not a number"),
        ("price-above-high", _msg(price=300.0), "price is outside the day's range [260.19, 261.35]: 300.0"),
        ("price-below-low", _msg(price=200.0), "outside the day's range"),
        ("open-outside-range", _msg(open=250.0), "open is outside the day's range"),
        ("high-absurd", _msg(high=1e12), "high is outside the plausible 0.0001..10000000: 1000000000000.0"),
        ("high-below-low", _msg(high=250.0), "is below low"),
        ("prev-close-absurd", _msg(previous_close=1e12), "previous_close is outside the plausible"),
        ("prev-close-negative", _msg(previous_close=-1), "previous_close must be positive"),
        ("change-1e300", _msg(change_percent=1e300), "change_percent is beyond the plausible +-100000: 1e+300"),
        ("change-NaN", _msg(change_percent=float("nan")), "change_percent is not finite"),
        ("change-string", _msg(change_percent="0.32"), "change_percent is not a number"),
        # ---- strings and booleans
        ("symbol-1MB", _msg(symbol="A" * big), "symbol is not a ticker"),
        ("symbol-11-chars", _msg(symbol="ABCDEFGHIJK"), "symbol is not a ticker"),
        ("symbol-empty", _msg(symbol=""), "symbol is not a ticker"),
        ("symbol-fullwidth", _msg(symbol="ＡＡＰＬ"), "symbol is not a ticker"),
        ("symbol-nul", _msg(symbol="AAPL\u0000"), "symbol is not a ticker"),
        ("symbol-number", _msg(symbol=2**64), "symbol is not a ticker"),
        ("symbol-object", _msg(symbol={"$gt": ""}), "symbol is not a ticker"),
        ("source-1MB", _msg(source=s), "source must be one of"),
        ("source-case", _msg(source="YAHOO"), "source must be one of"),
        ("source-list", _msg(source=["yahoo"]), "source must be one of"),
        ("source-number", _msg(source=1), "source must be one of"),
        ("market-open-string", _msg(market_open="true"), "market_open must be true or false"),
        ("market-open-1", _msg(market_open=1), "market_open must be true or false"),
        ("market-open-0", _msg(market_open=0), "market_open must be true or false"),
        # ---- the message as a whole
        ("nested-quote", json.dumps({"quote": DESIGN_EXAMPLE}).encode(), "missing field(s)"),
        ("list", json.dumps([DESIGN_EXAMPLE]).encode(), "not a JSON object but list"),
        ("number", b"1e999", "not a JSON object but float"),
        ("string", b'"AAPL"', "not a JSON object but str"),
        ("empty", b"", "not JSON"),
        ("nesting-bomb", b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ]


CASES = hostile()


@pytest.mark.parametrize(("raw", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_hostile_message_is_rejected_with_its_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(InvalidQuote) as err:
        parse_message(raw, now=NOW)
    assert reason in str(err.value)
    assert len(str(err.value)) < 400  # a 1 MB value is not copied into the reason


def test_edges_that_are_plausible_are_accepted() -> None:
    edges = [dict(timestamp="2000-01-01T00:00:00Z"), dict(timestamp=(NOW + timedelta(hours=23)).isoformat()),
             dict(volume=0), dict(volume=10**11), dict(volume=1000.0), dict(price=261.35), dict(price=260.19),
             dict(price=0.0001, open=0.0001, low=0.0001, high=0.0002), dict(previous_close=10_000_000),
             dict(change_percent=-100.0), dict(symbol="BRK.B"), dict(market_open=False)]
    for fields in edges:
        assert parse_message(_msg(**fields), now=NOW)["symbol"], fields


# ---------------------------------------------------------------------- MongoDB, one document refused
def test_mongodb_refusing_one_document_stores_the_others(mongo: SecantusMongo) -> None:
    # The schema keeps such documents out; this is the net behind it (insert_quotes_refusing).
    db = MongoClient(mongo.uri, tz_aware=True)[f"hostile_{time.time_ns()}"]
    try:
        ensure_indexes(db)  # the unique (symbol, timestamp) index: a repeat is "already present"
        good = [parse_message(quote_bytes("AAPL", i)) for i in range(3)]
        bad = dict(good[1], volume=2**64)  # BSON has no integer this big
        inserted, present, refused = insert_quotes_refusing(db, [good[0], bad, good[2]])
        assert (inserted, present) == (2, 0) and list(refused) == [1]
        assert "OverflowError" in refused[1] and "8-byte" in refused[1]
        too_large = dict(good[1], padding="x" * 17 * MB)  # beyond MongoDB's 16 MB document
        inserted, present, refused = insert_quotes_refusing(db, [good[0], too_large])
        assert (inserted, present) == (0, 1) and "too large" in refused[1]
        assert db[REALTIME_PRICES].count_documents({}) == 2
    finally:
        db.client.drop_database(db.name)
        db.client.close()


# ---------------------------------------------------------------------- consumer + alerts on the servers
def test_hostile_messages_go_to_the_dlq_and_both_services_go_on_across_a_restart(stack: Stack) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    cases = hostile(900 * 1024)  # under Kafka's 1 MB message limit
    env = stack.with_env(VOLUME_WINDOW="3", ALERT_COOLDOWN_SECONDS="0")
    # One partition (all keyed AAPL): three normal quotes give the volume window its baseline, then every
    # hostile message (the absurd volumes must not read as a spike), then a good quote with a price alert.
    normal = [("AAPL", quote_bytes("AAPL", i)) for i in range(3)]
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            normal + [("AAPL", raw) for _, raw, _ in cases] + [("AAPL", quote_bytes("AAPL", 120, change_percent=6.2))])
    coll = MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db][REALTIME_PRICES]
    alerts_coll = MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db][ALERT_HISTORY]

    started = time.monotonic()
    consumer = ServiceProcess("streaming/consumer.py", env).start()
    alerts = ServiceProcess("streaming/alerts.py", env).start()
    try:
        dead = read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic, expect=len(cases), timeout=120)
        dlq_seconds = time.monotonic() - started
        wait_for(lambda: coll.count_documents({}) == 4, timeout=60, what="the 4 good quotes stored")
        wait_for(lambda: alerts_coll.count_documents({"rule": "price_change"}) == 1, timeout=60,
                 what="the good quote's price alert")
        assert consumer.running and alerts.running
    finally:
        assert consumer.stop() == 0, consumer.output()[-5000:]
        assert alerts.stop() == 0, alerts.output()[-5000:]
    assert len(dead) == len(cases)  # the alerts service sent none: schema rejects are the consumer's
    offsets = [int(header(d, H_OFFSET) or -1) for d in dead]
    assert offsets == list(range(3, 3 + len(cases)))
    for (name, raw, reason), record in zip(cases, dead, strict=True):
        assert reason in (header(record, H_REASON) or ""), (name, header(record, H_REASON))
        assert record.value == raw[:900 * 1024], name
    assert alerts_coll.count_documents({"rule": "volume_spike"}) == 0
    assert coll.count_documents({"volume": {"$gt": 10**11}}) == 0
    stamps = [datetime.fromisoformat(line.split(" ", 1)[0]) for line in consumer.output().splitlines()
              if " rejected " in line]
    assert len(stamps) == len(cases)
    print(f"\n[hostile] {len(cases)} hostile messages in the DLQ {dlq_seconds:.1f}s after both services started; "
          f"first to last rejection {(stamps[-1] - stamps[0]).total_seconds() * 1000:.0f} ms")

    # A restart reads on from the committed offsets: nothing rejected again, the next quote stored.
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic, [("AAPL", quote_bytes("AAPL", 1245,
                                                                                          change_percent=11.0))])
    consumer = ServiceProcess("streaming/consumer.py", env, name="consumer-again").start()
    alerts = ServiceProcess("streaming/alerts.py", env, name="alerts-again").start()
    try:
        wait_for(lambda: coll.count_documents({}) == 5, timeout=60, what="the quote after the restart stored")
        wait_for(lambda: alerts_coll.count_documents({"rule": "price_change"}) == 2, timeout=60,
                 what="its price alert")
        assert consumer.running and alerts.running
    finally:
        assert consumer.stop() == 0, consumer.output()[-5000:]
        assert alerts.stop() == 0, alerts.output()[-5000:]
    assert "rejected" not in consumer.output() and "could not handle" not in alerts.output()
    assert len(read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic, expect=len(cases))) == len(cases)


def test_an_alert_mysql_refuses_goes_to_the_dlq_and_the_alerts_go_on(stack: Stack) -> None:
    # The schema's bounds keep values MySQL cannot hold out of alert_log (and its INSERT IGNORE would clamp
    # them); to meet the net behind them (anything one quote raises), a trigger refuses volume spikes as
    # MySQL refuses an out-of-range value (error 1264, pymysql's DataError: no retry helps).
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic, settings.kafka_dlq_topic)
    conn = mysql_root(stack.env["MYSQL_DATABASE"])
    try:
        with conn.cursor() as cur:
            cur.execute("CREATE TRIGGER refuse_spikes BEFORE INSERT ON alert_log FOR EACH ROW "
                        "IF NEW.rule = 'volume_spike' THEN SIGNAL SQLSTATE '22003' "
                        "SET MESSAGE_TEXT = 'Out of range value for column value', MYSQL_ERRNO = 1264; END IF")
    finally:
        conn.close()
    env = stack.with_env(VOLUME_WINDOW="3", ALERT_COOLDOWN_SECONDS="0")
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic, [
        *[("AAPL", quote_bytes("AAPL", i * 15)) for i in range(3)],
        ("AAPL", quote_bytes("AAPL", 45, volume=30000)),  # a spike: refused by the trigger
        ("AAPL", quote_bytes("AAPL", 60, change_percent=6.2)),  # a price alert that fits
    ])
    alerts = ServiceProcess("streaming/alerts.py", env).start()
    try:
        dead = read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic, expect=1, timeout=60)
        wait_for(lambda: [r["rule"] for r in alert_log(stack)] == ["price_change"], timeout=60,
                 what="the price alert after the refused one stored in MySQL")
        assert alerts.running
    finally:
        assert alerts.stop() == 0, alerts.output()[-5000:]
    assert len(dead) == 1 and header(dead[0], H_OFFSET) == "3"
    reason = header(dead[0], H_REASON) or ""
    assert reason.startswith("alerts: unexpected DataError") and "Out of range" in reason, reason
    assert "alerts could not handle" in alerts.output()

    again = ServiceProcess("streaming/alerts.py", env, name="alerts-again").start()
    try:
        produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
                [("AAPL", quote_bytes("AAPL", 1245, change_percent=11.0))])
        wait_for(lambda: len(alert_log(stack)) == 2, timeout=60, what="the next alert after a restart")
        assert again.running
    finally:
        assert again.stop() == 0, again.output()[-5000:]
    assert "could not handle" not in again.output()  # not re-read: the offset moved past it
    assert len(read_topic(settings.kafka_bootstrap_servers, settings.kafka_dlq_topic, expect=1)) == 1


def alert_log(stack: Stack) -> list[dict[str, Any]]:
    conn = mysql_root(stack.env["MYSQL_DATABASE"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT alert_key, rule, value FROM alert_log ORDER BY id")
            return list(cur.fetchall())
    finally:
        conn.close()
