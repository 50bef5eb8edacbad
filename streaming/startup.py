"""The start-up the roles that read `stock-prices` share (the consumer and the alerts).

Each needs the same adapters, built once and in this order: MongoDB with its indexes
(the unique (symbol, timestamp) index makes redelivery harmless, so it comes first),
the quote and dead-letter topics, a producer for the dead-letter topic and a consumer
in the role's own group. Every step waits for its server until the stop event is set.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.clock import utc_now
from common.retry import STOPPED, retry
from config import Settings
from database.mongo.symbols import RegistryReader
from streaming.schema import Acceptance


@dataclass
class QuoteReader:
    """MongoDB, the Kafka consumer of `stock-prices` and the dead-letter producer of one role."""

    db: Database
    consumer: KafkaConsumer
    dlq: KafkaProducer

    def close(self) -> None:
        # No commit on close: what was not stored is redelivered.
        self.consumer.close(autocommit=False)
        self.dlq.close(timeout=10)


class RegisteredAcceptance:
    """The acceptance rules (streaming/schema.py) with the registry's symbols, re-read every
    REREAD_SECONDS (database/mongo/symbols.py), when REJECT_UNKNOWN_SYMBOLS is on; otherwise the settings'.

    A batch keyed by a symbol not known yet makes an early re-read (at most every EARLY_READ_SECONDS):
    the producer may have read the registry first, and a new symbol's first quotes must not go to the DLQ."""

    EARLY_READ_SECONDS = 2.0

    def __init__(self, settings: Settings, db: Database) -> None:
        self.base = Acceptance.from_settings(settings)
        self.registry = (RegistryReader(lambda: db, settings.stock_symbols, now=utc_now)
                         if settings.reject_unknown_symbols else None)
        self._rules = self.base
        self._early_read_at = -math.inf

    def current(self, keys: Iterable[bytes | None] = ()) -> Acceptance:
        """The rules for a batch whose record keys (the symbols) are `keys`."""
        if self.registry is None:
            return self.base
        known = self._rules.symbols or frozenset()
        if any(k is not None and k.decode("utf-8", "replace") not in known for k in keys) \
                and time.monotonic() - self._early_read_at >= self.EARLY_READ_SECONDS:
            self._early_read_at = time.monotonic()
            self.registry.forget()
        symbols = frozenset(self.registry.symbols())
        if symbols != self._rules.symbols:
            self._rules = replace(self.base, symbols=symbols)
        return self._rules


class Worker(Protocol):
    log: Any

    def run(self) -> None: ...
    def totals(self) -> str: ...


def open_quote_reader(settings: Settings, group: str, stop: threading.Event) -> QuoteReader | None:
    """The adapters of a `stock-prices` reader in consumer group `group`; None if stopped first."""
    from database.mongo import get_db, make_client
    from database.setup_mongodb import ensure_indexes
    from streaming.kafka_io import ensure_topics, make_consumer, make_producer

    db = get_db(make_client(settings), settings)
    if retry(lambda: ensure_indexes(db), what="creating MongoDB indexes", retry_on=(PyMongoError,),
             stop=stop) is STOPPED:
        return None
    if not ensure_topics(settings, [settings.kafka_topic, settings.kafka_dlq_topic], stop):
        return None
    dlq = make_producer(settings, stop)
    consumer = make_consumer(settings, group, [settings.kafka_topic], stop)
    if dlq is None or consumer is None:
        return None
    return QuoteReader(db, consumer, dlq)


def serve(started: tuple[QuoteReader, Worker] | None, role: str) -> int:
    """Run the role's loop until stopped, then close its adapters and say what it did.
    `started` is what the role's bootstrap built (None: stopped before it could)."""
    if started is None:
        return 0
    reader, worker = started
    try:
        worker.run()
    finally:
        reader.close()
        worker.log.info("%s stopped: %s", role, worker.totals())
    return 0
