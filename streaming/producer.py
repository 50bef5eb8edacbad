"""Producer: one quote per symbol every POLL_INTERVAL_SECONDS to Kafka `stock-prices`.

Real quotes come from Alpha Vantage GLOBAL_QUOTE while the shared call budget
allows, round-robin over the symbols; every other quote is simulated, anchored on
the symbol's last real price. Messages are keyed by symbol (one partition per
symbol keeps its quotes in order). Run as `python streaming/producer.py`.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import deque
from datetime import UTC, datetime, timedelta
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from pymongo.errors import PyMongoError

from config import Settings
from market_data.alpha_vantage import AlphaVantageClient, AlphaVantageRefused
from streaming.schema import to_message
from streaming.simulator import MarketSimulator, interval_volume

# Refusals after which no further real call is tried in the same tick.
STOP_TICK_KINDS = {"budget_exhausted", "rate_limit_note", "rate_limit_information", "no_key"}
MAX_PENDING = 10000  # quotes kept for re-sending while the broker is away


class QuoteSource:
    """Builds each tick's quotes: real within the budget, simulated otherwise."""

    def __init__(self, settings: Settings, client: AlphaVantageClient | None, simulator: MarketSimulator,
                 logger: Any) -> None:
        self.symbols = list(settings.stock_symbols)
        self.client = client if client is not None and client.enabled else None
        self.simulator = simulator
        self.interval = settings.poll_interval_seconds
        self.tz = settings.tz
        self.log = logger
        # Enough real calls per tick to use the minute budget, at least one.
        self.real_per_tick = max(1, math.ceil(settings.alpha_vantage_calls_per_minute * self.interval / 60))
        # With a daily cap far below what the minute limit allows (25/day vs 5/min),
        # spending at full speed would leave the rest of the day simulated; pacing
        # keeps a real anchor coming all day. No pacing when the day cap is no constraint.
        per_day = settings.alpha_vantage_calls_per_day
        self.call_gap = 86400 / per_day if settings.alpha_vantage_spread_daily_budget and per_day > 0 else 0.0
        self._next_call_at: datetime | None = None
        self.cursor = 0
        self._budget_said = False

    def real_quote(self, symbol: str, now: datetime) -> dict[str, Any]:
        assert self.client is not None
        q = self.client.global_quote(symbol)
        quote = {
            "symbol": symbol, "timestamp": now, "price": q["price"],
            "volume": interval_volume(q["volume"], now, self.interval, self.tz),
            "open": q["open"], "high": q["high"], "low": q["low"],
            "previous_close": q["previous_close"], "change_percent": q["change_percent"],
            "source": "alpha_vantage",
        }
        self.simulator.anchor(quote, now)
        return quote

    def _spent(self, now: datetime) -> None:
        if self.call_gap:
            self._next_call_at = now + timedelta(seconds=self.call_gap)

    def tick(self, now: datetime) -> list[dict[str, Any]]:
        real: dict[str, dict[str, Any]] = {}
        if self.client is not None and (self._next_call_at is None or now >= self._next_call_at):
            tried = 0
            n = len(self.symbols)
            per_tick = 1 if self.call_gap > self.interval else self.real_per_tick
            while tried < min(per_tick, n):
                symbol = self.symbols[self.cursor % n]
                self.cursor = (self.cursor + 1) % n
                tried += 1
                try:
                    real[symbol] = self.real_quote(symbol, now)
                    self._budget_said = False
                    self._spent(now)
                except AlphaVantageRefused as exc:
                    if exc.kind == "budget_exhausted":
                        # Said once per exhaustion, not every tick.
                        if not self._budget_said:
                            self.log.info("Alpha Vantage call budget spent for now; simulating until it refills")
                            self._budget_said = True
                        self.cursor = (self.cursor - 1) % n  # this symbol's turn is not used up
                    else:
                        self._spent(now)  # the call reached the API and counted
                        self.log.warning("Alpha Vantage refused %s (%s): %s; simulating it this tick",
                                         symbol, exc.kind, exc.detail)
                    if exc.kind in STOP_TICK_KINDS:
                        break
                except PyMongoError as exc:  # the shared budget lives in MongoDB
                    self.log.warning("call budget unavailable (%s); simulating this tick", exc)
                    self.cursor = (self.cursor - 1) % n
                    break
        return [real.get(s) or self.simulator.next_quote(s, now) for s in self.symbols]


class QuoteSender:
    """Sends quotes; those the broker did not take are kept and sent again first."""

    def __init__(self, producer: KafkaProducer, topic: str, logger: Any) -> None:
        self.producer = producer
        self.topic = topic
        self.log = logger
        self.pending: deque[dict[str, Any]] = deque()
        self.sent = 0
        self.failed = 0

    def _keep(self, quote: dict[str, Any]) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.pending.popleft()
            self.log.warning("re-send buffer full (%d): dropped the oldest quote", MAX_PENDING)
        self.pending.append(quote)

    def send(self, quotes: list[dict[str, Any]]) -> int:
        """Queue quotes for sending; returns how many the client accepted."""
        batch = list(self.pending) + quotes
        self.pending.clear()
        accepted = 0
        for i, quote in enumerate(batch):
            try:
                future = self.producer.send(self.topic, key=quote["symbol"], value=to_message(quote))
            except KafkaError as exc:
                # Metadata unavailable (broker down): keep this and the rest for later.
                self.log.warning("Kafka unavailable (%s); keeping %d quote(s) to send again", exc, len(batch) - i)
                for rest in batch[i:]:
                    self._keep(rest)
                break
            future.add_callback(self._delivered, quote)
            future.add_errback(self._failed, quote)
            accepted += 1
        return accepted

    def _delivered(self, quote: dict[str, Any], metadata: Any) -> None:
        self.sent += 1
        self.log.debug("sent %s %s %.2f (%s) to partition %d offset %d", quote["symbol"],
                       quote["timestamp"].isoformat(), quote["price"], quote["source"],
                       metadata.partition, metadata.offset)

    def _failed(self, quote: dict[str, Any], exc: BaseException) -> None:
        # Delivery timed out after the producer's own retries: send it again next tick.
        self.failed += 1
        self.log.warning("delivery of %s %s failed (%s); will send it again", quote["symbol"],
                         quote["timestamp"].isoformat(), exc)
        self._keep(quote)


def run(settings: Settings, stop: threading.Event) -> int:
    from database.mongo import get_db, make_client
    from database.mongo.api_budget import MongoCallBudget
    from logs.logger_config import get_logger
    from streaming.kafka_io import ensure_topics, make_producer

    log = get_logger("kafka_producer")
    client: AlphaVantageClient | None = None
    if settings.alpha_vantage_api_key:
        mongo = make_client(settings, server_selection_timeout_ms=2000)
        budget = MongoCallBudget(get_db(mongo, settings), settings.alpha_vantage_calls_per_minute,
                                 settings.alpha_vantage_calls_per_day)
        client = AlphaVantageClient(settings, budget)
        log.info("Alpha Vantage on: up to %d calls/minute and %d/day, round-robin over %s; other ticks simulated",
                 settings.alpha_vantage_calls_per_minute, settings.alpha_vantage_calls_per_day,
                 ", ".join(settings.stock_symbols))
    else:
        log.info("ALPHA_VANTAGE_API_KEY is not set: every quote is simulated (source=simulated)")
    simulator = MarketSimulator(settings.stock_symbols, settings.poll_interval_seconds, settings.tz,
                                seed=settings.simulation_seed)
    source = QuoteSource(settings, client, simulator, log)

    if not ensure_topics(settings, [settings.kafka_topic], stop):
        return 0
    producer = make_producer(settings, stop)
    if producer is None:
        return 0
    sender = QuoteSender(producer, settings.kafka_topic, log)
    log.info("producing %d symbols every %gs to %s", len(settings.stock_symbols),
             settings.poll_interval_seconds, settings.kafka_topic)
    next_at = time.monotonic()
    try:
        while not stop.is_set():
            quotes = source.tick(datetime.now(UTC))
            accepted = sender.send(quotes)
            real = sum(q["source"] == "alpha_vantage" for q in quotes)
            log.info("tick: %d quotes queued (%d alpha_vantage, %d simulated), %d waiting to re-send",
                     accepted, real, len(quotes) - real, len(sender.pending))
            next_at += settings.poll_interval_seconds
            # A tick that overran (slow API, broker wait) does not cause a burst of catch-up ticks.
            next_at = max(next_at, time.monotonic())
            stop.wait(next_at - time.monotonic())
    finally:
        # Whatever was handed to the client is delivered before we go.
        log.info("stopping: flushing the producer")
        try:
            producer.flush(timeout=30)
        except KafkaError as exc:
            log.error("flush on shutdown failed: %s", exc)
        producer.close(timeout=30)
        log.info("producer stopped: %d delivered, %d not delivered (%d still unsent)",
                 sender.sent, sender.failed, len(sender.pending))
    return 0


def main() -> int:
    from common.service import run_service

    return run_service("producer", run)


if __name__ == "__main__":
    sys.exit(main())
