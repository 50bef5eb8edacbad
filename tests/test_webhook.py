"""common/webhook.py: the URL rule, the Slack/Discord body, and the sender against a
local receiver (ok, refusing, slow, down)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from common import webhook
from scripts.waiting import free_port, wait_for
from tests.support.webhook_receiver import WebhookReceiver


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.stop()


@pytest.mark.parametrize(("url", "allowed", "problem"), [
    ("https://hooks.slack.com/services/T0/B0/xyz", [], None),
    ("https://discord.com/api/webhooks/1/abc", [], None),
    ("http://receiver:8080/hook", ["receiver"], None),
    ("http://RECEIVER:8080/hook", ["receiver"], None),
    ("http://example.com/hook", ["receiver"], "Only https URLs"),
    ("http://example.com/hook", [], "Only https URLs"),
    ("ftp://example.com/hook", [], "Only https URLs"),
    ("javascript:alert(1)", [], "Only https URLs"),
    ("https://user:pw@example.com/hook", [], "user name or password"),
    ("https:///nohost", [], "no host"),
    ("https://example.com:99999/x", [], "not a valid URL"),
    ("https://example.com/a b", [], "no spaces"),
    ("", [], "1 to 500"),
    ("https://example.com/" + "a" * 600, [], "1 to 500"),
])
def test_url_rule(url: str, allowed: list[str], problem: str | None) -> None:
    found = webhook.url_problem(url, allowed)
    assert (found is None) if problem is None else (found is not None and problem in found), found


def test_body_is_read_by_slack_and_discord_and_fits_discord() -> None:
    assert webhook.body("hi") == {"text": "hi", "content": "hi"}
    long = webhook.body("x" * 5000)
    assert len(long["content"]) <= 2000 and long["text"] == long["content"]
    assert webhook.redact("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…"


def test_post_reports_the_reason(receiver: WebhookReceiver) -> None:
    webhook.post(receiver.url("/ok"), webhook.body("AAPL up"), timeout=2)
    got = receiver.at("/ok")
    assert [r.body for r in got] == [{"text": "AAPL up", "content": "AAPL up"}]
    assert got[0].content_type == "application/json"
    receiver.status["/no"] = 500
    with pytest.raises(webhook.WebhookError, match="HTTP 500"):
        webhook.post(receiver.url("/no"), webhook.body("x"), timeout=2)
    receiver.status["/moved"] = 302  # never followed: it could lead anywhere
    with pytest.raises(webhook.WebhookError, match="HTTP 302"):
        webhook.post(receiver.url("/moved"), webhook.body("x"), timeout=2)
    receiver.delay["/slow"] = 2.0
    with pytest.raises(webhook.WebhookError, match="timed out"):
        webhook.post(receiver.url("/slow"), webhook.body("x"), timeout=0.3)
    with pytest.raises(webhook.WebhookError, match="unreachable|connection"):
        webhook.post(f"http://127.0.0.1:{free_port()}/down", webhook.body("x"), timeout=2)


def test_dispatcher_never_blocks_and_retries_a_bounded_number_of_times(receiver: WebhookReceiver) -> None:
    results: list[tuple[str, int, str | None]] = []
    lock = threading.Lock()

    def record(ref: str, attempts: int, error: str | None) -> None:
        with lock:
            results.append((ref, attempts, error))

    receiver.delay["/slow"] = 1.0
    receiver.status["/broken"] = 503
    sender = webhook.Dispatcher(record, timeout=0.3, max_attempts=2, retry_pause=0.05, queue_size=3, workers=1).start()
    try:
        started = time.monotonic()
        accepted = [sender.submit(webhook.Job(receiver.url("/slow"), webhook.body(str(i)), f"slow{i}"))
                    for i in range(6)]
        assert time.monotonic() - started < 0.1  # the caller is never held up
        assert accepted.count(False) >= 2  # a bounded queue: the rest is refused, not waited for
        assert sender.submit(webhook.Job(receiver.url("/broken"), webhook.body("b"), "broken")) in (True, False)
        wait_for(lambda: sender.pending() == 0, timeout=20, what="the queue drained")
        sender.submit(webhook.Job(receiver.url("/broken"), webhook.body("b"), "broken2"))
        sender.submit(webhook.Job(receiver.url("/ok"), webhook.body("fine"), "ok"))
        wait_for(lambda: ("ok", 1, None) in results, timeout=20, what="the good post after the bad ones")
    finally:
        sender.close()
    broken = [r for r in results if r[0] == "broken2"]
    assert [(a, "HTTP 503" in (e or "")) for _, a, e in broken] == [(1, True), (2, True)]  # two tries, no more
    slow = [r for r in results if r[0].startswith("slow")]
    assert slow and all("timed out" in (e or "") for _, _, e in slow)
