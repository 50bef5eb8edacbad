"""Webhooks: the URL and address rules (pure), the Slack/Discord body, and the sender
and dispatcher against local receivers over real sockets (ok, refusing, slow, down,
trickling bytes, TLS with a test authority), with names resolved to private addresses."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from common import webhook, webhook_rules
from common.webhook_rules import (
    REASON_DNS,
    REASON_INTERNAL,
    REASON_INTERNAL_ERROR,
    REASON_REFUSED,
    REASON_TIMEOUT,
    REASON_TLS_CERT,
    REASON_USER_BUSY,
    Policy,
)
from common.webhook_send import system_resolver
from config import Settings
from scripts.waiting import free_port, wait_for
from tests.support.tls_certs import make_ca
from tests.support.trickle_receiver import TrickleReceiver
from tests.support.webhook_receiver import WebhookReceiver

# The operator lists the local receivers explicitly (as WEBHOOK_ALLOWED_HTTP_HOSTS and
# WEBHOOK_ALLOWED_INTERNAL_HOSTS would); without this every post below would be refused.
LOCAL = Policy.of(["127.0.0.1"], ["127.0.0.1"])


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.stop()


@pytest.fixture
def trickler() -> Iterator[TrickleReceiver]:
    slow = TrickleReceiver().start()
    yield slow
    slow.stop()


class Results:
    """What a dispatcher reported, thread-safe: (ref, attempts, reason or None, final)."""

    def __init__(self) -> None:
        self.rows: list[tuple[Any, int, str | None, bool]] = []
        self.at: dict[Any, float] = {}  # ref -> when its last result came (monotonic)
        self.lock = threading.Lock()

    def __call__(self, ref: Any, attempts: int, error: webhook.WebhookError | None, final: bool) -> None:
        with self.lock:
            self.rows.append((ref, attempts, error.reason if error else None, final))
            self.at[ref] = time.monotonic()

    def of(self, ref: Any) -> list[tuple[int, str | None, bool]]:
        with self.lock:
            return [(a, e, f) for r, a, e, f in self.rows if r == ref]


# ---------------------------------------------------------------------- URL rules (pure)

@pytest.mark.parametrize(("url", "allowed", "problem"), [
    ("https://hooks.slack.com/services/T0/B0/xyz", [], None),
    ("https://discord.com/api/webhooks/1/abc", [], None),
    ("https://hooks.example.com:8443/x?a=1#frag", [], None),
    ("https://bücher.example/hook", [], None),  # IDNA
    ("https://8.8.8.8/hook", [], None),  # a public address literal
    ("http://receiver:8080/hook", ["receiver"], None),
    ("http://RECEIVER:8080/hook", ["receiver"], None),
    ("http://example.com/hook", ["receiver"], "Only https URLs"),
    ("http://example.com/hook", [], "Only https URLs"),
    ("ftp://example.com/hook", [], "Only https URLs"),
    ("javascript:alert(1)", [], "Only https URLs"),
    ("file:///etc/passwd", [], "Only https URLs"),
    ("gopher://example.com:25/x", [], "Only https URLs"),
    ("https://user:pw@example.com/hook", [], "user name or password"),
    ("https://user@example.com/hook", [], "user name or password"),
    ("https://@example.com/hook", [], "user name or password"),
    ("https://hooks.slack.com@10.0.0.1/x", [], "user name or password"),
    ("https://example.com\\@10.0.0.1/x", [], "not a valid URL"),
    ("https:///nohost", [], "no host"),
    ("https://example.com:99999/x", [], "not a valid URL"),
    ("https://example.com:0/x", [], "not a valid URL"),
    ("https://example.com:+443/x", [], "not a valid URL"),
    ("https://example.com:22/x", [], "usual web ports"),
    ("https://example.com:6379/x", [], "usual web ports"),
    ("https://example.com/a b", [], "no spaces"),
    ("https://example.com/a\x00b", [], "not a valid URL"),
    ("https://example.com/é", [], "percent-encoded"),
    ("https://a..b/x", [], "malformed host"),
    ("https://.com/x", [], "malformed host"),
    ("https://" + "a" * 64 + ".com/x", [], "malformed host"),
    ("https://-a-.com/x", [], "malformed host"),
    ("https://xn--/x", [], "malformed host"),
    ("https://ex ample.com/x", [], "no spaces"),
    ("https://1.2.3.4.5/x", [], "malformed IPv4"),
    ("https://256.1.1.1/x", [], "malformed IPv4"),
    ("https://08.8.8.8/x", [], "malformed IPv4"),  # not octal, not decimal
    ("http://[::1", [], "not a valid URL"),
    ("https://[fe80::1%25eth0]/x", [], "not a valid URL"),
    ("https://[not:an:address]/x", [], "not a valid URL"),
    ("https://134744072/x", [], "four decimal numbers"),  # 8.8.8.8 in one number: public, but say it plainly
    ("", [], "1 to 500"),
    ("https://example.com/" + "a" * 600, [], "1 to 500"),
])
def test_url_rule(url: str, allowed: list[str], problem: str | None) -> None:
    found = webhook.url_problem(url, allowed)
    assert (found is None) if problem is None else (found is not None and problem in found), found


INTERNAL_SPELLINGS = [
    "127.0.0.1", "127.1", "127.0.1", "2130706433", "0x7f000001", "0x7f.0.0.1", "0177.0.0.1", "0177.1",
    "017700000001", "127.255.255.254", "[::1]", "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::ffff:7f00:1]",
    "[::127.0.0.1]", "[64:ff9b::127.0.0.1]", "[2002:7f00:1::]", "0.0.0.0", "0", "[::]", "169.254.169.254",
    "0xa9fea9fe", "2852039166", "[::ffff:169.254.169.254]", "[fe80::1]", "10.0.0.1", "10.255.255.255", "012.1",
    "172.16.0.1", "172.31.255.254", "192.168.1.1", "0xc0a80101", "100.64.0.1", "100.127.255.254", "[fc00::1]",
    "[fd12:3456::1]", "[fec0::1]", "224.0.0.1", "239.255.255.250", "[ff02::1]", "240.0.0.1", "255.255.255.255",
    "198.18.0.1", "192.0.2.1", "[2001:db8::1]", "localhost", "LOCALHOST", "localhost.", "api.localhost",
    "a.b.localhost",
]


@pytest.mark.parametrize("host", INTERNAL_SPELLINGS)
def test_internal_hosts_are_refused_in_every_spelling(host: str) -> None:
    for scheme in ("https", "http"):
        found = webhook.url_problem(f"{scheme}://{host}/hook", [host.strip("[]")])
        assert found is not None and REASON_INTERNAL in found, (host, found)


@pytest.mark.parametrize(("text", "address"), [
    ("127.1", "127.0.0.1"), ("2130706433", "127.0.0.1"), ("0x7f000001", "127.0.0.1"), ("0177.0.0.1", "127.0.0.1"),
    ("0x7f.1", "127.0.0.1"), ("10.1.2", "10.1.0.2"), ("0", "0.0.0.0"), ("8.8.8.8", "8.8.8.8"),
    ("1.2.3.4.5", None), ("256.0.0.1", None), ("1.2.3.256", None), ("1.65536", "1.1.0.0"), ("1.16777216", None),
    ("09", None), ("", None),
    ("4294967296", None), ("0xg", None),
])
def test_ipv4_spellings_are_read_as_inet_aton_reads_them(text: str, address: str | None) -> None:
    found = webhook_rules.parse_ipv4(text)
    assert (str(found) if found else None) == address
    try:  # the C library agrees (what a resolver would have made of the name)
        libc = socket.inet_ntoa(socket.inet_aton(text)) if text else None
    except OSError:
        libc = None
    assert libc == address


@pytest.mark.parametrize(("address", "public"), [
    ("8.8.8.8", True), ("1.1.1.1", True), ("2606:4700:4700::1111", True), ("64:ff9b::808:808", True),
    ("127.0.0.1", False), ("10.0.0.1", False), ("172.16.5.4", False), ("192.168.0.10", False), ("100.64.0.1", False),
    ("169.254.169.254", False), ("0.0.0.0", False), ("224.0.0.251", False), ("240.0.0.1", False),
    ("::1", False), ("::", False), ("::ffff:10.0.0.1", False), ("64:ff9b::a00:1", False), ("2002:a00:1::", False),
    ("2001:0:4136:e378:8000:63bf:f5ff:fffe", False),  # Teredo whose client is 10.0.0.1
    ("fc00::1", False), ("fe80::1", False), ("ff05::2", False), ("2001:db8::1", False),
])
def test_public_addresses(address: str, public: bool) -> None:
    assert webhook_rules.is_public(ipaddress.ip_address(address)) is public


def test_internal_hosts_only_where_the_operator_lists_them() -> None:
    lan = Policy.of(["chat.lan", "10.0.5.7"], ["chat.lan", "10.0.5.7", "192.168.7.0/24"])
    assert webhook.check_url("http://chat.lan:8065/hooks/x", lan).listed  # type: ignore[union-attr]
    assert webhook.check_url("http://10.0.5.7:3000/x", lan).listed  # type: ignore[union-attr]
    assert webhook.check_url("https://192.168.7.20:9443/x", lan).listed  # type: ignore[union-attr]
    # Nothing the user writes widens the list: other spellings, neighbours, other names.
    for url in ("http://10.0.5.8/x", "https://192.168.8.1/x", "https://0xa000507/x", "https://167773447/x",
                "https://10.0.5.07/x", "https://chat.lan.localhost/x", "https://127.0.0.1/x"):
        found = webhook.check_url(url, lan)
        assert isinstance(found, str), url
    assert isinstance(webhook.check_url("https://chat.lan.evil.example:8065/x", lan), str)  # the port rule applies
    target = webhook.check_url("https://chat.lan.evil.example/x", lan)
    ip = ipaddress.ip_address("10.0.5.9")
    assert not isinstance(target, str) and not webhook_rules.address_allowed(ip, target, lan)
    assert webhook_rules.address_allowed(ipaddress.ip_address("192.168.7.1"), target, lan)  # a listed range
    listed = webhook.check_url("http://chat.lan/x", lan)
    assert not isinstance(listed, str) and webhook_rules.address_allowed(ip, listed, lan)
    for never in ("0.0.0.0", "::", "224.0.0.1"):  # not even for a listed name
        assert not webhook_rules.address_allowed(ipaddress.ip_address(never), listed, lan)
    with pytest.raises(ValueError, match="not a host name"):
        Policy.of([], ["bad host!"])
    with pytest.raises(ValidationError, match="not a host name, address or CIDR: 'bad host!'"):
        Settings(_env_file=None, webhook_allowed_internal_hosts="chat.lan,bad host!")  # type: ignore[call-arg]
    read = Settings(_env_file=None, webhook_allowed_internal_hosts="Chat.LAN., 10.0.0.0/8")  # type: ignore[call-arg]
    assert read.webhook_allowed_internal_hosts == ["chat.lan", "10.0.0.0/8"]


@pytest.mark.parametrize("url", [
    "https://a..b/x", "https://" + "a" * 64 + ".com/x", "https://.com/x", "http://[::1", "https://[", "https://]",
    "https://:443", "https://example.com:", "https://[::1]]:80/", "https://%00/", "https://\u2100.com/",
    "https://\udcff.com/", "https://ß.de/", "https://" + "a." * 130 + "com/", "https://exa\u00admple.com/",
    "://x", "https:", "https:/", "https://?", "https://#", "https://x" + ":1" * 5, "HTTPS://EXAMPLE.COM/x",
    "https://[::ffff:999.1.1.1]/", "https://0x/", "https://0x.0x.0x.0x/", "https://1e3/", None, 42,
])
def test_the_url_rule_never_raises(url: Any) -> None:
    found = webhook.check_url(url, LOCAL)
    assert isinstance(found, str | webhook_rules.Target)


def test_body_is_read_by_slack_and_discord_and_fits_discord() -> None:
    assert webhook.body("hi") == {"text": "hi", "content": "hi"}
    long = webhook.body("x" * 5000)
    assert len(long["content"]) <= 2000 and long["text"] == long["content"]
    assert webhook.redact("https://hooks.slack.com/services/T0/B0/secret") == "https://hooks.slack.com/…"
    assert webhook.redact("https://user:pw@example.com/x") == "https://example.com/…"


@pytest.mark.parametrize(("stored", "shown"), [
    (None, None), ("HTTP 500", "HTTP 500"), ("HTTP 500 <boom>", "HTTP 500"), (REASON_TIMEOUT, REASON_TIMEOUT),
    ("URL refused: Only https URLs are accepted.", "URL refused: Only https URLs are accepted."),
    ("unreachable: [Errno 111] Connection refused", REASON_INTERNAL_ERROR),
    ("connection failed: [SSL: WRONG_VERSION_NUMBER] wrong version number (_ssl.c:1006)", REASON_INTERNAL_ERROR),
    ("timed out after 5s", REASON_INTERNAL_ERROR),
])
def test_users_see_only_generic_reasons(stored: str | None, shown: str | None) -> None:
    assert webhook.shown_reason(stored) == shown


# ---------------------------------------------------------------------- one post (real sockets)

def test_post_reports_a_generic_reason(receiver: WebhookReceiver) -> None:
    webhook.post(receiver.url("/ok"), webhook.body("AAPL up"), timeout=2, policy=LOCAL)
    got = receiver.at("/ok")
    assert [r.body for r in got] == [{"text": "AAPL up", "content": "AAPL up"}]
    assert got[0].content_type == "application/json" and got[0].host == f"127.0.0.1:{receiver.port}"

    def reason(url: str, timeout: float = 2) -> webhook.WebhookError:
        with pytest.raises(webhook.WebhookError) as caught:
            webhook.post(url, webhook.body("x"), timeout=timeout, policy=LOCAL)
        return caught.value

    receiver.status["/no"] = 500
    assert str(reason(receiver.url("/no"))) == "HTTP 500"
    receiver.status["/moved"] = 302  # never followed: it could lead anywhere
    assert str(reason(receiver.url("/moved"))) == "HTTP 302"
    receiver.delay["/slow"] = 2.0
    assert str(reason(receiver.url("/slow"), timeout=0.3)) == REASON_TIMEOUT
    down = reason(f"http://127.0.0.1:{free_port()}/down")
    assert down.reason == REASON_REFUSED and "Connection refused" in down.detail  # the detail is for the logs
    tls_to_plain = reason(f"https://127.0.0.1:{receiver.port}/x")
    assert tls_to_plain.reason == "TLS failed" and "WRONG_VERSION_NUMBER" in tls_to_plain.detail
    # Without the operator's list, the same receiver is an internal address: nothing is sent.
    for url in (receiver.url("/ok"), receiver.url("/ok").replace("http:", "https:")):
        with pytest.raises(webhook.WebhookError, match=REASON_INTERNAL):
            webhook.post(url, webhook.body("x"), timeout=2, policy=Policy.of(["127.0.0.1"]))
    assert len(receiver.at("/ok")) == 1


@pytest.mark.parametrize("answer", [["10.0.0.1"], ["127.0.0.1"], ["::1"], ["::ffff:127.0.0.1"], ["169.254.169.254"],
                                    ["0.0.0.0"], ["100.64.1.1"], ["fd00::1"], ["8.8.8.8", "127.0.0.1"]])
def test_a_name_resolving_to_an_internal_address_is_refused(answer: list[str]) -> None:
    asked: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        asked.append((host, port))
        return answer

    # http is allowed to the name, so only the address check stands between it and the receiver.
    policy = Policy.of(["hooks.example.com"])
    with pytest.raises(webhook.WebhookError) as caught:
        webhook.post("http://hooks.example.com:8080/x", webhook.body("x"), timeout=2, policy=policy, resolve=resolve)
    assert caught.value.reason == REASON_INTERNAL and not caught.value.retry
    assert asked == [("hooks.example.com", 8080)]


def test_localhost_resolved_by_the_system_is_refused_without_a_connection(receiver: WebhookReceiver) -> None:
    # The name itself is refused by the URL rule; through a name the rule cannot know
    # ("receiver.example" here, resolved by the machine's resolver as "localhost"), the
    # address check refuses what the system's DNS answers.
    def system_localhost(_host: str, port: int) -> list[str]:
        return system_resolver("localhost", port)

    policy = Policy.of(["receiver.example"])
    with pytest.raises(webhook.WebhookError, match=REASON_INTERNAL):
        webhook.post("http://receiver.example:8080/x", webhook.body("x"), timeout=2, policy=policy,
                     resolve=system_localhost)
    with pytest.raises(webhook.WebhookError, match=REASON_INTERNAL):
        webhook.post(f"http://localhost:{receiver.port}/x", webhook.body("x"), timeout=2, policy=policy)
    assert receiver.received == []


def test_the_checked_address_is_the_one_connected_to(receiver: WebhookReceiver) -> None:
    """The name resolves once (to the listed 127.0.0.1); the post goes there with the
    name in the Host header, though the machine's DNS does not know the name at all."""
    calls: list[str] = []

    def resolve(host: str, _port: int) -> list[str]:
        calls.append(host)
        return ["127.0.0.1"] if len(calls) == 1 else ["10.9.9.9"]  # a rebinding second answer is never asked for

    policy = Policy.of(["hook.invalid"], ["hook.invalid"])
    webhook.post(f"http://hook.invalid:{receiver.port}/pinned", webhook.body("x"), timeout=2, policy=policy,
                 resolve=resolve)
    assert calls == ["hook.invalid"]
    assert [r.host for r in receiver.at("/pinned")] == [f"hook.invalid:{receiver.port}"]
    with pytest.raises(webhook.WebhookError, match=REASON_DNS):  # the real resolver: no such name
        webhook.post(f"http://hook.invalid:{receiver.port}/pinned", webhook.body("x"), timeout=2, policy=policy)


def test_tls_goes_to_the_checked_address_with_the_host_name_for_sni_and_the_certificate(tmp_path: Path) -> None:
    ca = make_ca(tmp_path, ["hooks.test"])
    hook = WebhookReceiver(tls=ca.server).start()
    try:
        policy = Policy.of([], ["hooks.test", "other.test"])
        resolve = {"hooks.test": ["127.0.0.1"], "other.test": ["127.0.0.1"]}
        webhook.post(f"https://hooks.test:{hook.port}/tls", webhook.body("x"), timeout=3, policy=policy,
                     resolve=lambda host, _port: resolve[host], tls=ca.client)
        assert [r.host for r in hook.at("/tls")] == [f"hooks.test:{hook.port}"]
        # Same address, another name: the certificate is checked against the name in the URL.
        with pytest.raises(webhook.WebhookError) as caught:
            webhook.post(f"https://other.test:{hook.port}/tls", webhook.body("x"), timeout=3, policy=policy,
                         resolve=lambda host, _port: resolve[host], tls=ca.client)
        assert caught.value.reason == REASON_TLS_CERT and "CERTIFICATE_VERIFY_FAILED" in caught.value.detail
        assert hook.sni == ["hooks.test", "other.test"] and len(hook.received) == 1
    finally:
        hook.stop()


def test_a_receiver_trickling_bytes_is_cut_at_the_deadline(trickler: TrickleReceiver) -> None:
    deadline = 1.0
    started = time.monotonic()
    with pytest.raises(webhook.WebhookError) as caught:
        webhook.post(trickler.url(), webhook.body("x"), timeout=deadline, policy=LOCAL)
    took = time.monotonic() - started
    assert caught.value.reason == REASON_TIMEOUT
    print(f"trickling receiver: post cut at {took:.2f} s with a deadline of {deadline:g} s")
    assert deadline <= took < deadline + 0.5
    wait_for(lambda: trickler.connections, timeout=5, what="the trickler seeing the sender hang up")


# ---------------------------------------------------------------------- the dispatcher

def test_dispatcher_never_blocks_and_retries_a_bounded_number_of_times(receiver: WebhookReceiver) -> None:
    results = Results()
    receiver.delay["/slow"] = 1.0
    receiver.status["/broken"] = 503
    sender = webhook.Dispatcher(results, timeout=0.3, max_attempts=2, retry_pause=0.05, queue_size=3, workers=1,
                                policy=LOCAL).start()
    try:
        started = time.monotonic()
        refused = [sender.submit(webhook.Job(receiver.url("/slow"), webhook.body(str(i)), f"slow{i}", owner=f"u{i}"))
                   for i in range(6)]
        assert time.monotonic() - started < 0.1  # the caller is never held up
        assert refused.count(webhook_rules.REASON_QUEUE_FULL) >= 2  # bounded: the rest is refused, not waited for
        wait_for(lambda: sender.pending() == 0, timeout=20, what="the queue drained")
        assert sender.submit(webhook.Job(receiver.url("/broken"), webhook.body("b"), "broken2")) is None
        assert sender.submit(webhook.Job(receiver.url("/ok"), webhook.body("fine"), "ok", owner="ann")) is None
        wait_for(lambda: results.of("ok") == [(1, None, True)], timeout=20, what="the good post after the bad ones")
        wait_for(lambda: len(results.of("broken2")) == 2, timeout=20, what="the broken receiver tried twice")
    finally:
        sender.close()
    assert results.of("broken2") == [(1, "HTTP 503", False), (2, "HTTP 503", True)]  # two tries, no more
    slow = [r for r in results.rows if str(r[0]).startswith("slow")]
    assert slow and all(e == REASON_TIMEOUT for _, _, e, _ in slow)


KILLERS = ["https://a..b/x", "https://" + "a" * 64 + ".com/x", "https://.com/x", "http://[::1",
           "https://example.com:99999/", "https://\u2100.com/", "https://example.com/\x00"]


def test_urls_that_used_to_kill_the_workers_fail_one_delivery_each(receiver: WebhookReceiver,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Such URLs passed the old rule and made the sender raise past the worker (both workers
    died, and again at every start). Now each fails its own delivery, as does a sender bug."""
    real_post = webhook.post

    def post_with_a_bug(url: str, *args: Any, **kwargs: Any) -> None:
        if url.endswith("/bug"):
            raise ZeroDivisionError("a bug in the sender")
        real_post(url, *args, **kwargs)

    monkeypatch.setattr(webhook, "post", post_with_a_bug)
    results = Results()
    errors: list[str] = []
    sender = webhook.Dispatcher(results, timeout=2, max_attempts=3, retry_pause=0.05, workers=1, policy=LOCAL,
                                report_error=errors.append).start()
    try:
        for n, url in enumerate([*KILLERS, receiver.url("/bug")]):
            assert sender.submit(webhook.Job(url, webhook.body("bad"), f"bad{n}", owner=f"user{n}")) is None
        assert sender.submit(webhook.Job(receiver.url("/ok"), webhook.body("good"), "good", owner="ann")) is None
        wait_for(lambda: results.of("good") == [(1, None, True)], timeout=20, what="the good post after the killers")
    finally:
        sender.close()
    for n in range(len(KILLERS)):
        assert results.of(f"bad{n}") == [(1, webhook_rules.REASON_URL, True)], KILLERS[n]  # once, final
    assert results.of(f"bad{len(KILLERS)}") == [(1, REASON_INTERNAL_ERROR, True)]
    assert [r.body["text"] for r in receiver.received] == ["good"]
    assert errors == []  # failed deliveries are results, not worker errors


def test_a_worker_survives_a_failing_result_hook(receiver: WebhookReceiver) -> None:
    seen: list[Any] = []
    errors: list[str] = []

    def flaky_store(ref: Any, attempts: int, error: webhook.WebhookError | None, final: bool) -> None:
        seen.append(ref)
        if ref == "first":
            raise RuntimeError("MongoDB hiccup")

    sender = webhook.Dispatcher(flaky_store, timeout=2, workers=1, policy=LOCAL, report_error=errors.append).start()
    try:
        sender.submit(webhook.Job(receiver.url("/a"), webhook.body("a"), "first"))
        sender.submit(webhook.Job(receiver.url("/b"), webhook.body("b"), "second"))
        wait_for(lambda: seen == ["first", "second"], timeout=20, what="both posts recorded")
    finally:
        sender.close()
    assert len(errors) == 1 and "MongoDB hiccup" in errors[0]


def test_pending_posts_are_limited_per_user() -> None:
    sender = webhook.Dispatcher(Results(), per_owner=3, queue_size=100)  # not started: everything stays pending
    url = "https://hooks.example.com/x"
    assert [sender.submit(webhook.Job(url, {}, f"ann{i}", owner="ann")) for i in range(5)] == [
        None, None, None, REASON_USER_BUSY, REASON_USER_BUSY]
    assert sender.submit(webhook.Job(url, {}, "bob", owner="bob")) is None  # others are not held up by ann
    assert all(sender.submit(webhook.Job(url, {}, f"sys{i}")) is None for i in range(5))  # the operator's own
    assert sender.pending() == 3 + 1 + 5


def test_trickling_receivers_hold_one_worker_per_user_while_others_are_served_on_time(
        receiver: WebhookReceiver, trickler: TrickleReceiver) -> None:
    """Two users with four trickling receivers each (every post cut at the deadline, retried
    after a pause, not in a worker); a third user's posts still go out at once."""
    deadline = 1.0
    results = Results()
    sender = webhook.Dispatcher(results, timeout=deadline, max_attempts=2, retry_pause=0.2, workers=3,
                                policy=LOCAL).start()
    try:
        for user in ("mallory", "trudy"):
            for n in range(4):
                assert sender.submit(webhook.Job(trickler.url(f"/{n}"), webhook.body("x"), f"{user}{n}",
                                                 owner=user)) is None
        waits: list[float] = []
        for n in range(3):
            submitted = time.monotonic()
            sender.submit(webhook.Job(receiver.url(f"/good{n}"), webhook.body(str(n)), f"good{n}", owner="ann"))
            wait_for(lambda n=n: results.of(f"good{n}"), timeout=10, interval=0.01, what="a good post")
            waits.append(results.at[f"good{n}"] - submitted)
            assert results.of(f"good{n}") == [(1, None, True)]
            wait_for(lambda n=n: len(results.of(f"mallory{n}")) == 2, timeout=20, what="a trickler cut twice")
        wait_for(lambda: all(len(results.of(f"{u}{n}")) == 2 for u in ("mallory", "trudy") for n in range(4)),
                 timeout=40, what="every trickler tried twice")
        wait_for(lambda: len(trickler.connections) == 16, timeout=5, what="the trickler seeing every sender hang up")
    finally:
        sender.close()
    cuts = [b - a for a, b in trickler.connections]
    print(f"good receiver served within {max(waits):.3f} s; trickling posts cut after "
          f"{min(cuts):.2f}-{max(cuts):.2f} s (deadline {deadline:g} s)")
    assert max(waits) < deadline / 2
    assert max(cuts) < deadline + 0.5
    for user in ("mallory", "trudy"):
        assert all(results.of(f"{user}{n}") == [(1, REASON_TIMEOUT, False), (2, REASON_TIMEOUT, True)]
                   for n in range(4))
