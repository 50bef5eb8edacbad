"""Alerts: reads `stock-prices` in its own group and raises price and volume alerts.

Each alert is stored in MongoDB alert_history and MySQL alert_log (idempotent on
alert_key = symbol|rule|quote timestamp), logged, and emailed to
ALERT_EMAIL_RECIPIENTS and opted-in users when SMTP is configured. The cooldown per
(symbol, rule) is read back from alert_history, so it survives a restart. Offsets
are committed after a batch's alerts are stored: a crash means redelivery, and a
redelivered quote finds its alert already there (only a still-pending email is
retried). Run as `python streaming/alerts.py`.
"""

from __future__ import annotations

import contextlib
import smtplib
import sys
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pymysql
from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.mailer import SmtpMailer, build_message
from config import Settings
from database.mongo import alerts as mongo_alerts
from database.mongo.prices import volumes_before
from database.mysql import MySQLUnavailableError
from database.mysql import alerts as mysql_alerts
from streaming.alert_rules import Alert, Decision, VolumeWindows, cooldown_decision, evaluate, render_email
from streaming.kafka_io import Backoff, consume_batches, next_offsets, retry_until
from streaming.schema import Acceptance, InvalidQuote, parse_message

STORE_ERRORS = (PyMongoError, pymysql.err.OperationalError, pymysql.err.InterfaceError, MySQLUnavailableError)


class AlertService:
    def __init__(self, settings: Settings, consumer: KafkaConsumer, db: Database,
                 mysql_connect: Callable[[], pymysql.Connection], mailer: SmtpMailer,
                 stop: threading.Event, logger: Any) -> None:
        self.settings = settings
        self.consumer = consumer
        self.db = db
        self.mysql_connect = mysql_connect
        self._mysql: pymysql.Connection | None = None
        self.mailer = mailer
        self.stop = stop
        self.log = logger
        self.windows = VolumeWindows(settings.volume_window)
        self.cooldown = timedelta(seconds=settings.alert_cooldown_seconds)
        self._last: dict[tuple[str, str], datetime | None] = {}
        self.raised = 0
        self.rules = Acceptance.from_settings(settings)  # what the consumer rejects raises no alert

    # ------------------------------------------------------------------ storage
    def mysql(self) -> pymysql.Connection:
        if self._mysql is None:
            self._mysql = self.mysql_connect()
        return self._mysql

    def _drop_mysql(self) -> None:
        if self._mysql is not None:
            with contextlib.suppress(pymysql.err.Error):  # it is already broken
                self._mysql.close()
            self._mysql = None

    def last_alert(self, symbol: str, rule: str) -> datetime | None:
        key = (symbol, rule)
        if key not in self._last:  # first time since start: ask the stored history
            self._last[key] = mongo_alerts.last_alert_time(self.db, symbol, rule)
        return self._last[key]

    def recipients(self, symbol: str) -> list[str]:
        found = [*self.settings.alert_email_recipients, *mongo_alerts.opted_in_emails(self.db, symbol)]
        return list(dict.fromkeys(addr.strip().lower() for addr in found if addr.strip()))

    # ------------------------------------------------------------------ one alert
    def process(self, alert: Alert) -> None:
        """Store, log and email one alert; safe to repeat (raises on a storage error)."""
        decision = cooldown_decision(alert.quote_timestamp, self.last_alert(alert.symbol, alert.rule), self.cooldown)
        if decision is Decision.COOLDOWN:
            self.log.debug("cooldown: %s %s at %s suppressed", alert.symbol, alert.rule, alert.quote_timestamp)
            return
        recipients = self.recipients(alert.symbol) if self.mailer.enabled else []
        status = "pending" if recipients else "disabled"
        now = datetime.now(UTC)
        record = alert.as_record()
        stored, new = mongo_alerts.store_alert(self.db, record, status, now)
        if new:
            self.raised += 1
            self.log.warning("ALERT %s: %s [%s]", alert.rule, alert.message, alert.key)
        try:
            if not mysql_alerts.insert_alert(self.mysql(), record, stored["email_status"], stored["created_at"]):
                # Already there (a retry after a failure): bring its email status in step.
                mysql_alerts.set_email_status(self.mysql(), alert.key, stored["email_status"], stored.get("email_error"))
        except STORE_ERRORS:
            self._drop_mysql()
            raise
        last = self._last.get((alert.symbol, alert.rule))
        if last is None or alert.quote_timestamp > last:
            self._last[(alert.symbol, alert.rule)] = alert.quote_timestamp
        if stored["email_status"] == "pending":
            self.email(alert, recipients or self.recipients(alert.symbol))
        elif new and self.mailer.enabled:
            # (Email being off was said once at start, not per alert.)
            self.log.info("alert %s not emailed: no recipients (ALERT_EMAIL_RECIPIENTS or opted-in users)", alert.key)

    def email(self, alert: Alert, recipients: list[str]) -> None:
        subject, text = render_email(alert)
        errors = []
        for address in recipients:
            # One message per recipient: nobody sees the others' addresses.
            try:
                self.mailer.send(build_message(self.settings.email_sender, address, subject, text))
            except (smtplib.SMTPException, OSError, RuntimeError) as exc:
                errors.append(f"{address}: {exc}")
        status, error = ("failed", "; ".join(errors)[:512]) if errors else ("sent", None)
        if errors:
            self.log.error("alert %s stored but email failed for %d of %d recipient(s): %s",
                           alert.key, len(errors), len(recipients), error)
        else:
            self.log.info("alert %s emailed to %d recipient(s)", alert.key, len(recipients))
        mongo_alerts.set_email_status(self.db, alert.key, status, error)
        try:
            mysql_alerts.set_email_status(self.mysql(), alert.key, status, error)
        except STORE_ERRORS:
            self._drop_mysql()
            raise

    def seed_window(self, symbol: str, first_seen: datetime) -> None:
        try:
            history = volumes_before(self.db, symbol, first_seen, self.settings.volume_window)
        except PyMongoError as exc:  # an empty window only delays the volume rule
            self.log.warning("could not refill the volume window of %s from MongoDB: %s", symbol, exc)
            history = []
        self.windows.seed(symbol, history)
        self.log.info("volume window of %s starts with %d stored quote(s)", symbol, len(history))

    # ------------------------------------------------------------------ batches
    def handle(self, records: list[ConsumerRecord]) -> bool:
        """Evaluate a batch and store its alerts, then commit. False if stopped first."""
        for rec in records:
            try:
                quote = parse_message(rec.value, self.rules)
            except InvalidQuote as exc:
                # The consumer sends it to the DLQ; here it is simply not a quote.
                self.log.debug("skipped %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, exc)
                continue
            if quote["market_open"] is False:
                continue  # the market is closed: the last price repeated, nothing traded
            if not self.windows.known(quote["symbol"]):
                self.seed_window(quote["symbol"], quote["timestamp"])
            alerts = evaluate(quote, self.settings.price_change_threshold,
                              self.settings.volume_threshold_multiplier, self.windows)
            for alert in alerts:
                done = retry_until(lambda a=alert: self.process(a) or True, self.stop,
                                   f"storing alert {alert.key}", STORE_ERRORS, Backoff(0.5, 15.0))
                if done is None:
                    return False
        try:
            self.consumer.commit(next_offsets(records))
        except (CommitFailedError, KafkaError) as exc:
            self.log.warning("commit failed (%s); quotes will be redelivered (alerts are idempotent)", exc)
        return True

    def run(self) -> None:
        consume_batches(self.consumer, self.stop, self.handle, self.log)


def run(settings: Settings, stop: threading.Event) -> int:
    from database.mongo import get_db, make_client
    from database.mysql import connect_with_retry
    from database.setup_mongodb import ensure_indexes
    from logs.logger_config import get_logger
    from streaming.kafka_io import ensure_topics, make_consumer

    log = get_logger("alerts")
    mailer = SmtpMailer(settings)
    if not mailer.enabled:
        log.info("email is off (SMTP_SERVER / EMAIL_SENDER not set): alerts are stored and logged, not emailed")
    elif not settings.alert_email_recipients:
        log.info("ALERT_EMAIL_RECIPIENTS is empty: alerts are emailed to opted-in users only")
    db = get_db(make_client(settings), settings)
    if retry_until(lambda: ensure_indexes(db) or True, stop, "creating MongoDB indexes", (PyMongoError,)) is None:
        return 0
    if not ensure_topics(settings, [settings.kafka_topic], stop):
        return 0
    consumer = make_consumer(settings, settings.kafka_alerts_group, [settings.kafka_topic], stop)
    if consumer is None:
        return 0
    log.info("watching %s as group %s: |change| > %g%%, volume > %gx the last %d quotes' average, "
             "cooldown %ds per symbol and rule", settings.kafka_topic, settings.kafka_alerts_group,
             settings.price_change_threshold, settings.volume_threshold_multiplier, settings.volume_window,
             settings.alert_cooldown_seconds)
    service = AlertService(settings, consumer, db, lambda: connect_with_retry(settings, attempts=1), mailer, stop, log)
    try:
        service.run()
    finally:
        consumer.close(autocommit=False)
        log.info("alerts stopped: %d alert(s) raised", service.raised)
    return 0


def main() -> int:
    from common.service import run_service

    return run_service("alerts", run)


if __name__ == "__main__":
    sys.exit(main())
