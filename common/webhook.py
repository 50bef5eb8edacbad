"""Webhooks: the URL rule, the JSON body and a non-blocking sender.

The URL rule is shared by the alerts service (before posting) and the web app
(account form validation): https only; plain http only to hosts the operator
lists in WEBHOOK_ALLOWED_HTTP_HOSTS (e.g. a receiver inside the compose network).
The body {"text": ..., "content": ...} is accepted by Slack incoming webhooks
(which read `text`) and Discord webhooks (which read `content`); each ignores the other.
"""

from __future__ import annotations

import json
import queue
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MAX_URL_LENGTH = 500
MAX_TEXT = 1900  # Discord refuses content over 2000 characters


class WebhookError(RuntimeError):
    """A post that did not get a 2xx answer (the message says why)."""


def url_problem(url: str, allowed_http_hosts: Iterable[str]) -> str | None:
    """Why a webhook URL is not accepted, or None when it is."""
    if not url or len(url) > MAX_URL_LENGTH:
        return f"A webhook URL is 1 to {MAX_URL_LENGTH} characters."
    if any(c.isspace() for c in url):
        return "A webhook URL has no spaces."
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a bad port
    except ValueError:
        return "That is not a valid URL."
    del port
    if parts.scheme not in ("https", "http"):
        return "Only https URLs are accepted."
    host = (parts.hostname or "").lower()
    if not host:
        return "The URL has no host."
    if parts.username or parts.password:
        return "A webhook URL may not carry a user name or password."
    if parts.scheme == "http" and host not in {h.strip().lower() for h in allowed_http_hosts if h.strip()}:
        return f"Only https URLs are accepted (http is allowed only to hosts the operator lists; {host} is not one)."
    return None


def redact(url: str) -> str:
    """scheme://host/… : webhook paths are secrets (Slack, Discord), never logged whole."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}/…"


def body(text: str) -> dict[str, str]:
    text = text if len(text) <= MAX_TEXT else text[: MAX_TEXT - 1] + "…"
    return {"text": text, "content": text}


def post(url: str, payload: dict[str, Any], timeout: float) -> None:
    """POST JSON; WebhookError with the reason unless the answer is 2xx. No redirects
    are followed (a redirect could lead to a host the URL rule would refuse)."""
    data = json.dumps(payload).encode()
    request = urllib.request.Request(url, data=data, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "stock-analysis-system-alerts"})
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(request, timeout=timeout) as resp:
            status = resp.status
    except urllib.error.HTTPError as exc:
        raise WebhookError(f"HTTP {exc.code} {exc.reason}") from None
    except TimeoutError:
        raise WebhookError(f"timed out after {timeout:g}s") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        raise WebhookError(f"timed out after {timeout:g}s" if isinstance(reason, TimeoutError)
                           else f"unreachable: {reason}") from None
    except OSError as exc:
        raise WebhookError(f"connection failed: {exc}") from None
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status}")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@dataclass
class Job:
    url: str
    payload: dict[str, Any]
    ref: Any  # the caller's handle (a delivery id), handed back with the outcome
    attempts: int = 0


@dataclass
class Dispatcher:
    """Posts in worker threads from a bounded queue, so a slow or dead receiver
    never blocks the caller. Each job is tried up to `max_attempts` times with a
    growing pause; `on_result(ref, attempts, error or None)` reports every attempt."""

    on_result: Callable[[Any, int, str | None], None]
    timeout: float = 5.0
    max_attempts: int = 3
    retry_pause: float = 2.0
    queue_size: int = 1000
    report_error: Callable[[str], None] = print
    _queue: queue.Queue[Job] = field(init=False)
    _stop: threading.Event = field(default_factory=threading.Event)
    workers: int = 2  # one dead receiver's timeouts do not hold up the others' posts
    _threads: list[threading.Thread] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._queue = queue.Queue(maxsize=self.queue_size)

    def start(self) -> Dispatcher:
        for n in range(self.workers):
            thread = threading.Thread(target=self._run, name=f"webhooks-{n}", daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def submit(self, job: Job) -> bool:
        """Queue a post; False (never blocking) when the queue is full."""
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            return False
        return True

    def pending(self) -> int:
        return self._queue.qsize()

    def close(self, wait: float = 5.0) -> None:
        """Stop after the jobs in hand (queued ones stay pending in the caller's records)."""
        self._stop.set()
        for thread in self._threads:
            thread.join(wait / max(len(self._threads), 1))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                job = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            while not self._stop.is_set():
                job.attempts += 1
                try:
                    post(job.url, job.payload, self.timeout)
                    error = None
                except WebhookError as exc:
                    error = str(exc)
                try:
                    self.on_result(job.ref, job.attempts, error)
                except Exception as exc:  # noqa: BLE001 - a store hiccup must not end the worker
                    self.report_error(f"could not record webhook result: {exc}")
                if error is None or job.attempts >= self.max_attempts:
                    break
                self._stop.wait(self.retry_pause * job.attempts)
