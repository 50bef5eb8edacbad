"""The start-up the roles that read `stock-prices` share (the consumer and the alerts).

Each needs the same adapters, built once and in this order: MongoDB with its indexes
(the unique (symbol, timestamp) index makes redelivery harmless, so it comes first),
the quote and dead-letter topics, a producer for the dead-letter topic and a consumer
in the role's own group. Every step waits for its server until the stop event is set.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

from kafka import KafkaConsumer, KafkaProducer
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.retry import STOPPED, retry
from config import Settings


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
