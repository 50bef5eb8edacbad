"""Alerts: reads `stock-prices` in its own group and raises price and volume alerts.

price_change fires once per event (streaming/alert_rules.py: a band state machine
per symbol and market day, kept in MongoDB alert_state so a restart neither repeats
nor forgets); volume_spike compares a quote with the symbol's usual volume for that
time of day (from stored quotes), with a cooldown per symbol read back from
alert_history. Each alert is stored in MongoDB alert_history and MySQL alert_log
(idempotent on alert_key = symbol|rule|quote timestamp) with the band or baseline
that fired, logged, and delivered by streaming/alert_delivery.py (emails and webhooks
queued: a slow server never holds up the next quote). Users' own rules (their stricter
threshold or multiplier, price levels) run after the system's on the same quote
(streaming/user_alerts.py) and raise alerts of their own in user_alerts. Offsets are
committed after a batch's alerts are stored: a crash means redelivery, and a
redelivered quote finds its alert already there (only unfinished deliveries are
retried). A quote the schema rejects is skipped (the consumer sends it to the
dead-letter topic); anything else one quote raises here sends it to the dead-letter
topic with "alerts:" before the reason, and the service goes on. Run as
`python streaming/alerts.py`.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any

import pymysql
from kafka import KafkaConsumer, KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import CommitFailedError, KafkaError
from pymongo.database import Database
from pymongo.errors import PyMongoError

from common.clock import utc_now
from common.mailer import SmtpMailer
from common.quote import Quote
from common.retry import STOPPED, Backoff, retry
from common.service import run_service
from config import Settings
from database.mongo import alerts as mongo_alerts
from database.mongo.prices import volumes_before, volumes_in_windows
from database.mysql import MySQLUnavailableError
from database.mysql import alerts as mysql_alerts
from streaming.alert_delivery import Deliveries, Outcome
from streaming.alert_rules import (
    VOLUME_SPIKE,
    Alert,
    BandState,
    Baseline,
    Decision,
    VolumeWindows,
    baseline_windows,
    bucket_of,
    cooldown_decision,
    market_day,
    price_alert,
    state_from_doc,
    state_to_doc,
    step_band,
    time_of_day_baseline,
    volume_alert,
)
from streaming.kafka_io import DeadLetter, consume_batches, next_offsets, send_dead_letters
from streaming.schema import InvalidQuote, parse_message
from streaming.startup import QuoteReader, RegisteredAcceptance, open_quote_reader, serve
from streaming.user_alerts import UserAlerts

STORE_ERRORS = (PyMongoError, pymysql.err.OperationalError, pymysql.err.InterfaceError, MySQLUnavailableError)


class AlertService:
    def __init__(self, settings: Settings, consumer: KafkaConsumer, db: Database,
                 mysql_connect: Callable[[], pymysql.Connection], mailer: SmtpMailer,
                 stop: threading.Event, logger: Any, dlq: KafkaProducer | None = None) -> None:
        self.settings = settings
        self.consumer = consumer
        self.dlq = dlq  # where a quote goes that this service cannot handle (None: logged only)
        self.db = db
        self.mysql_connect = mysql_connect
        self._mysql: pymysql.Connection | None = None
        self._why_columns = True  # alert_log has band/baseline (false on an unmigrated install)
        self.stop = stop
        self.log = logger
        self.deliveries = Deliveries(settings, db, mailer, logger, finished=self._email_finished)
        self.users = UserAlerts(settings, db, self.deliveries, logger)
        self._outcome_mysql: pymysql.Connection | None = None  # the email senders' own connection
        self._outcome_lock = threading.Lock()
        self.windows = VolumeWindows(settings.volume_window)
        self.cooldown = timedelta(seconds=settings.alert_cooldown_seconds)
        self._last: dict[tuple[str, str], datetime | None] = {}
        self._bands: dict[str, BandState] = {}
        self._baselines: dict[tuple[str, date, Any], Baseline | None] = {}
        self.raised = 0
        self._baseline_seen: Baseline | None = None
        self.acceptance = RegisteredAcceptance(settings, db)  # what the consumer rejects raises no alert

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

    def band_state(self, symbol: str) -> BandState:
        if symbol not in self._bands:  # first time since start: the stored state
            self._bands[symbol] = state_from_doc(mongo_alerts.load_band_state(self.db, symbol))
        return self._bands[symbol]

    def _insert_mysql(self, record: dict[str, Any], stored: dict[str, Any]) -> bool:
        try:
            return mysql_alerts.insert_alert(self.mysql(), record, stored["email_status"], stored["created_at"],
                                             with_why=self._why_columns)
        except mysql_alerts.MissingWhyColumnsError:
            self._why_columns = False
            self.log.error("alert_log has no band/baseline columns (a database from before them): storing alerts "
                           "without them; run database/migrations/001_alert_log_why.sql to add them")
            return mysql_alerts.insert_alert(self.mysql(), record, stored["email_status"], stored["created_at"],
                                             with_why=False)

    def _email_finished(self, alert_key: str, outcome: Outcome) -> None:
        """An alert's emails are done (a sender thread): its email status in alert_history and alert_log."""
        if outcome.status == "failed":
            self.log.error("alert %s stored but email failed: %s", alert_key, outcome.error)
        with self._outcome_lock:
            mongo_alerts.set_email_status(self.db, alert_key, outcome.status, outcome.error)

            def store() -> None:
                if self._outcome_mysql is None:
                    self._outcome_mysql = self.mysql_connect()
                try:
                    mysql_alerts.set_email_status(self._outcome_mysql, alert_key, outcome.status, outcome.error)
                except STORE_ERRORS:
                    with contextlib.suppress(pymysql.err.Error):
                        self._outcome_mysql.close()
                    self._outcome_mysql = None
                    raise

            retry(store, what=f"storing the email status of {alert_key}", retry_on=STORE_ERRORS, stop=self.stop,
                  attempts=5, backoff=Backoff(0.5, 5.0))

    # ------------------------------------------------------------------ one alert
    def process(self, alert: Alert) -> None:
        """Store, log and deliver one alert; safe to repeat (raises on a storage error)."""
        if alert.rule == VOLUME_SPIKE:
            last = self.last_alert(alert.symbol, alert.rule)
            decision = cooldown_decision(alert.quote_timestamp, last, self.cooldown)
            if decision is Decision.COOLDOWN:
                self.log.debug("cooldown: %s %s at %s suppressed", alert.symbol, alert.rule, alert.quote_timestamp)
                return
        record = alert.as_record()
        stored, new = mongo_alerts.store_alert(self.db, record, "pending", utc_now())
        if new:
            self.raised += 1
            self.log.warning("ALERT %s: %s [%s]", alert.rule, alert.message, alert.key)
        try:
            if not self._insert_mysql(record, stored):
                # Already there (a retry after a failure): bring its email status in step.
                mysql_alerts.set_email_status(self.mysql(), alert.key, stored["email_status"],
                                              stored.get("email_error"))
        except STORE_ERRORS:
            self._drop_mysql()
            raise
        last = self._last.get((alert.symbol, alert.rule))
        if last is None or alert.quote_timestamp > last:
            self._last[(alert.symbol, alert.rule)] = alert.quote_timestamp
        if stored["email_status"] != "pending":
            return  # delivered before (a redelivered quote)
        outcome = self.deliveries.send(alert, self.deliveries.plan(alert))
        if outcome.status == "pending":
            return  # on its way: the sender thread stores how it went (_email_finished)
        mongo_alerts.set_email_status(self.db, alert.key, outcome.status, outcome.error)
        try:
            mysql_alerts.set_email_status(self.mysql(), alert.key, outcome.status, outcome.error)
        except STORE_ERRORS:
            self._drop_mysql()
            raise

    # ------------------------------------------------------------------ rules
    def check_price(self, quote: Quote) -> None:
        """The band machine for one quote: the alert (if any) is stored before the state
        that remembers it, so a crash in between repeats the same alert_key, never a new one."""
        symbol = quote["symbol"]
        before = self.band_state(symbol)
        after, band = step_band(before, quote["change_percent"], quote["timestamp"],
                                market_day(quote["timestamp"], self.settings.tz),
                                self.settings.price_change_threshold, self.settings.price_change_hysteresis)
        if band is not None:
            self.process(price_alert(quote, band, self.settings.price_change_threshold))
        if after != before:
            mongo_alerts.save_band_state(self.db, symbol, state_to_doc(after))
            self._bands[symbol] = after

    def volume_baseline(self, quote: Quote) -> Baseline | None:
        """The time-of-day baseline of the quote's bucket (one query per symbol, day and
        bucket), else the recent average while history is short."""
        s, tz = self.settings, self.settings.tz
        symbol, ts = quote["symbol"], quote["timestamp"]
        bucket = bucket_of(ts, tz, s.volume_bucket_minutes)
        key = (symbol, market_day(ts, tz), bucket)
        if key not in self._baselines:
            lookback = s.volume_baseline_sessions * 7 // 5 + 4  # weekends and a holiday or two
            windows = baseline_windows(ts, tz, s.volume_bucket_minutes, lookback)
            try:
                found = volumes_in_windows(self.db, symbol, windows)
            except PyMongoError as exc:  # the recent average stands in until MongoDB answers
                self.log.warning("volume baseline of %s unavailable: %s", symbol, exc)
                return self.windows.baseline(symbol)
            label = f"{bucket[0]:%H:%M}-{bucket[1]:%H:%M}"
            per_day = {start.date(): vols for (start, _), vols in zip(windows, found, strict=True)}
            self._baselines[key] = time_of_day_baseline(per_day, s.volume_baseline_sessions,
                                                        s.volume_baseline_min_sessions, label)
            if len(self._baselines) > 10_000:  # old days' buckets
                self._baselines = {k: v for k, v in self._baselines.items() if k[1] >= key[1]}
        return self._baselines[key] or self.windows.baseline(symbol)

    def check_volume(self, quote: Quote) -> None:
        baseline = self.volume_baseline(quote)
        alert = volume_alert(quote, baseline, self.settings.volume_threshold_multiplier)
        if alert is not None:
            self.process(alert)
        self._baseline_seen = baseline  # the users' multipliers compare with the same baseline
        # After comparing: a spike is measured against the quotes before it.
        self.windows.add(quote["symbol"], quote["volume"], quote["timestamp"])

    def seed_window(self, symbol: str, first_seen: datetime) -> None:
        try:
            history = volumes_before(self.db, symbol, first_seen, self.settings.volume_window)
        except PyMongoError as exc:  # an empty window only delays the fallback volume rule
            self.log.warning("could not refill the volume window of %s from MongoDB: %s", symbol, exc)
            history = []
        self.windows.seed(symbol, history)
        self.log.info("volume window of %s starts with %d stored quote(s)", symbol, len(history))

    # ------------------------------------------------------------------ batches
    def handle(self, records: list[ConsumerRecord]) -> bool:
        """Evaluate a batch and store its alerts, then commit. False if stopped first."""
        dead: list[DeadLetter] = []
        rules = self.acceptance.current(rec.key for rec in records)
        for rec in records:
            try:
                quote = parse_message(rec.value, rules)
            except Exception as exc:  # noqa: BLE001 - InvalidQuote or a bug: not a quote either way
                # The consumer sends it to the DLQ; here it is simply not a quote.
                self.log.debug("skipped %s[%d]@%d: %s", rec.topic, rec.partition, rec.offset, exc)
                continue
            try:
                if not self.evaluate(quote):
                    return False
            except Exception as exc:  # noqa: BLE001 - one quote must not stop the alerts of every later one
                self._drop_mysql()  # it may be mid-statement
                reason = str(InvalidQuote(f"alerts: unexpected {type(exc).__name__}: {exc}"))
                self.log.error("alerts could not handle %s[%d]@%d (%s at %s), sent to %s: %s", rec.topic,
                               rec.partition, rec.offset, quote["symbol"], quote["timestamp"],
                               self.settings.kafka_dlq_topic, reason, exc_info=True)
                dead.append(DeadLetter(rec, reason))
        if dead and self.dlq is not None:
            sent = retry(lambda: send_dead_letters(self.dlq, self.settings.kafka_dlq_topic, dead),
                         what="sending to the dead-letter topic", retry_on=(KafkaError,), stop=self.stop)
            if sent is STOPPED:
                return False
        try:
            self.consumer.commit(next_offsets(records))
        except (CommitFailedError, KafkaError) as exc:
            self.log.warning("commit failed (%s); quotes will be redelivered (alerts are idempotent)", exc)
        return True

    def evaluate(self, quote: Quote) -> bool:
        """Both rules for one quote, storage errors retried; False if stopped first."""
        if quote["market_open"] is False:
            return True  # the market is closed: the last price repeated, nothing traded
        if not self.windows.known(quote["symbol"]):
            self.seed_window(quote["symbol"], quote["timestamp"])
        at = f"{quote['symbol']} at {quote['timestamp']:%H:%M:%S}"
        self._baseline_seen = None
        checks: list[tuple[Callable[[Quote], None], str]] = [(self.check_price, "price rule"),
                                                             (self.check_volume, "volume rule")]
        if self.settings.user_rules_enabled:
            self.users.refresh()
            checks.append((lambda q: self.users.check(q, self._baseline_seen), "users' rules"))
        for check, what in checks:
            done = retry(lambda c=check: c(quote), what=f"storing alerts of the {what} for {at}",
                         retry_on=STORE_ERRORS, stop=self.stop, backoff=Backoff(0.5, 15.0))
            if done is STOPPED:
                return False
        return True

    def run(self) -> None:
        self.deliveries.start()
        try:
            consume_batches(self.consumer, self.stop, self.handle, self.log)
        finally:
            self.deliveries.close()

    def totals(self) -> str:
        return f"{self.raised} alert(s) raised, {self.users.raised} of users' own rules"


def bootstrap(settings: Settings, stop: threading.Event) -> tuple[QuoteReader, AlertService] | None:
    """The alert service and its adapters (streaming/startup.py), built once; None if stopped first."""
    from database.mysql import connect_with_retry
    from logs.logger_config import get_logger

    log = get_logger("streaming.alerts")
    mailer = SmtpMailer(settings)
    if not mailer.enabled:
        log.info("email is off (SMTP_SERVER / EMAIL_SENDER not set): alerts are stored and logged, not emailed")
    elif not settings.alert_email_recipients:
        log.info("ALERT_EMAIL_RECIPIENTS is empty: alerts are emailed to opted-in users only")
    reader = open_quote_reader(settings, settings.kafka_alerts_group, stop)
    if reader is None:
        return None
    log.info("watching %s as group %s: price move past %g%% (bands, re-armed below %g%%), volume > %gx the usual "
             "for its %d-minute bucket (median of up to %d sessions; the last %d quotes' average until %d sessions "
             "exist), volume cooldown %ds", settings.kafka_topic, settings.kafka_alerts_group,
             settings.price_change_threshold, settings.price_change_threshold - settings.price_change_hysteresis,
             settings.volume_threshold_multiplier, settings.volume_bucket_minutes, settings.volume_baseline_sessions,
             settings.volume_window, settings.volume_baseline_min_sessions, settings.alert_cooldown_seconds)
    return reader, AlertService(settings, reader.consumer, reader.db, lambda: connect_with_retry(settings, attempts=1),
                                mailer, stop, log, reader.dlq)


def run(settings: Settings, stop: threading.Event) -> int:
    return serve(bootstrap(settings, stop), "alerts")


if __name__ == "__main__":
    sys.exit(run_service("alerts", run))
