"""Issue 8 faults on the full streaming pipeline: producer, consumer and alerts as the
containers run them, on real test servers, while one piece breaks.

"Nothing lost" is checked the same way everywhere (StackProbe.settle_and_account):
the producer is stopped with SIGTERM, every quote it saw acknowledged by Kafka (its
own DEBUG line per delivery, and its final "N delivered" line) must be in MongoDB
exactly once, and nothing else may be there. The unit-level versions of some of these
faults (consumer alone, alerts alone) are in tests/test_consumer.py and
tests/test_alerts_service.py; here all three processes run together.
"""

from __future__ import annotations

import json
import math
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from common.clock import utc_now
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import wait_for
from streaming.kafka_io import H_REASON, header
from streaming.schema import Acceptance, InvalidQuote, parse_message
from tests.support.pipeline import StackProbe, ms_utc, pipeline
from tests.support.servers import MotoS3

pytestmark = pytest.mark.slow

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]


def report(name: str, **figures: Any) -> None:
    """Measured figures, shown with `pytest -s` and kept in the test log."""
    print(f"\n[{name}] " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                     for k, v in figures.items()))


def all_running(probe: StackProbe) -> None:
    for role, proc in probe.stack.processes.items():
        assert proc.running, f"{role} died:\n{proc.output()[-3000:]}"


def hold(seconds: float, probe: StackProbe) -> None:
    """A measured outage: keep it for `seconds` while checking nobody crashed."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        all_running(probe)
        time.sleep(0.5)


# ---------------------------------------------------------------------- consumer SIGKILL
def test_consumer_killed_mid_stream_and_restarted_loses_nothing(kafka: TansuBroker, mongo: SecantusMongo,
                                                                es: OsmemSearch, smtp: SmtpServer,
                                                                mysql_server: dict, mysql_db: str) -> None:
    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp) as (stack, probe):
        before = probe.stored_count()
        stack.restart_role("consumer", kill=True)  # SIGKILL: no final commit, a batch may be half done
        killed_at = time.monotonic()
        wait_for(lambda: probe.stored_count() >= before + 28, timeout=90, what="the restarted consumer storing")
        recovered = time.monotonic() - killed_at
        all_running(probe)
        delivered, keys = probe.settle_and_account()
    report("consumer SIGKILL", delivered=delivered, stored=len(keys), seconds_to_resume=recovered)


# ---------------------------------------------------------------------- broker restart
def test_broker_stopped_and_restarted_everyone_reconnects(mongo: SecantusMongo, es: OsmemSearch, smtp: SmtpServer,
                                                          mysql_server: dict, mysql_db: str) -> None:
    # Tansu keeps topics, offsets and group state in S3 (a local moto server), so a
    # restarted broker has everything it had; the services must find it again alone.
    s3 = MotoS3().start()
    broker: TansuBroker | None = None
    try:
        s3.client().create_bucket(Bucket="tansu")
        broker = TansuBroker(storage="s3://tansu/", extra_env={
            "AWS_ENDPOINT": s3.url, "AWS_ACCESS_KEY_ID": s3.access_key, "AWS_SECRET_ACCESS_KEY": s3.secret_key,
            "AWS_DEFAULT_REGION": s3.region, "AWS_ALLOW_HTTP": "true"}).start()
        with pipeline(mysql=mysql_server, database=mysql_db, kafka=broker, mongo=mongo, es=es, smtp=smtp,
                      env={"ALERT_EMAIL_RECIPIENTS": "ops@example.test"}) as (stack, probe):
            spike_before = spike(probe, "AAPL")
            wait_for(lambda: len(probe.alert_rows()) == 1, timeout=60, what="the alert before the outage")
            broker.stop()
            down_at = time.monotonic()
            hold(10.0, probe)
            stored_during = probe.stored_count()
            broker.start()
            up_at = time.monotonic()
            # Recovered = quotes produced after the restart are stored again.
            wait_for(lambda: probe.stored_count() >= stored_during + 28, timeout=120,
                     what="quotes flowing again after the broker restart")
            recovered = time.monotonic() - up_at
            spike_after = spike(probe, "MSFT")
            wait_for(lambda: len(probe.alert_rows()) == 2, timeout=90, what="the alert after the outage")
            all_running(probe)
            delivered, keys = probe.settle_and_account(extra={spike_before, spike_after})
            # Each alert exactly once, although the alerts group re-read around the restart.
            assert sorted(r["symbol"] for r in probe.alert_rows()) == ["AAPL", "MSFT"]
            assert len(probe.alert_history()) == 2
            outage = up_at - down_at
            producer_log = stack.processes["producer"].output()
    finally:
        if broker is not None:
            broker.stop()
        s3.stop()
    assert "Kafka" in producer_log or "delivery" in producer_log
    report("broker restart", delivered=delivered, stored=len(keys), outage_s=outage, seconds_to_recover=recovered)


def spike(probe: StackProbe, symbol: str, change: float = 25.0, when: datetime | None = None) -> tuple[str, datetime]:
    """Inject one quote whose move is far above the threshold; returns its key."""
    ts = ms_utc(when or utc_now())
    body = {"symbol": symbol, "timestamp": ts.isoformat(), "price": 125.0, "volume": 1000, "open": 100.0,
            "high": 126.0, "low": 99.0, "previous_close": 100.0, "change_percent": change, "source": "simulated"}
    probe.produce([(symbol, json.dumps(body).encode())])
    return symbol, ts


# ---------------------------------------------------------------------- MongoDB outage
def test_mongodb_down_20s_while_quotes_keep_coming(kafka: TansuBroker, es: OsmemSearch, smtp: SmtpServer,
                                                   mysql_server: dict, mysql_db: str) -> None:
    store = tempfile.mkdtemp(prefix="secantus-")
    mongo = SecantusMongo(storage_path=f"{store}/db.sqlite").start()  # on disk: survives the restart
    try:
        with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es,
                      smtp=smtp) as (stack, probe):
            before = probe.stored_count()
            mongo.stop()
            hold(20.0, probe)  # the producer keeps sending all along
            mongo.start()
            up_at = time.monotonic()
            wait_for(lambda: probe.stored_count() >= before + 20 * 14, timeout=120,
                     what="the backlog of the outage stored")
            recovered = time.monotonic() - up_at
            assert "writing quotes to MongoDB failed" in stack.processes["consumer"].output()
            all_running(probe)
            delivered, keys = probe.settle_and_account()
    finally:
        mongo.stop()
        shutil.rmtree(store, ignore_errors=True)
    report("MongoDB 20 s outage", delivered=delivered, stored=len(keys), seconds_to_drain_backlog=recovered)


# ---------------------------------------------------------------------- Elasticsearch outage
def test_elasticsearch_down_every_service_keeps_its_speed(kafka: TansuBroker, mongo: SecantusMongo, smtp: SmtpServer,
                                                          mysql_server: dict, mysql_db: str) -> None:
    es = OsmemSearch().start()
    try:
        # 14 symbols every 0.5 s = 28 quotes/s through producer, consumer and alerts.
        symbols = SYMBOLS + ["IBM", "ORCL", "INTC", "AMD", "NFLX", "ADBE", "CRM"]
        with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp,
                      env={"STOCK_SYMBOLS": ",".join(symbols)}, min_stored=56) as (stack, probe):
            wait_for(lambda: all(probe.log_count(s) > 0 for s in ("producer", "consumer", "alerts")),
                     timeout=60, what="logs of the three services in Elasticsearch")
            rate_before = probe.stored_rate(12.0)
            es.stop()
            down_since = datetime.now(UTC)  # log records carry the real time of the record, never a pinned one
            rate_during = probe.stored_rate(12.0)
            all_running(probe)
            es.start()  # a fresh, empty index: what arrives now was queued during the outage
            # The records logged while Elasticsearch was away are shipped when it is back.
            wait_for(lambda: all(probe.log_count(s, since=down_since) > 0 for s in ("producer", "consumer")),
                     timeout=90, what="logs queued during the outage reaching Elasticsearch")
            delivered, keys = probe.settle_and_account()
    finally:
        es.stop()
    report("Elasticsearch outage", quotes_per_s_before=rate_before, quotes_per_s_during=rate_during,
           ratio=rate_during / rate_before, delivered=delivered)
    # The producer sets the pace (28/s); a service blocked on logging would fall far behind.
    assert rate_during >= 0.7 * rate_before, (rate_before, rate_during)


# ---------------------------------------------------------------------- hostile messages
def hostile_messages(n: int, rng: random.Random) -> list[tuple[str | None, bytes, str]]:
    """n bad messages, each unique, with the words its DLQ reason must contain."""
    now = utc_now()
    good = {"symbol": "AAPL", "timestamp": now.isoformat(), "price": 100.0, "volume": 10, "open": 100.0,
            "high": 101.0, "low": 99.0, "change_percent": 0.1, "source": "simulated"}

    def quote(i: int, **fields: Any) -> bytes:
        body = {**good, "timestamp": (now - timedelta(milliseconds=i)).isoformat(), **fields}
        return json.dumps(body, allow_nan=True).encode()

    kinds: list[Any] = [
        lambda i: (rng.randbytes(rng.randint(1, 300)) + b"\xff" + str(i).encode(), "not"),  # not UTF-8 / not JSON
        lambda i: (b"{\"symbol\": \"AAPL\", " + str(i).encode(), "not JSON"),
        lambda i: (json.dumps([i, "AAPL", 1.0]).encode(), "not a JSON object"),
        lambda i: (quote(i, price="lots"), "price is not a number"),
        lambda i: (quote(i, volume=True), "volume is not a number"),
        lambda i: (quote(i, price=math.nan), "not finite"),
        lambda i: (quote(i, high=math.inf), "not finite"),
        lambda i: (quote(i, price=-abs(rng.random() * 100) - 0.01), "must be positive"),
        lambda i: (quote(i, open=0), "must be positive"),
        lambda i: (quote(i, timestamp=(now + timedelta(days=rng.randint(1, 3650), seconds=i)).isoformat()),
                   "in the future"),
        lambda i: (quote(i, symbol=f"ZZ{i:04d}"), "unknown symbol"),
        lambda i: (quote(i, symbol="<script>alert(1)</script>"), "not a ticker"),
        lambda i: (quote(i, symbol={"$gt": ""}), "not a ticker"),
        lambda i: (quote(i, timestamp=f"yesterday {i}"), "does not parse"),
        lambda i: (quote(i, high=90.0, low=99.0), "below low"),
        lambda i: (quote(i, volume=-5), "volume must be"),
        lambda i: (quote(i, source="'; DROP TABLE alert_log; --"), "source must be"),
        lambda i: (json.dumps({"symbol": "AAPL", "note": i}).encode(), "missing field"),
        lambda i: (b"[" * 50_000 + str(i).encode() + b"]" * 50_000, "not JSON"),  # nesting bomb
    ]
    out: list[tuple[str | None, bytes, str]] = []
    for i in range(n - 5):
        value, reason = kinds[i % len(kinds)](i)
        out.append((rng.choice([*SYMBOLS, None, "ZZZ"]), value, reason))
    for i in range(5):  # huge: 900 KB, under Kafka's default 1 MB message limit; the bad value is the big part
        if i % 2:
            out.append(("AAPL", quote(10_000 + i, price="9" * 900_000), "price is not a number"))
        else:
            out.append(("AAPL", quote(10_000 + i, price=-1.0, padding="x" * 900_000), "must be positive"))
    rng.shuffle(out)
    return out


def test_hostile_acceptance_rules_are_pure() -> None:
    rules = Acceptance.of(SYMBOLS, 300)
    now = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)
    ok = {"symbol": "AAPL", "timestamp": now.isoformat(), "price": 1.0, "volume": 1, "open": 1.0, "high": 1.0,
          "low": 1.0, "change_percent": 0.0}
    assert parse_message(json.dumps(ok).encode(), rules, now)["symbol"] == "AAPL"
    soon = dict(ok, timestamp=(now + timedelta(seconds=299)).isoformat())
    assert parse_message(json.dumps(soon).encode(), rules, now)
    for bad, reason in [(dict(ok, symbol="ZZZZ"), "unknown symbol"),
                        (dict(ok, timestamp=(now + timedelta(seconds=301)).isoformat()), "in the future")]:
        with pytest.raises(InvalidQuote, match=reason):
            parse_message(json.dumps(bad).encode(), rules, now)
    assert parse_message(json.dumps(dict(ok, symbol="ZZZZ")).encode(), Acceptance(), now)  # no rules: any ticker


def test_1000_hostile_messages_mixed_into_good_traffic(kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch,
                                                        smtp: SmtpServer, mysql_server: dict, mysql_db: str) -> None:
    rng = random.Random(8)
    bad = hostile_messages(1000, rng)
    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp) as (stack, probe):
        # Our own good quotes interleaved with the bad ones, in the same partitions,
        # while the producer's traffic goes on.
        base = ms_utc(utc_now() - timedelta(hours=1))
        ours = []
        for i in range(100):
            sym = SYMBOLS[i % 7]
            ts = base + timedelta(seconds=i)
            body = {"symbol": sym, "timestamp": ts.isoformat(), "price": 50.0 + i, "volume": 100 + i,
                    "open": 50.0, "high": 200.0, "low": 40.0, "change_percent": 0.5, "source": "simulated"}
            ours.append(((sym, ts), (sym, json.dumps(body).encode())))
        mixed: list[tuple[str | None, bytes]] = [(k, v) for k, v, _ in bad]
        for n, (_key, msg) in enumerate(ours):
            mixed.insert(n * 11, msg)
        started = time.monotonic()
        probe.produce(mixed)
        dlq = wait_for(lambda: (lambda recs: recs if len(recs) >= len(bad) else None)(
            probe.read_topic(probe.settings.kafka_dlq_topic)), timeout=180, interval=2.0,
            what="1,000 messages in the DLQ")
        handled = time.monotonic() - started
        all_running(probe)
        delivered, keys = probe.settle_and_account(extra={key for key, _ in ours})
        # Nothing bad reached MongoDB, and no alert came from a hostile message.
        assert probe.db.realtime_prices.count_documents({"symbol": {"$nin": SYMBOLS}}) == 0
        assert probe.alert_rows() == []
    by_value: dict[bytes, list[str]] = {}
    for rec in dlq:
        by_value.setdefault(rec.value, []).append(header(rec, H_REASON) or "")
    assert len(dlq) == len(bad), "every bad message in the DLQ exactly once"
    for _key, value, expect in bad:
        reasons = by_value.get(value)
        assert reasons and len(reasons) == 1, f"not in the DLQ (once): {value[:80]!r}"
        assert expect in reasons[0], (expect, reasons[0], value[:120])
        assert len(reasons[0]) < 400, "a reason quotes the bad value, shortened"
    report("hostile messages", bad=len(bad), dlq=len(dlq), good_ours=len(ours), delivered=delivered,
           stored=len(keys), seconds_to_handle=handled)
