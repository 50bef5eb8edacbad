"""One webhook POST, safe against hostile URLs and receivers.

- The URL is checked (common.webhook_rules) and parsed once; the request is built
  from that parse, so checker and sender cannot read the URL differently.
- The host is resolved here, every address is checked, and the connection goes to
  an address that was checked: a second DNS answer (rebinding) is never used.
  The Host header, TLS SNI and certificate check still use the host name.
- One deadline for the whole post (DNS, connect, TLS, request, answer): a timer
  shuts the socket down when it passes, so a receiver trickling bytes cannot hold
  a worker longer than `timeout`.
- Every failure is a WebhookError: `reason` is generic (for users), `detail` is
  for the operators' logs.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import http.client
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Callable
from typing import Any

from common.webhook_rules import (
    REASON_BROKEN,
    REASON_DNS,
    REASON_INTERNAL,
    REASON_REFUSED,
    REASON_TIMEOUT,
    REASON_TLS,
    REASON_TLS_CERT,
    REASON_UNREACHABLE,
    REASON_URL,
    IPAddress,
    Policy,
    Target,
    address_allowed,
    check_url,
)

# host, port -> the addresses it resolves to (tests give names that resolve to private ones)
Resolver = Callable[[str, int], list[str]]
USER_AGENT = "stock-analysis-system-alerts"
_RESOLVERS = concurrent.futures.ThreadPoolExecutor(max_workers=4, thread_name_prefix="webhook-dns")
_TLS = ssl.create_default_context()


class WebhookError(RuntimeError):
    """A post that did not get a 2xx answer: `reason` for users, `detail` for the logs."""

    def __init__(self, reason: str, detail: str = "", retry: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.detail = detail or reason
        self.retry = retry  # False when trying again cannot help (refused by the rules)


class DeadlinePassedError(Exception):
    pass


def system_resolver(host: str, port: int) -> list[str]:
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def post(url: str, payload: dict[str, Any], timeout: float, policy: Policy | None = None,
         resolve: Resolver = system_resolver, tls: ssl.SSLContext | None = None) -> None:
    """POST JSON within `timeout` seconds in all; WebhookError unless the answer is 2xx.
    No redirects are followed (a redirect could lead anywhere)."""
    policy = policy or Policy()
    target = check_url(url, policy)
    if isinstance(target, str):
        raise WebhookError(REASON_INTERNAL if REASON_INTERNAL in target else REASON_URL, f"URL refused: {target}",
                           retry=False)
    where = f"{target.scheme}://{target.host}:{target.port}"
    deadline = _Deadline(timeout)
    try:
        addresses = [target.ip] if target.ip is not None else _resolve(target, resolve, deadline, where)
        refused = [a for a in addresses if not address_allowed(a, target, policy)]
        if refused:  # one internal answer is enough to refuse: the name is not a public receiver's
            raise WebhookError(REASON_INTERNAL, f"{where} resolves to internal address {refused[0]}", retry=False)
        status = _exchange(target, addresses, json.dumps(payload).encode(), deadline, tls or _TLS, where)
    finally:
        deadline.close()
    if not 200 <= status < 300:
        raise WebhookError(f"HTTP {status}", f"{where} answered HTTP {status}",
                           retry=status in (408, 429) or status >= 500)


def _resolve(target: Target, resolve: Resolver, deadline: _Deadline, where: str) -> list[IPAddress]:
    future = _RESOLVERS.submit(resolve, target.host, target.port)
    try:
        found = future.result(timeout=deadline.remaining())
    except (concurrent.futures.TimeoutError, DeadlinePassedError):
        raise WebhookError(REASON_TIMEOUT, f"{where}: DNS did not answer within the deadline") from None
    except Exception as exc:  # noqa: BLE001 - whatever the resolver raises, the name did not resolve
        raise WebhookError(REASON_DNS, f"{where}: DNS failed: {exc}") from None
    addresses: list[IPAddress] = []
    for text in found:
        try:
            addresses.append(ipaddress.ip_address(text.split("%")[0]))
        except ValueError:
            continue
    if not addresses:
        raise WebhookError(REASON_DNS, f"{where}: no address")
    return addresses


def _exchange(target: Target, addresses: list[IPAddress], data: bytes, deadline: _Deadline, tls: ssl.SSLContext,
              where: str) -> int:
    """Send the request to the first checked address that accepts; the answer's status."""
    conn = _pinned_connection(target, addresses, deadline, tls)
    try:
        conn.request("POST", target.path, body=data, headers={
            "Content-Type": "application/json", "User-Agent": USER_AGENT, "Connection": "close"})
        response = conn.getresponse()
        if deadline.expired:  # cut short: the answer read may be a truncated one
            raise DeadlinePassedError()
        return response.status
    except Exception as exc:
        raise _classify(exc, deadline, where) from None
    finally:
        conn.close()


def _pinned_connection(target: Target, addresses: list[IPAddress], deadline: _Deadline,
                       tls: ssl.SSLContext) -> http.client.HTTPConnection:
    def dial(_address: tuple[str, int], _timeout: Any = None, _source: Any = None) -> socket.socket:
        last: Exception = DeadlinePassedError()
        for ip in addresses:
            try:
                sock = socket.create_connection((str(ip), target.port), timeout=deadline.remaining())
            except (OSError, DeadlinePassedError) as exc:
                last = exc
                continue
            deadline.watch(sock)
            return sock
        raise last

    conn: http.client.HTTPConnection
    if target.scheme == "https":
        conn = http.client.HTTPSConnection(target.host, target.port, timeout=deadline.seconds, context=tls)
    else:
        conn = http.client.HTTPConnection(target.host, target.port, timeout=deadline.seconds)
    # http.client opens its socket through this hook: every address it may use was checked above.
    conn._create_connection = dial  # type: ignore[attr-defined]  # noqa: SLF001
    return conn


def _classify(exc: Exception, deadline: _Deadline, where: str) -> WebhookError:
    detail = f"{where}: {type(exc).__name__}: {exc}"
    if deadline.expired or isinstance(exc, TimeoutError | DeadlinePassedError):
        return WebhookError(REASON_TIMEOUT, f"{where}: no answer within {deadline.seconds:g}s ({detail})")
    if isinstance(exc, ConnectionRefusedError):
        return WebhookError(REASON_REFUSED, detail)
    if isinstance(exc, ssl.SSLCertVerificationError):
        return WebhookError(REASON_TLS_CERT, detail)
    if isinstance(exc, ssl.SSLError):
        return WebhookError(REASON_TLS, detail)
    if isinstance(exc, http.client.HTTPException | ConnectionError):
        return WebhookError(REASON_BROKEN, detail)
    if isinstance(exc, OSError):
        return WebhookError(REASON_UNREACHABLE, detail)
    return WebhookError(REASON_BROKEN, detail)


class _Deadline:
    """The end of one post. At that time the watched sockets are shut down, which
    ends any read or write blocked on them (a per-read timeout would not)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.end = time.monotonic() + seconds
        self.expired = False
        self._socks: list[socket.socket] = []
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._expire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        left = self.end - time.monotonic()
        if left <= 0 or self.expired:
            raise DeadlinePassedError()
        return left

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor of the same socket: TLS wrapping detaches the original
        # object, but a shutdown through the duplicate still ends the connection.
        dup = sock.dup()
        with self._lock:
            self._socks.append(dup)
            expired = self.expired
        if expired:
            self._expire()

    def _expire(self) -> None:
        with self._lock:
            self.expired = True
            for sock in self._socks:
                with contextlib.suppress(OSError):  # already closed by the receiver
                    sock.shutdown(socket.SHUT_RDWR)

    def close(self) -> None:
        self._timer.cancel()
        with self._lock:
            for sock in self._socks:
                sock.close()
            self._socks.clear()
