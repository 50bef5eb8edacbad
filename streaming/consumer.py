"""Consumer: Kafka `stock-prices` → MongoDB `realtime_prices`, at least once, never twice.

Each polled batch is validated; good quotes get price_change_pct and processed_at
and are written in one unordered bulk, idempotent on (symbol, timestamp); bad
messages go to the dead-letter topic with their original bytes and the reason.
Whatever one record raises (a rejected quote, an unexpected error while reading it,
a document MongoDB cannot encode or refuses) sends that record to the DLQ and the
batch goes on: one message never stops the partition behind it.
Only when both writes are acknowledged are the batch's offsets committed, so a
crash at any point means redelivery, and redelivery changes nothing.
Run as `python streaming/consumer.py` (scale out with several in the same group).
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.clock import utc_now
from common.retry import STOPPED, Backoff, retry
from common.service import run_service
from config import Settings
from database.mongo.prices import insert_quotes_refusing
from streaming.kafka_io import DeadLetter, consume_batches, next_offsets, send_dead_letters
from streaming.schema import InvalidQuote, format_timestamp, parse_message, to_document
from streaming.startup import QuoteReader, RegisteredAcceptance, open_quote_reader, serve

SUMMARY_QUOTES = 10  # quotes named in the per-batch INFO line


class PriceConsumer:
    def __init__(self, settings: Settings, consumer: KafkaConsumer, db: Database, dlq: KafkaProducer,
                 stop: threading.Event, logger: Any,
                 on_stored: Callable[[list[dict[str, Any]], float], None] | None = None) -> None:
        self.settings = settings
        self.consumer = consumer
        self.db = db
        self.dlq = dlq
        self.stop = stop
        self.log = logger
        self.on_stored = on_stored  # benchmark hook: (documents, time stored)
        self.stored = 0
        self.duplicates = 0
        self.dead = 0
        self.acceptance = RegisteredAcceptance(settings, db)  # unregistered symbols, far-future stamps

    def split(self, records: list[ConsumerRecord],
              processed_at: datetime) -> tuple[list[tuple[ConsumerRecord, dict[str, Any]]], list[DeadLetter]]:
        """(record, document) of the good quotes, and the dead letters of the others."""
        good: list[tuple[ConsumerRecord, dict[str, Any]]] = []
        dead: list[DeadLetter] = []
        rules = self.acceptance.current(rec.key for rec in records)
        for rec in records:
            try:
                good.append((rec, to_document(parse_message(rec.value, rules, processed_at), processed_at)))
            except InvalidQuote as exc:
                dead.append(self.reject(rec, str(exc)))
            except Exception as exc:  # noqa: BLE001 - a bug met by one record must not stop the partition
                dead.append(self.reject(rec, f"unexpected {type(exc).__name__} reading it: {exc}"))
        return good, dead

    def reject(self, rec: ConsumerRecord, reason: str) -> DeadLetter:
        reason = str(InvalidQuote(reason))  # cut to InvalidQuote.MAX_REASON like every other reason
        self.log.warning("rejected %s[%d]@%d to %s: %s", rec.topic, rec.partition, rec.offset,
                         self.settings.kafka_dlq_topic, reason)
        return DeadLetter(rec, reason)

    def handle(self, records: list[ConsumerRecord]) -> bool:
        """Store one batch and commit it. False if stopped before it was stored (then
        nothing is committed and the batch is redelivered to whoever reads next)."""
        good, dead = self.split(records, utc_now())
        docs = [doc for _, doc in good]
        result = retry(lambda: insert_quotes_refusing(self.db, docs), what="writing quotes to MongoDB",
                       retry_on=(PyMongoError,), stop=self.stop, backoff=Backoff(0.5, 15.0))
        if result is STOPPED:
            return False
        inserted, present, refused = result
        if refused:
            dead += [self.reject(good[i][0], reason) for i, reason in sorted(refused.items())]
            docs = [doc for i, doc in enumerate(docs) if i not in refused]
        if dead:
            # Before the commit: the offsets move past a bad record only once the DLQ holds it.
            sent = retry(lambda: send_dead_letters(self.dlq, self.settings.kafka_dlq_topic, dead),
                         what="sending to the dead-letter topic", retry_on=(KafkaError,), stop=self.stop)
            if sent is STOPPED:
                return False
        stored_at = time.time()
        self.stored += inserted
        self.duplicates += present
        self.dead += len(dead)
        if self.on_stored is not None:
            self.on_stored(docs, stored_at)
        try:
            self.consumer.commit(next_offsets(records))
        except (CommitFailedError, KafkaError) as exc:
            # A rebalance took the partitions: the new owner re-reads from the last
            # commit, and the idempotent write makes that harmless.
            self.log.warning("commit failed (%s); the batch will be redelivered and deduplicated", exc)
        for doc in docs:
            self.log.debug("stored %s %s price=%.4f volume=%d change=%.4f%% move_from_open=%.4f%% source=%s",
                           doc["symbol"], format_timestamp(doc["timestamp"]), doc["price"], doc["volume"],
                           doc["change_percent"], doc["price_change_pct"], doc["source"])
        named = ", ".join(f"{d['symbol']} {d['price']:.2f}" for d in docs[:SUMMARY_QUOTES])
        more = f" (+{len(docs) - SUMMARY_QUOTES} more)" if len(docs) > SUMMARY_QUOTES else ""
        self.log.info("batch of %d: %d stored, %d already present, %d to DLQ; %s%s",
                      len(records), inserted, present, len(dead), named or "-", more)
        return True

    def run(self, max_records: int = 500) -> None:
        consume_batches(self.consumer, self.stop, self.handle, self.log, max_records)

    def totals(self) -> str:
        return f"{self.stored} stored, {self.duplicates} already present, {self.dead} to DLQ"


def bootstrap(settings: Settings, stop: threading.Event) -> tuple[QuoteReader, PriceConsumer] | None:
    """The consumer and its adapters (streaming/startup.py), built once; None if stopped first."""
    from logs.logger_config import get_logger

    log = get_logger("streaming.consumer")
    reader = open_quote_reader(settings, settings.kafka_consumer_group, stop)
    if reader is None:
        return None
    log.info("consuming %s as group %s into MongoDB %s.realtime_prices; rejects go to %s "
             "(per-batch summary at INFO, every message at DEBUG)", settings.kafka_topic,
             settings.kafka_consumer_group, settings.mongo_db, settings.kafka_dlq_topic)
    return reader, PriceConsumer(settings, reader.consumer, reader.db, reader.dlq, stop, log)


def run(settings: Settings, stop: threading.Event) -> int:
    return serve(bootstrap(settings, stop), "consumer")


if __name__ == "__main__":
    sys.exit(run_service("consumer", run))
