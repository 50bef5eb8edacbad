"""Who receives an alert, and how: email and webhooks, each through a bounded queue
and sender threads, so a slow or dead SMTP server or receiver never holds up the
stream (the alerts loop only plans and queues). Every delivery is a document in
MongoDB alert_deliveries with its status (pending, sent, failed with the reason,
capped), planned once per alert, recipient and channel, so a redelivered quote never
sends twice; emails still pending at a stop go out at the next start.

Recipients: ALERT_EMAIL_RECIPIENTS and ALERT_WEBHOOK_URL get every alert; each user
with alerts on gets those passing their watchlist up to their daily cap, by email
and, when they gave one, by webhook; a user with a stricter threshold of their own
gets their own rule's alerts of that kind instead (deliver_user_alert).
"""

from __future__ import annotations

import queue
import smtplib
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from common import webhook
from common.clock import utc_now
from common.mailer import SmtpMailer, build_message, failure_reason
from config import Settings
from database.mongo import alerts as mongo_alerts
from database.mongo import user_rules as user_rules_db
from streaming.alert_rules import Alert, UserRules, market_day, render_email, render_webhook_text, user_wants
from streaming.user_alert_rules import UserAlert

EMAIL, WEBHOOK = "email", "webhook"
SYSTEM = "system"


def user_rules(doc: dict[str, Any], settings: Settings) -> UserRules:
    """A user's rules; a missing or too-low threshold means the system's (the web form
    refuses lower ones; this keeps alert_log the system's record even for old documents)."""
    def at_least(value: Any, floor: float) -> float:
        return max(float(value), floor) if isinstance(value, int | float) else floor

    cap = doc.get("alert_daily_cap")

    def stricter(value: Any, system: float) -> bool:
        return isinstance(value, int | float) and float(value) > system

    return UserRules(
        user_id=str(doc["_id"]), email=doc.get("email") or "", enabled=bool(doc.get("alert_opt_in")),
        watchlist=tuple(doc.get("watchlist") or ()),
        price_threshold=at_least(doc.get("alert_price_threshold"), settings.price_change_threshold),
        volume_multiplier=at_least(doc.get("alert_volume_multiplier"), settings.volume_threshold_multiplier),
        daily_cap=int(cap) if isinstance(cap, int) and cap > 0 else settings.alert_user_daily_cap,
        webhook_url=doc.get("alert_webhook_url") or None,
        own_price=stricter(doc.get("alert_price_threshold"), settings.price_change_threshold),
        own_volume=stricter(doc.get("alert_volume_multiplier"), settings.volume_threshold_multiplier),
    )


@dataclass
class Outcome:
    """What the email part of one alert came to (alert_log's email_status)."""

    status: str  # sent, failed, disabled
    error: str | None


def email_outcome(emails: list[dict[str, Any]]) -> Outcome:
    """alert_log's email_status from the email deliveries of one alert, once they are done."""
    tried = [d for d in emails if d["status"] in ("sent", "failed")]
    failed = [d for d in tried if d["status"] == "failed"]
    if failed:
        return Outcome("failed", "; ".join(dict.fromkeys(d["error"] for d in failed))[:512])
    if not tried:  # every recipient capped
        return Outcome("disabled", None)
    return Outcome("sent", None)


Finished = Callable[[str, Outcome], None]  # (alert_key, outcome): the alert's email status, stored


@dataclass
class EmailJob:
    """The email deliveries of one alert (each document has its subject and text)."""

    alert_key: str
    docs: list[dict[str, Any]]
    finished: Finished | None = None
    done: threading.Event = field(default_factory=threading.Event)


class EmailQueue:
    """Bounded queue + sender threads: the alerts loop hands an alert's emails over and
    goes on with the next quote whatever the SMTP server does."""

    def __init__(self, send_one: Callable[[dict[str, Any]], None], size: int, workers: int,
                 report_error: Callable[..., None]) -> None:
        self._send_one = send_one
        self._jobs: queue.Queue[EmailJob | None] = queue.Queue(maxsize=size)
        self._workers = workers
        self._threads: list[threading.Thread] = []
        self._report_error = report_error
        # Deliveries queued or being sent: a redelivered quote re-plans its alert (the status is
        # still pending) and must not queue the same email twice.
        self._inflight: set[str] = set()
        self._lock = threading.Lock()

    def start(self) -> None:
        for n in range(self._workers):
            thread = threading.Thread(target=self._work, name=f"alert-email-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def submit(self, job: EmailJob) -> bool:
        """False when the queue is full (the deliveries stay pending: the next start sends them)."""
        with self._lock:
            job.docs = [d for d in job.docs if d["_id"] not in self._inflight]
            if not job.docs:
                return True
            try:
                self._jobs.put_nowait(job)
            except queue.Full:
                return False
            self._inflight.update(d["_id"] for d in job.docs)
        return True

    def close(self, timeout: float = 5.0) -> None:
        """Stop the senders; what is still queued stays pending in MongoDB for the next start."""
        while True:
            try:
                self._jobs.get_nowait()
            except queue.Empty:
                break
        for _ in self._threads:
            try:
                self._jobs.put(None, timeout=timeout)
            except queue.Full:
                break
        for thread in self._threads:
            thread.join(timeout)

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                for doc in job.docs:
                    if doc["status"] == "pending":
                        self._send_one(doc)
                if job.finished is not None:
                    job.finished(job.alert_key, email_outcome(job.docs))
            except Exception:  # noqa: BLE001 - one alert's bookkeeping must not end the sender thread
                self._report_error("alert %s: email bookkeeping failed", job.alert_key, exc_info=True)
            finally:
                with self._lock:
                    self._inflight.difference_update(d["_id"] for d in job.docs)
                job.done.set()


class Deliveries:
    def __init__(self, settings: Settings, db: Database, mailer: SmtpMailer, logger: Any,
                 clock: Callable[[], datetime] = utc_now, finished: Finished | None = None) -> None:
        self.settings = settings
        self.finished = finished  # stores a system alert's email status (alert_history, alert_log)
        self.db = db
        self.mailer = mailer
        self.log = logger
        self.clock = clock
        # The operator's lists (never the user's): http hosts, and internal hosts a webhook may reach.
        self.webhook_policy = webhook.Policy.of(settings.webhook_allowed_http_hosts,
                                                settings.webhook_allowed_internal_hosts)
        self.system_webhook = settings.alert_webhook_url or None
        if self.system_webhook and (problem := self._url_problem(self.system_webhook)):
            self.log.error("ALERT_WEBHOOK_URL ignored: %s", problem)
            self.system_webhook = None
        self.dispatcher = webhook.Dispatcher(
            self._webhook_result, timeout=settings.webhook_timeout_seconds, max_attempts=settings.webhook_max_attempts,
            retry_pause=settings.webhook_retry_seconds, queue_size=settings.webhook_queue_size,
            per_owner=settings.webhook_pending_per_user, workers=settings.webhook_workers,
            report_error=self.log.error, policy=self.webhook_policy)
        self.emails = EmailQueue(self._send_email, settings.alert_email_queue_size, settings.alert_email_workers,
                                 self.log.error)

    def start(self) -> None:
        # Webhooks left pending by a stop or crash (today's and yesterday's) go out now,
        # queued before the workers start so the per-user limit sees them all.
        today = market_day(self.clock(), self.settings.tz)
        days = [today.isoformat(), (today - timedelta(days=1)).isoformat()]
        for doc in mongo_alerts.unfinished_deliveries(self.db, WEBHOOK, days):
            try:
                self._submit(doc)
            except Exception:  # noqa: BLE001 - one odd stored delivery must not stop the service's start
                self.log.exception("pending webhook %s not resent", doc.get("_id"))
        self.dispatcher.start()
        pending: dict[str, list[dict[str, Any]]] = {}
        for doc in mongo_alerts.unfinished_deliveries(self.db, EMAIL, days):
            if doc.get("text"):  # (planned before emails carried their text: left as they are)
                pending.setdefault(doc["alert_key"], []).append(doc)
        self.emails.start()
        for key, docs in pending.items():
            self._queue_emails(key, docs)
        if pending:
            self.log.info("%d alert(s) with emails pending at the last stop queued again", len(pending))

    def close(self) -> None:
        self.dispatcher.close()
        self.emails.close()

    # ------------------------------------------------------------------ planning
    def plan(self, alert: Alert) -> list[dict[str, Any]]:
        """Record (once) every delivery this alert should have; returns the stored ones."""
        day = market_day(alert.quote_timestamp, self.settings.tz).isoformat()
        now = self.clock()
        planned: list[dict[str, Any]] = []
        subject, email_text = render_email(alert)
        webhook_text = render_webhook_text(alert)

        def add(channel: str, recipient: str, target: str, user_id: str | None, status: str = "pending",
                error: str | None = None, url: str | None = None) -> None:
            doc = {"_id": f"{alert.key}|{channel}|{recipient}", "alert_key": alert.key, "symbol": alert.symbol,
                   "rule": alert.rule, "message": alert.message, "quote_timestamp": alert.quote_timestamp, "day": day,
                   "channel": channel, "recipient": recipient, "target": target,
                   "user_id": user_id, "status": status, "error": error, "attempts": 0, "created_at": now,
                   "updated_at": now, "url": url, "text": webhook_text if channel == WEBHOOK else email_text,
                   "subject": subject if channel == EMAIL else None}
            planned.append(mongo_alerts.plan_delivery(self.db, doc)[0])

        system_addresses = list(dict.fromkeys(
            a.strip().lower() for a in self.settings.alert_email_recipients if a.strip()))
        if self.mailer.enabled:
            for address in system_addresses:
                add(EMAIL, address, address, None)
        if self.system_webhook:
            add(WEBHOOK, SYSTEM, webhook.redact(self.system_webhook), None, url=self.system_webhook)
        existing = {d["user_id"] for d in mongo_alerts.deliveries_for(self.db, alert_key=alert.key) if d["user_id"]}
        for doc in mongo_alerts.alert_subscribers(self.db, alert.symbol):
            rules = user_rules(doc, self.settings)
            if not user_wants(rules, alert):
                continue
            status, error = "pending", None
            if rules.user_id not in existing and (
                    mongo_alerts.counted_alerts(self.db, rules.user_id, day) >= rules.daily_cap):
                status, error = "capped", f"daily cap of {rules.daily_cap} alert(s) reached"
            if self.mailer.enabled and rules.email and rules.email.lower() not in system_addresses:
                # (An address in ALERT_EMAIL_RECIPIENTS gets every alert once already.)
                add(EMAIL, rules.user_id, rules.email, rules.user_id, status, error)
            if rules.webhook_url:
                add(WEBHOOK, rules.user_id, webhook.redact(rules.webhook_url), rules.user_id, status, error,
                    url=rules.webhook_url)
            if status == "capped" and rules.user_id not in existing:
                self.log.info("alert %s not sent to %s: %s", alert.key, rules.email, error)
        return planned

    # ------------------------------------------------------------------ sending
    def send(self, alert: Alert, planned: list[dict[str, Any]]) -> Outcome:
        """Queue the pending deliveries (emails and webhooks); never waits for a server.
        The outcome is "pending" while emails are on their way (`finished` stores the final one)."""
        for doc in planned:
            if doc["channel"] == WEBHOOK and doc["status"] == "pending":
                self._submit(doc)
        emails = [d for d in planned if d["channel"] == EMAIL]
        if not any(d["status"] == "pending" for d in emails):
            return email_outcome(emails) if emails else Outcome("disabled", None)
        self._queue_emails(alert.key, emails)
        return Outcome("pending", None)

    def deliver_user_alert(self, alert: UserAlert) -> None:
        """Plan (once) and queue the deliveries of a user's own alert: to that user only,
        at a confirmed address, within their daily cap."""
        doc = user_rules_db.recipient(self.db, alert.user_id)
        if doc is None:
            return
        rules = user_rules(doc, self.settings)
        if not (self.mailer.enabled and rules.email) and not rules.webhook_url:
            return  # no channel: the alert is stored (user_alerts), nothing to plan or count
        shaped = alert.as_alert()
        day = market_day(alert.quote_timestamp, self.settings.tz).isoformat()
        now = self.clock()
        existing = bool(mongo_alerts.deliveries_for(self.db, alert.user_id, alert_key=alert.key, limit=1))
        status, error = "pending", None
        if not existing and mongo_alerts.counted_alerts(self.db, rules.user_id, day) >= rules.daily_cap:
            status, error = "capped", f"daily cap of {rules.daily_cap} alert(s) reached"
            self.log.info("alert %s not sent to %s: %s", alert.key, rules.email, error)
        subject, text = render_email(shaped)
        base = {"alert_key": alert.key, "symbol": alert.symbol, "rule": alert.rule, "message": alert.message,
                "quote_timestamp": alert.quote_timestamp, "day": day, "recipient": rules.user_id,
                "user_id": rules.user_id, "status": status, "error": error, "attempts": 0, "created_at": now,
                "updated_at": now}
        planned = []
        if self.mailer.enabled and rules.email:
            planned.append(mongo_alerts.plan_delivery(self.db, {
                **base, "_id": f"{alert.key}|{EMAIL}|{rules.user_id}", "channel": EMAIL, "target": rules.email,
                "url": None, "text": text, "subject": subject})[0])
        if rules.webhook_url:
            planned.append(mongo_alerts.plan_delivery(self.db, {
                **base, "_id": f"{alert.key}|{WEBHOOK}|{rules.user_id}", "channel": WEBHOOK,
                "target": webhook.redact(rules.webhook_url), "url": rules.webhook_url,
                "text": render_webhook_text(shaped), "subject": None})[0])
        for d in planned:
            if d["channel"] == WEBHOOK and d["status"] == "pending":
                self._submit(d)
        emails = [d for d in planned if d["channel"] == EMAIL and d["status"] == "pending"]
        if emails:
            self._queue_emails(alert.key, emails, finished=False)

    def _queue_emails(self, alert_key: str, docs: list[dict[str, Any]], finished: bool = True) -> bool:
        if self.emails.submit(EmailJob(alert_key, docs, self.finished if finished else None)):
            return True
        self.log.error("alert %s: %d email(s) not queued (ALERT_EMAIL_QUEUE_SIZE reached); they stay pending "
                       "and go out at the next start", alert_key, len(docs))
        return False

    def _send_email(self, doc: dict[str, Any]) -> None:
        """One message per recipient (nobody sees the others' addresses), in a sender thread."""
        try:
            self.mailer.send(build_message(self.settings.email_sender, doc["target"], doc.get("subject") or "",
                                           doc.get("text") or ""))
            doc["status"], doc["error"] = "sent", None
            self.log.info("alert %s emailed", doc["alert_key"])
        except (smtplib.SMTPException, OSError, RuntimeError) as exc:
            # Stored (and shown without login on /api/alert-history): no address; the log has the detail.
            doc["status"], doc["error"] = "failed", failure_reason(exc)
            self.log.warning("alert %s: email to %r failed: %s", doc["alert_key"], doc["target"], exc)
        doc["attempts"] = doc.get("attempts", 0) + 1
        mongo_alerts.set_delivery_status(self.db, doc["_id"], doc["status"], doc["error"], doc["attempts"],
                                         self.clock())

    def _url_problem(self, url: str) -> str | None:
        found = webhook.check_url(url, self.webhook_policy)
        return found if isinstance(found, str) else None

    def _submit(self, doc: dict[str, Any]) -> None:
        url = doc.get("url") or ""
        if problem := self._url_problem(url):
            self._webhook_result(doc["_id"], doc.get("attempts", 0),
                                 webhook.WebhookError(f"URL refused: {problem}", retry=False), True)
            return
        job = webhook.Job(url, webhook.body(doc.get("text") or ""), doc["_id"], attempts=doc.get("attempts", 0),
                          owner=doc.get("user_id"))
        if refused := self.dispatcher.submit(job):
            self._webhook_result(doc["_id"], job.attempts, webhook.WebhookError(refused), True)

    def _webhook_result(self, delivery_id: str, attempts: int, error: webhook.WebhookError | None,
                        final: bool) -> None:
        """Users see the generic reason (stored); operators the detail (logged)."""
        status = "sent" if error is None else "failed"
        mongo_alerts.set_delivery_status(self.db, delivery_id, status, error and error.reason, attempts, self.clock())
        if error is None:
            self.log.info("webhook delivered: %s", delivery_id)
        else:
            self.log.warning("webhook %s failed (try %d%s): %s", delivery_id, attempts, ", giving up" if final else "",
                             error.detail)
