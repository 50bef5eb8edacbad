"""Webhook URL and address rules (pure: no sockets, no DNS).

A webhook URL is typed by a user, so it is hostile input: it must not reach the
machine's own services or the private network (SSRF). Two checks share the rules here:
- `check_url` on the text (account form, before queueing, and the sender): https
  (http only to hosts the operator lists), no user:password@, a well-formed host,
  an IP literal only in canonical spelling and never internal, no localhost names,
  usual ports only;
- `address_allowed` on every address the sender resolved, just before it connects.
Internal hosts are allowed only where the operator lists them (Policy.internal_*,
from WEBHOOK_ALLOWED_INTERNAL_HOSTS), never by anything in the URL.

The `REASON_*` texts are what users see; details go to the operators' logs.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from config.settings import HOST_NAME_RE

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_URL_LENGTH = 500
# Ports a receiver outside the operator's list may use (Slack and Discord use 443).
USUAL_PORTS = frozenset({80, 443, 8080, 8443})
DEFAULT_PORTS = {"https": 443, "http": 80}

# What a user is told (stored with the delivery, shown on the account page).
REASON_INTERNAL = "not allowed: internal address"
REASON_URL = "not allowed: the URL breaks the webhook rules"
REASON_DNS = "the host name could not be resolved"
REASON_REFUSED = "the receiver refused the connection"
REASON_TIMEOUT = "timed out"
REASON_UNREACHABLE = "the receiver could not be reached"
REASON_TLS_CERT = "TLS failed: the receiver's certificate is not valid for its host name"
REASON_TLS = "TLS failed"
REASON_BROKEN = "the receiver closed the connection or answered something that is not HTTP"
REASON_QUEUE_FULL = "not sent: webhook queue full (receivers too slow)"
REASON_USER_BUSY = "not sent: too many of your webhook posts are still waiting"
REASON_INTERNAL_ERROR = "error while sending (details in the operator's logs)"
PUBLIC_REASONS = frozenset({
    REASON_INTERNAL, REASON_URL, REASON_DNS, REASON_REFUSED, REASON_TIMEOUT, REASON_UNREACHABLE, REASON_TLS_CERT,
    REASON_TLS, REASON_BROKEN, REASON_QUEUE_FULL, REASON_USER_BUSY, REASON_INTERNAL_ERROR})
_HTTP_STATUS = re.compile(r"HTTP [1-5][0-9]{2}")

_NETLOC = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<name>[^:\[\]]+))(?::(?P<port>[0-9]{1,5}))?")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]*|[0-9]+")
# IPv6 prefixes that carry an IPv4 address in their last 32 bits (NAT64).
_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))


@dataclass(frozen=True)
class Policy:
    """What the operator allows besides public https receivers."""

    http_hosts: frozenset[str] = frozenset()
    internal_names: frozenset[str] = frozenset()
    internal_networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def of(cls, allowed_http_hosts: Iterable[str] = (), allowed_internal: Iterable[str] = ()) -> Policy:
        """From the settings' lists; internal entries are host names, addresses or CIDRs
        (ValueError names a bad one)."""
        names: set[str] = set()
        networks: list[IPNetwork] = []
        for entry in (e.strip().lower().rstrip(".") for e in allowed_internal if e.strip()):
            try:
                networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            except ValueError:
                if not _valid_name(entry):
                    raise ValueError(f"not a host name, address or CIDR: {entry!r}") from None
                names.add(entry)
        return cls(frozenset(h.strip().lower().rstrip(".") for h in allowed_http_hosts if h.strip()),
                   frozenset(names), tuple(networks))

    def lists_address(self, ip: IPAddress) -> bool:
        return any(ip.version == net.version and ip in net for net in self.internal_networks)


@dataclass(frozen=True)
class Target:
    """A checked URL, parsed once: the sender connects to exactly this."""

    scheme: str
    host: str  # ASCII (IDNA) name, or the address of an IP literal
    ip: IPAddress | None  # set for an IP literal (no DNS)
    port: int
    path: str  # path and query, as sent in the request line
    listed: bool = False  # the operator lists this host: internal addresses allowed


def url_problem(url: str, allowed_http_hosts: Iterable[str] = (), allowed_internal: Iterable[str] = ()) -> str | None:
    """Why a webhook URL is not accepted (a sentence for the user), or None when it is."""
    found = check_url(url, Policy.of(allowed_http_hosts, allowed_internal))
    return found if isinstance(found, str) else None


def check_url(url: str, policy: Policy) -> Target | str:
    """The parsed target, or why the URL is refused. Never raises on any text."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL_LENGTH:
        return f"A webhook URL is 1 to {MAX_URL_LENGTH} characters."
    if any(c.isspace() for c in url):
        return "A webhook URL has no spaces."
    if any(ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        return "That is not a valid URL."
    scheme, sep, rest = url.partition("://")
    scheme = scheme.lower()
    if not sep or scheme not in DEFAULT_PORTS:
        return "Only https URLs are accepted."
    netloc, path = _split_netloc(rest)
    if "@" in netloc:
        return "A webhook URL may not carry a user name or password."
    if not netloc:
        return "The URL has no host."
    if not path.isascii():
        return "That is not a valid URL (write other characters of the path percent-encoded)."
    m = _NETLOC.fullmatch(netloc)
    if not m:
        return "That is not a valid URL."
    port = int(m["port"]) if m["port"] else DEFAULT_PORTS[scheme]
    if not 0 < port <= 65535:
        return "That is not a valid URL (the port is 1 to 65535)."
    host = _host(m["v6"], m["name"])
    if isinstance(host, str):
        return host
    name, ip = host
    listed = (ip is None and name in policy.internal_names) or (ip is not None and policy.lists_address(ip))
    if ip is not None and not listed and not is_public(ip):
        return f"Webhooks cannot go to internal addresses ({REASON_INTERNAL})."
    if ip is not None and str(ip) != name:  # 127.1, 2130706433, 0x7f000001: one spelling only
        return "Write an IPv4 address as four decimal numbers (a.b.c.d)."
    if not listed:
        if ip is None and (name == "localhost" or name.endswith(".localhost")):
            return f"Webhooks cannot go to this machine ({REASON_INTERNAL})."
        if port not in USUAL_PORTS:
            return f"Only the usual web ports ({', '.join(map(str, sorted(USUAL_PORTS)))}) are accepted."
    if scheme == "http" and name not in policy.http_hosts:
        return f"Only https URLs are accepted (http is allowed only to hosts the operator lists; {name} is not one)."
    return Target(scheme, name, ip, port, path or "/", listed)


def _split_netloc(rest: str) -> tuple[str, str]:
    """Authority and path+query (the fragment is dropped: never sent)."""
    end = min((i for i in (rest.find("/"), rest.find("?"), rest.find("#")) if i >= 0), default=len(rest))
    path = rest[end:].partition("#")[0]
    return rest[:end], (path if path.startswith("/") else "/" + path)


def _host(v6: str | None, name: str | None) -> tuple[str, IPAddress | None] | str:
    """(ASCII host, address if an IP literal) or why the host is malformed."""
    if v6 is not None:
        try:
            ip6 = ipaddress.IPv6Address(v6)
        except ValueError:
            return "That is not a valid URL (malformed IPv6 address)."
        return str(ip6), ip6
    assert name is not None
    name = name.lower().removesuffix(".")
    labels = name.split(".")
    if _NUMBER.fullmatch(labels[-1]):
        # Ends in a number: an IPv4 address (as browsers and inet_aton read it), in any spelling.
        ip4 = parse_ipv4(name)
        if ip4 is None:
            return "That is not a valid URL (malformed IPv4 address)."
        return name, ip4
    try:
        ascii_name = name.encode("idna").decode("ascii").lower() if not name.isascii() else name
    except UnicodeError:
        return "That is not a valid URL (malformed host name)."
    if not _valid_name(ascii_name):
        return "That is not a valid URL (malformed host name)."
    return ascii_name, None


def _valid_name(name: str) -> bool:
    return HOST_NAME_RE.fullmatch(name) is not None


def parse_ipv4(text: str) -> ipaddress.IPv4Address | None:
    """An IPv4 address in any spelling inet_aton accepts (127.1, 2130706433, 0x7f000001,
    0177.0.0.1), or None when the text is not one."""
    parts = text.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        if not _NUMBER.fullmatch(part):
            return None
        if part[:2].lower() == "0x":
            values.append(int(part[2:] or "0", 16))
        elif len(part) > 1 and part.startswith("0"):
            if any(c not in "01234567" for c in part):
                return None
            values.append(int(part, 8))
        else:
            values.append(int(part))
    *head, last = values
    if any(v > 255 for v in head) or last >= 256 ** (5 - len(values)):
        return None
    number = last
    for n, v in enumerate(head):
        number += v << (8 * (3 - n))
    return ipaddress.IPv4Address(number)


def embedded_ipv4(ip: IPAddress) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, Teredo client, NAT64)."""
    if isinstance(ip, ipaddress.IPv4Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if ip.teredo is not None:
        return ip.teredo[1]
    if any(ip in net for net in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def is_public(ip: IPAddress) -> bool:
    """A globally routable unicast address: not loopback, private, CGNAT, link-local,
    reserved, multicast, unspecified, documentation, nor an IPv6 form of one of those."""
    inner = embedded_ipv4(ip)
    if inner is not None:
        return is_public(inner)
    bad = (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_reserved or ip.is_multicast
           or ip.is_unspecified or not ip.is_global)
    if isinstance(ip, ipaddress.IPv6Address):
        bad = bad or ip.is_site_local
    return not bad


def address_allowed(ip: IPAddress, target: Target, policy: Policy) -> bool:
    """May the sender connect to this resolved address of the target? Never the
    unspecified address or a multicast group; internal ones only as the operator lists."""
    inner = embedded_ipv4(ip) or ip
    if ip.is_unspecified or inner.is_unspecified or ip.is_multicast or inner.is_multicast:
        return False
    return target.listed or policy.lists_address(ip) or policy.lists_address(inner) or is_public(ip)


def shown_reason(error: str | None) -> str | None:
    """What a user may see of a stored webhook failure: one of the generic reasons or
    an HTTP status; anything else (old records with raw error text) becomes generic."""
    if not error:
        return error
    if error in PUBLIC_REASONS or error.startswith("URL refused: "):
        return error
    m = _HTTP_STATUS.match(error)
    return m.group(0) if m else REASON_INTERNAL_ERROR
