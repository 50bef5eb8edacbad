"""The live stream end to end: a local streamer (yfinance's own PricingData) → the producer as its
container runs it → Kafka (Tansu) → the consumer → MongoDB, with the streamer dropped mid-session
and polling (recorded Yahoo answers) filling in until it is back."""

from __future__ import annotations

import json
import threading
from collections import Counter
from datetime import UTC, datetime, timedelta

from common.clock import utc_now
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import wait_for
from scripts.yahoo_streamer import LocalStreamer
from tests.support.http_fixture import RecordedApi
from tests.support.pipeline import StackProbe, pipeline
from tests.support.yahoo_api import moved_to, recorded_entries, serve_yahoo, yahoo_env

PRINTS_PER_SECOND = 50  # one busy symbol
MIN_INTERVAL = 1.0  # STREAM_MIN_INTERVAL_SECONDS
REFRESH = 5.0  # YAHOO_REFRESH_SECONDS, the smallest allowed: polling's step for a symbol Yahoo answers


class Feeder:
    """Prints for one symbol at a steady rate, each with its own (current) time, until stopped."""

    def __init__(self, streamer: LocalStreamer, symbol: str, rate: float) -> None:
        self.streamer, self.symbol, self.rate = streamer, symbol, rate
        self.stop = threading.Event()
        self.day_volume = 1_000_000
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        price = 200.0
        while not self.stop.wait(1 / self.rate):
            self.day_volume += 100
            price = round(price + 0.01, 2)
            self.streamer.push(self.symbol, price, utc_now(), day_volume=self.day_volume)

    def __enter__(self) -> Feeder:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=5)


def docs(probe: StackProbe, symbol: str) -> list[dict]:
    return list(probe.db.realtime_prices.find({"symbol": symbol}).sort("timestamp", 1))


def count(probe: StackProbe, symbol: str, source: str, after: datetime) -> int:
    return int(probe.db.realtime_prices.count_documents({"symbol": symbol, "source": source,
                                                        "timestamp": {"$gt": after}}))


def test_stream_to_mongodb_with_a_drop_that_polling_fills(kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch,
                                                          smtp: SmtpServer, mysql_server: dict, mysql_db: str,
                                                          recorded_api: RecordedApi) -> None:
    serve_yahoo(recorded_api, moved_to(recorded_entries("yahoo_quote_open.json"), utc_now()))
    env = {"QUOTE_SOURCES": "yahoo_stream,yahoo,simulated", "STOCK_SYMBOLS": "AAPL,MSFT",
           "STREAM_MIN_INTERVAL_SECONDS": str(MIN_INTERVAL), "YAHOO_REFRESH_SECONDS": str(REFRESH),
           **yahoo_env(recorded_api)}
    with LocalStreamer() as streamer, Feeder(streamer, "AAPL", PRINTS_PER_SECOND) as feeder:
        env["YAHOO_STREAM_URL"] = streamer.url
        with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp, env=env,
                      roles=["producer", "consumer"], min_stored=2) as (stack, probe):
            start = utc_now()
            wait_for(lambda: count(probe, "AAPL", "yahoo_stream", start) >= 4, timeout=60, what="stream quotes")
            streamer.drop()
            dropped = utc_now()
            wait_for(lambda: count(probe, "AAPL", "yahoo", dropped) >= 2, timeout=60,
                     what="polling taking AAPL over while the stream is down")
            streamer.restore()
            restored = utc_now()
            wait_for(lambda: count(probe, "AAPL", "yahoo_stream", restored) >= 4, timeout=60,
                     what="the stream back after its backoff")
            feeder.stop.set()
            ended = utc_now()
            wait_for(lambda: probe.stored_count() == len(probe.read_topic(stack.settings().kafka_topic)),
                     timeout=60, what="the consumer catching up")
            records = probe.read_topic(stack.settings().kafka_topic)
            aapl, msft = docs(probe, "AAPL"), docs(probe, "MSFT")

    sent = [json.loads(r.value) for r in records]
    # No duplicate: every (symbol, timestamp) the producer sent is one record, and one document.
    keys = Counter((b["symbol"], b["timestamp"]) for b in sent)
    assert max(keys.values()) == 1
    assert len(aapl) + len(msft) == len(sent)
    # MSFT never prints: polled as before, from Yahoo's quote endpoint.
    assert msft and {d["source"] for d in msft} == {"yahoo"}
    # AAPL: streamed, polled only while the stream was down, streamed again.
    stream_ts = [d["timestamp"] for d in aapl if d["source"] == "yahoo_stream"]
    polled_ts = [d["timestamp"] for d in aapl if d["source"] == "yahoo"]
    assert any(ms(dropped) < ms(t) < ms(restored) + timedelta(seconds=10) for t in polled_ts), polled_ts
    back = min(t for t in stream_ts if ms(t) > ms(restored))
    assert not [t for t in polled_ts if ms(t) > ms(back) + timedelta(seconds=1)], "polled while streamed"
    # No gap: between the first stream quote and the feeder's end, never longer than one polling step
    # (plus a tick) without a quote for AAPL.
    times = [ms(d["timestamp"]) for d in aapl if ms(start) <= ms(d["timestamp"]) <= ms(ended)]
    gaps = [(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)]
    assert max(gaps) <= REFRESH + 2, gaps
    # Coalescing: 50 prints a second became at most one quote a second (+1 per reconnect's first quote).
    streamed_seconds = (ms(ended) - ms(start)).total_seconds()
    assert len(stream_ts) <= streamed_seconds / MIN_INTERVAL + 3, (len(stream_ts), streamed_seconds)
    assert streamer.sent >= 10 * len(stream_ts)
    assert streamer.connections >= 2  # it did reconnect
    # The stream's quotes carry the print's time, and the volume since the previous quote.
    assert all(d["market_open"] is True and d["volume"] >= 0 for d in aapl)


def ms(ts: datetime) -> datetime:
    """MongoDB keeps milliseconds; tz-aware for comparison."""
    ts = ts if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)
