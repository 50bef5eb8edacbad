"""Webhooks: the JSON body and a non-blocking dispatcher (the rules are in
common/webhook_rules.py, one safe post in common/webhook_send.py).

The body {"text": ..., "content": ...} is accepted by Slack incoming webhooks
(which read `text`) and Discord webhooks (which read `content`); each ignores the other.
"""

from __future__ import annotations

import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from common.webhook_rules import (
    MAX_URL_LENGTH,
    REASON_INTERNAL,
    REASON_INTERNAL_ERROR,
    REASON_QUEUE_FULL,
    REASON_REFUSED,
    REASON_TIMEOUT,
    REASON_USER_BUSY,
    Policy,
    check_url,
    shown_reason,
    url_problem,
)
from common.webhook_send import Resolver, WebhookError, post, system_resolver

__all__ = ["MAX_URL_LENGTH", "REASON_INTERNAL", "REASON_INTERNAL_ERROR", "REASON_QUEUE_FULL", "REASON_REFUSED",
           "REASON_TIMEOUT", "REASON_USER_BUSY", "Dispatcher", "Job", "Policy", "WebhookError", "body", "check_url",
           "post", "redact", "shown_reason", "url_problem"]

MAX_TEXT = 1900  # Discord refuses content over 2000 characters


def redact(url: str) -> str:
    """scheme://host/… : webhook paths are secrets (Slack, Discord), never logged whole."""
    try:
        parts = urlsplit(url)
        return f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/…"
    except ValueError:
        return "(malformed URL)"


def body(text: str) -> dict[str, str]:
    text = text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
    return {"text": text, "content": text}


@dataclass
class Job:
    url: str
    payload: dict[str, Any]
    ref: Any  # the caller's handle (a delivery id), handed back with the outcome
    attempts: int = 0
    owner: str | None = None  # the user whose receiver this is (None: the operator's)
    due: float = 0.0  # monotonic time before which it is not tried


# on_result(ref, attempts, error or None, final): final = no further try will come.
ResultHook = Callable[[Any, int, WebhookError | None, bool], None]


@dataclass
class Dispatcher:
    """Posts in worker threads, so a slow or dead receiver never blocks the caller.

    Jobs wait in one bounded list ordered by due time; a failed try is put back with
    a later due time (retry_pause x tries) instead of holding a worker while it waits.
    Each owner (user) has at most `per_owner` jobs waiting and one post in flight, so
    one user's slow receivers take at most one worker. A worker survives anything one
    job does; the details go to `report_error` (the operators' log)."""

    on_result: ResultHook
    timeout: float = 5.0  # the whole post, not one read
    max_attempts: int = 3
    retry_pause: float = 2.0
    queue_size: int = 1000
    per_owner: int = 20
    report_error: Callable[[str], None] = print
    policy: Policy = field(default_factory=Policy)
    resolve: Resolver = system_resolver
    workers: int = 4
    _jobs: list[Job] = field(default_factory=list)
    _busy: set[str | None] = field(default_factory=set)
    _seq: int = 0
    _cond: threading.Condition = field(default_factory=threading.Condition)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> Dispatcher:
        for n in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"webhooks-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def submit(self, job: Job) -> str | None:
        """Queue a post (never blocking); None, or the reason it was refused."""
        with self._cond:
            if len(self._jobs) + len(self._busy) >= self.queue_size:
                return REASON_QUEUE_FULL
            if job.owner is not None and self._owned(job.owner) >= self.per_owner:
                return REASON_USER_BUSY
            job.due = time.monotonic()
            self._jobs.append(job)
            self._cond.notify()
        return None

    def pending(self) -> int:
        """Jobs waiting or in flight."""
        with self._cond:
            return len(self._jobs) + len(self._busy)

    def close(self, wait: float = 5.0) -> None:
        """Stop after the posts in hand (queued ones stay pending in the caller's records)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for thread in self._threads:
            thread.join(wait / max(len(self._threads), 1))

    def _owned(self, owner: str | None) -> int:
        return sum(1 for j in self._jobs if j.owner == owner) + (owner in self._busy)

    def _next(self) -> Job | None:
        """The job due first whose owner has no post in flight (waits up to 0.5 s)."""
        with self._cond:
            ready = [j for j in self._jobs if j.owner not in self._busy]
            job = min(ready, key=lambda j: j.due, default=None)
            now = time.monotonic()
            if job is None or job.due > now:
                self._cond.wait(min(0.5, job.due - now) if job else 0.5)
                return None
            self._jobs.remove(job)
            self._busy.add(job.owner)
            return job

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._next()
                if job is not None:
                    self._attempt(job)
            except Exception:  # noqa: BLE001 - nothing one job does may end a worker
                self.report_error(f"webhook worker error (the worker goes on): {traceback.format_exc()}")

    def _attempt(self, job: Job) -> None:
        again = False
        try:
            job.attempts += 1
            try:
                post(job.url, job.payload, self.timeout, self.policy, self.resolve)
                error = None
            except WebhookError as exc:
                error = exc
            except Exception as exc:  # noqa: BLE001 - a sender bug: one failed delivery, not a dead worker
                error = WebhookError(REASON_INTERNAL_ERROR, f"unexpected {type(exc).__name__}: {exc}\n"
                                     f"{traceback.format_exc()}", retry=False)
            again = error is not None and error.retry and job.attempts < self.max_attempts
            try:
                self.on_result(job.ref, job.attempts, error, not again)
            except Exception as exc:  # noqa: BLE001 - a store hiccup must not end the worker
                self.report_error(f"could not record webhook result: {exc}")
        finally:
            with self._cond:
                self._busy.discard(job.owner)
                if again and not self._stop.is_set():
                    job.due = time.monotonic() + self.retry_pause * job.attempts
                    self._jobs.append(job)
                self._cond.notify_all()
