"""Who receives an alert, and how: email (SMTP, in the service's thread) and
webhooks (a worker thread with a bounded queue, so a slow receiver never holds up
the stream). Every delivery is a document in MongoDB alert_deliveries with its
status (pending, sent, failed with the reason, capped), planned once per alert,
recipient and channel, so a redelivered quote never sends twice.

Recipients: ALERT_EMAIL_RECIPIENTS and ALERT_WEBHOOK_URL get every alert; each user
with alerts on gets those passing their own rules (watchlist, thresholds) up to
their daily cap, by email and, when they gave one, by webhook.
"""

from __future__ import annotations

import smtplib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo.database import Database

from common import webhook
from common.clock import utc_now
from common.mailer import SmtpMailer, build_message, failure_reason
from config import Settings
from database.mongo import alerts as mongo_alerts
from streaming.alert_rules import Alert, UserRules, market_day, render_email, render_webhook_text, user_wants

EMAIL, WEBHOOK = "email", "webhook"
SYSTEM = "system"


def user_rules(doc: dict[str, Any], settings: Settings) -> UserRules:
    """A user's rules; a missing or too-low threshold means the system's (the web form
    refuses lower ones; this keeps alert_log the system's record even for old documents)."""
    def at_least(value: Any, floor: float) -> float:
        return max(float(value), floor) if isinstance(value, int | float) else floor

    cap = doc.get("alert_daily_cap")
    return UserRules(
        user_id=str(doc["_id"]), email=doc.get("email") or "", enabled=bool(doc.get("alert_opt_in")),
        watchlist=tuple(doc.get("watchlist") or ()),
        price_threshold=at_least(doc.get("alert_price_threshold"), settings.price_change_threshold),
        volume_multiplier=at_least(doc.get("alert_volume_multiplier"), settings.volume_threshold_multiplier),
        daily_cap=int(cap) if isinstance(cap, int) and cap > 0 else settings.alert_user_daily_cap,
        webhook_url=doc.get("alert_webhook_url") or None,
    )


@dataclass
class Outcome:
    """What the email part of one alert came to (alert_log's email_status)."""

    status: str  # sent, failed, disabled
    error: str | None


class Deliveries:
    def __init__(self, settings: Settings, db: Database, mailer: SmtpMailer, logger: Any,
                 clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
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

    def close(self) -> None:
        self.dispatcher.close()

    # ------------------------------------------------------------------ planning
    def plan(self, alert: Alert) -> list[dict[str, Any]]:
        """Record (once) every delivery this alert should have; returns the stored ones."""
        day = market_day(alert.quote_timestamp, self.settings.tz).isoformat()
        now = self.clock()
        planned: list[dict[str, Any]] = []

        def add(channel: str, recipient: str, target: str, user_id: str | None, status: str = "pending",
                error: str | None = None, url: str | None = None) -> None:
            doc = {"_id": f"{alert.key}|{channel}|{recipient}", "alert_key": alert.key, "symbol": alert.symbol,
                   "rule": alert.rule, "message": alert.message, "quote_timestamp": alert.quote_timestamp, "day": day,
                   "channel": channel, "recipient": recipient, "target": target,
                   "user_id": user_id, "status": status, "error": error, "attempts": 0, "created_at": now,
                   "updated_at": now, "url": url, "text": render_webhook_text(alert) if channel == WEBHOOK else None}
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
        """Email the pending email deliveries now; queue the pending webhooks."""
        emails = [d for d in planned if d["channel"] == EMAIL]
        for doc in planned:
            if doc["channel"] == WEBHOOK and doc["status"] == "pending":
                self._submit(doc)
        if not emails:
            return Outcome("disabled", None)
        subject, text = render_email(alert)
        for doc in emails:
            if doc["status"] != "pending":
                continue
            # One message per recipient: nobody sees the others' addresses.
            try:
                self.mailer.send(build_message(self.settings.email_sender, doc["target"], subject, text))
                doc["status"], doc["error"] = "sent", None
            except (smtplib.SMTPException, OSError, RuntimeError) as exc:
                # Stored (and shown without login on /api/alert-history): no address; the log has the detail.
                doc["status"], doc["error"] = "failed", failure_reason(exc)
                self.log.warning("alert %s: email to %r failed: %s", alert.key, doc["target"], exc)
            doc["attempts"] = doc.get("attempts", 0) + 1
            mongo_alerts.set_delivery_status(self.db, doc["_id"], doc["status"], doc["error"], doc["attempts"],
                                             self.clock())
        sent = [d for d in emails if d["status"] in ("sent", "failed")]
        failed = [d for d in sent if d["status"] == "failed"]
        if failed:
            error = "; ".join(dict.fromkeys(d["error"] for d in failed))[:512]
            self.log.error("alert %s stored but email failed for %d of %d recipient(s): %s",
                           alert.key, len(failed), len(sent), error)
            return Outcome("failed", error)
        if not sent:  # every recipient capped
            return Outcome("disabled", None)
        self.log.info("alert %s emailed to %d recipient(s)", alert.key, len(sent))
        return Outcome("sent", None)

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
