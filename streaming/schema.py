"""The `stock-prices` message: validation, serialisation and the stored document.

Pure (no I/O). One message is one JSON object, UTF-8, keyed by symbol:

    symbol          ticker, e.g. "AAPL" (upper-cased)
    timestamp       ISO 8601; with an offset it is converted to UTC, without one
                    (the design's example) it is read as UTC
    price, open, high, low   positive numbers, high >= low
    volume          shares traded in the interval the quote covers, integer >= 0
    change_percent  change from the previous close, percent
    previous_close  optional, positive
    source          optional: "yahoo", "alpha_vantage" or "simulated" ("unknown" if absent)
    market_open     optional boolean: was the regular session open at `timestamp`
                    (null if absent). Quotes with false repeat the last price with
                    volume 0; the daily job and the alerts leave them out.

Anything else in the object is ignored. With `Acceptance` rules (the consumer's and
the alerts service's, from settings) a symbol outside the configured list and a
timestamp too far in the future are rejected too. The consumer stores `to_document(...)`,
which adds `price_change_pct` (move from the open) and `processed_at`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from common.clock import utc_now
from config.settings import SYMBOL_RE

REQUIRED = ("symbol", "timestamp", "price", "volume", "open", "high", "low", "change_percent")
SOURCES = ("yahoo", "alpha_vantage", "simulated")
UNKNOWN_SOURCE = "unknown"


class InvalidQuote(ValueError):  # noqa: N818 - the name reads as what the message is
    """The message cannot be accepted; str(exc) is the reason sent to the DLQ."""

    MAX_REASON = 300  # a reason quotes the bad value: a 900 KB one must not ride along in every header and log line

    def __init__(self, reason: str) -> None:
        if len(reason) > self.MAX_REASON:
            reason = f"{reason[:self.MAX_REASON]}... ({len(reason)} characters)"
        super().__init__(reason)


def _number(obj: dict[str, Any], field: str, *, positive: bool) -> float:
    value = obj[field]
    # bool is an int in Python, but `true` is not a price.
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidQuote(f"{field} is not a number: {value!r}")
    value = float(value)
    if not math.isfinite(value):
        raise InvalidQuote(f"{field} is not finite: {value!r}")
    if positive and value <= 0:
        raise InvalidQuote(f"{field} must be positive: {value!r}")
    return value


def parse_timestamp(value: object) -> datetime:
    """ISO 8601 → aware UTC datetime, truncated to milliseconds (MongoDB's precision,
    so the (symbol, timestamp) key of a stored quote equals the one re-read)."""
    if not isinstance(value, str):
        raise InvalidQuote(f"timestamp is not a string: {value!r}")
    try:
        ts = datetime.fromisoformat(value.strip())
    except ValueError:
        raise InvalidQuote(f"timestamp does not parse as ISO 8601: {value!r}") from None
    ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


@dataclass(frozen=True)
class Acceptance:
    """Rules beyond the message's shape: which symbols are known (None: any ticker) and
    how far ahead of the receiver's clock a quote may be stamped (None: no limit)."""

    symbols: frozenset[str] | None = None
    max_future: timedelta | None = None

    @classmethod
    def of(cls, symbols: Iterable[str] | None, max_future_seconds: float | None) -> Acceptance:
        return cls(frozenset(s.upper() for s in symbols) if symbols is not None else None,
                   timedelta(seconds=max_future_seconds) if max_future_seconds is not None else None)

    @classmethod
    def from_settings(cls, settings: Any) -> Acceptance:
        return cls.of(settings.stock_symbols if settings.reject_unknown_symbols else None,
                      settings.max_quote_future_seconds)


def validate_quote(obj: object, rules: Acceptance | None = None, now: datetime | None = None) -> dict[str, Any]:
    """A decoded message → the normalised quote; InvalidQuote with the reason otherwise.
    `now` (default: the clock) is what `rules.max_future` is measured from."""
    if not isinstance(obj, dict):
        raise InvalidQuote(f"message is not a JSON object but {type(obj).__name__}")
    missing = [f for f in REQUIRED if obj.get(f) is None]
    if missing:
        raise InvalidQuote(f"missing field(s): {', '.join(missing)}")
    symbol = obj["symbol"]
    if not isinstance(symbol, str) or not SYMBOL_RE.match(symbol.strip().upper()):
        raise InvalidQuote(f"symbol is not a ticker: {symbol!r}")
    quote: dict[str, Any] = {"symbol": symbol.strip().upper(), "timestamp": parse_timestamp(obj["timestamp"])}
    if rules is not None and rules.symbols is not None and quote["symbol"] not in rules.symbols:
        raise InvalidQuote(f"unknown symbol {quote['symbol']!r} (not in STOCK_SYMBOLS)")
    if rules is not None and rules.max_future is not None:
        ahead = quote["timestamp"] - (now or utc_now())
        if ahead > rules.max_future:
            raise InvalidQuote(f"timestamp {format_timestamp(quote['timestamp'])} is {ahead.total_seconds():.0f}s "
                               f"in the future (limit {rules.max_future.total_seconds():.0f}s)")
    for field in ("price", "open", "high", "low"):
        quote[field] = _number(obj, field, positive=True)
    if quote["high"] < quote["low"]:
        raise InvalidQuote(f"high {quote['high']} is below low {quote['low']}")
    volume = _number(obj, "volume", positive=False)
    if volume < 0 or volume != int(volume):
        raise InvalidQuote(f"volume must be a whole number >= 0: {obj['volume']!r}")
    quote["volume"] = int(volume)
    quote["change_percent"] = _number(obj, "change_percent", positive=False)
    quote["previous_close"] = (
        _number(obj, "previous_close", positive=True) if obj.get("previous_close") is not None else None
    )
    source = obj.get("source")
    if source is None:
        quote["source"] = UNKNOWN_SOURCE
    elif source in SOURCES:
        quote["source"] = source
    else:
        raise InvalidQuote(f"source must be one of {', '.join(SOURCES)}: {source!r}")
    market_open = obj.get("market_open")
    if market_open is not None and not isinstance(market_open, bool):
        raise InvalidQuote(f"market_open must be true or false: {market_open!r}")
    quote["market_open"] = market_open
    return quote


def parse_message(raw: bytes | None, rules: Acceptance | None = None, now: datetime | None = None) -> dict[str, Any]:
    """Kafka message value (bytes) → normalised quote, or InvalidQuote(reason)."""
    if raw is None:
        raise InvalidQuote("empty message (no value)")
    try:
        obj = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise InvalidQuote("message is not UTF-8") from None
    except json.JSONDecodeError as exc:
        raise InvalidQuote(f"message is not JSON: {exc.msg} at position {exc.pos}") from None
    except RecursionError:
        # '[[[[...' thousands deep: json raises RecursionError, which would kill the consumer.
        raise InvalidQuote("message is not JSON we accept: nested too deeply") from None
    return validate_quote(obj, rules, now)


def to_document(quote: dict[str, Any], processed_at: datetime) -> dict[str, Any]:
    """The realtime_prices document: the quote plus price_change_pct and processed_at."""
    doc = dict(quote)
    doc["price_change_pct"] = round((quote["price"] - quote["open"]) / quote["open"] * 100, 4)
    doc["processed_at"] = processed_at
    return doc


def format_timestamp(ts: datetime) -> str:
    """UTC, ISO 8601 with offset and milliseconds: '2026-01-13T15:30:00.000+00:00'."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


def to_message(quote: dict[str, Any]) -> bytes:
    """A quote (timestamp as datetime) → the JSON bytes the producer sends."""
    body = dict(quote)
    body["timestamp"] = format_timestamp(quote["timestamp"])
    return json.dumps(body, separators=(",", ":")).encode("utf-8")
