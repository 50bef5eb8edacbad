"""The `stock-prices` message: validation, serialisation and the stored document.

Pure (no I/O). One message is one JSON object, UTF-8, keyed by symbol:

    symbol          ticker, e.g. "AAPL" (upper-cased; config.settings.SYMBOL_RE)
    timestamp       ISO 8601; with an offset it is converted to UTC, without one
                    (the design's example) it is read as UTC
    price, open, high, low   numbers (never true/false), high >= low
    volume          shares traded in the interval the quote covers, integer >= 0
    change_percent  change from the previous close, percent
    previous_close  optional, positive
    source          optional: "yahoo", "yahoo_stream", "alpha_vantage" or "simulated" ("unknown" if absent)
    market_open     optional boolean: was the regular session open at `timestamp`
                    (null if absent). Quotes with false repeat the last price with
                    volume 0; the daily job and the alerts leave them out.

Plausibility bounds (so nonsense never reaches MongoDB, the alerts or the batch's
MySQL columns; the values are the constants below):
    timestamp       from 2000-01-01 UTC to one day after the receiver's clock
                    (MIN_TIMESTAMP, MAX_AHEAD), at most MAX_TIMESTAMP_CHARS characters
    prices          finite, MIN_PRICE..MAX_PRICE (DECIMAL(14,4) in MySQL holds < 1e10)
    price, open     within [low, high] (PRICE_RANGE_TOLERANCE: float rounding only)
    volume          an integer (or a whole float) 0..MAX_VOLUME, so a day's sum fits
                    MySQL's BIGINT and MongoDB's 8-byte int, and no volume spike
                    is raised from an absurd count
    change_percent  finite, within +-MAX_CHANGE_PERCENT

Anything else in the object is ignored. With `Acceptance` rules (the consumer's and
the alerts service's, from settings) a symbol outside the configured list and a
timestamp too far in the future are rejected too (the services fill the known symbols from
the symbol registry: streaming/startup.py RegisteredAcceptance). A valid message becomes a
common.quote.Quote (the one quote type); the consumer stores `to_document(...)`, which
adds `price_change_pct` (move from the open) and `processed_at`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from common.clock import utc_now
from common.quote import REQUIRED_FIELDS, SOURCE_NAMES, Quote, Source, format_timestamp
from config.settings import SYMBOL_RE

REQUIRED = REQUIRED_FIELDS
SOURCES = SOURCE_NAMES

# Plausibility bounds (see the module docstring): a value outside them is a broken or
# hostile producer, never a market.
MIN_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
MAX_AHEAD = timedelta(days=1)  # always; Acceptance.max_future (MAX_QUOTE_FUTURE_SECONDS) is usually tighter
MAX_TIMESTAMP_CHARS = 64
MIN_PRICE = 0.0001  # the MySQL columns' precision: below it a price is stored as 0
MAX_PRICE = 10_000_000.0  # ten times the dearest listed share; the columns end at 1e10
MAX_VOLUME = 10**11  # more shares than any stock has traded in a day, in one quote
MAX_CHANGE_PERCENT = 100_000.0  # a thousandfold move from the previous close
PRICE_RANGE_TOLERANCE = 1e-9  # relative: a price rounded differently from its day's high/low


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
    try:
        value = float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise InvalidQuote(f"{field} is out of range: {value!r}") from None
    if not math.isfinite(value):
        raise InvalidQuote(f"{field} is not finite: {value!r}")
    if positive and value <= 0:
        raise InvalidQuote(f"{field} must be positive: {value!r}")
    return value


def _price(obj: dict[str, Any], field: str) -> float:
    value = _number(obj, field, positive=True)
    if not MIN_PRICE <= value <= MAX_PRICE:
        raise InvalidQuote(f"{field} is outside the plausible {MIN_PRICE}..{MAX_PRICE:.0f}: {value!r}")
    return value


def _volume(obj: dict[str, Any]) -> int:
    """An integer 0..MAX_VOLUME; a whole float (1000.0) is taken, compared before any
    conversion so 2**64 or 1e300 is refused instead of overflowing MongoDB's 8-byte int."""
    value = obj["volume"]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidQuote(f"volume is not a number: {value!r}")
    if isinstance(value, float) and (not math.isfinite(value) or not value.is_integer()):
        raise InvalidQuote(f"volume must be a whole number >= 0: {value!r}")
    if value < 0:
        raise InvalidQuote(f"volume must be a whole number >= 0: {value!r}")
    if value > MAX_VOLUME:
        raise InvalidQuote(f"volume is beyond the plausible {MAX_VOLUME}: {value!r}")
    return int(value)


def _within_day_range(quote: dict[str, Any], field: str) -> None:
    low, high, value = quote["low"], quote["high"], quote[field]
    slack = high * PRICE_RANGE_TOLERANCE
    if not low - slack <= value <= high + slack:
        raise InvalidQuote(f"{field} is outside the day's range [{low}, {high}]: {value!r}")


def parse_timestamp(value: object) -> datetime:
    """ISO 8601 → aware UTC datetime, truncated to milliseconds (MongoDB's precision,
    so the (symbol, timestamp) key of a stored quote equals the one re-read)."""
    if not isinstance(value, str):
        raise InvalidQuote(f"timestamp is not a string: {value!r}")
    if len(value) > MAX_TIMESTAMP_CHARS:
        raise InvalidQuote(f"timestamp is longer than {MAX_TIMESTAMP_CHARS} characters: {value!r}")
    try:
        ts = datetime.fromisoformat(value.strip())
        # Year 1 or 9999 with an offset overflows on the way to UTC.
        ts = ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidQuote(f"timestamp does not parse as ISO 8601 in range: {value!r}") from None
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


def validate_quote(obj: object, rules: Acceptance | None = None, now: datetime | None = None) -> Quote:
    """A decoded message → the normalised Quote; InvalidQuote with the reason otherwise.
    `now` (default: the clock) is what `rules.max_future` is measured from."""
    if not isinstance(obj, dict):
        raise InvalidQuote(f"message is not a JSON object but {type(obj).__name__}")
    missing = [f for f in REQUIRED if obj.get(f) is None]
    if missing:
        raise InvalidQuote(f"missing field(s): {', '.join(missing)}")
    symbol = obj["symbol"]
    if not isinstance(symbol, str) or len(symbol) > 32 or not SYMBOL_RE.match(symbol.strip().upper()):
        raise InvalidQuote(f"symbol is not a ticker: {symbol!r}")
    quote: dict[str, Any] = {"symbol": symbol.strip().upper(), "timestamp": parse_timestamp(obj["timestamp"])}
    if rules is not None and rules.symbols is not None and quote["symbol"] not in rules.symbols:
        raise InvalidQuote(f"unknown symbol {quote['symbol']!r} (not in the symbol registry)")
    now = now or utc_now()
    if quote["timestamp"] < MIN_TIMESTAMP:
        raise InvalidQuote(f"timestamp {format_timestamp(quote['timestamp'])} is before "
                           f"{format_timestamp(MIN_TIMESTAMP)}")
    ahead = quote["timestamp"] - now
    limit = min(MAX_AHEAD, rules.max_future) if rules is not None and rules.max_future is not None else MAX_AHEAD
    if ahead > limit:
        raise InvalidQuote(f"timestamp {format_timestamp(quote['timestamp'])} is {ahead.total_seconds():.0f}s "
                           f"in the future (limit {limit.total_seconds():.0f}s)")
    for field in ("price", "open", "high", "low"):
        quote[field] = _price(obj, field)
    if quote["high"] < quote["low"]:
        raise InvalidQuote(f"high {quote['high']} is below low {quote['low']}")
    _within_day_range(quote, "price")
    _within_day_range(quote, "open")
    quote["volume"] = _volume(obj)
    quote["change_percent"] = _number(obj, "change_percent", positive=False)
    if abs(quote["change_percent"]) > MAX_CHANGE_PERCENT:
        raise InvalidQuote(f"change_percent is beyond the plausible +-{MAX_CHANGE_PERCENT:.0f}: "
                           f"{quote['change_percent']!r}")
    quote["previous_close"] = _price(obj, "previous_close") if obj.get("previous_close") is not None else None
    source = obj.get("source")
    if source is None:
        quote["source"] = Source.UNKNOWN
    elif isinstance(source, str) and source in SOURCES:
        quote["source"] = Source(source)
    else:
        raise InvalidQuote(f"source must be one of {', '.join(SOURCES)}: {source!r}")
    market_open = obj.get("market_open")
    if market_open is not None and not isinstance(market_open, bool):
        raise InvalidQuote(f"market_open must be true or false: {market_open!r}")
    quote["market_open"] = market_open
    return Quote(**quote)


def parse_message(raw: bytes | None, rules: Acceptance | None = None, now: datetime | None = None) -> Quote:
    """Kafka message value (bytes) → the Quote, or InvalidQuote(reason)."""
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
    except ValueError as exc:
        # An integer literal beyond Python's 4300-digit conversion limit is a plain ValueError.
        raise InvalidQuote(f"message is not JSON we accept: {exc}") from None
    return validate_quote(obj, rules, now)


def to_document(quote: Mapping[str, Any], processed_at: datetime) -> dict[str, Any]:
    """The realtime_prices document: the quote plus price_change_pct and processed_at."""
    return _as_quote(quote).to_document(processed_at)


def to_message(quote: Mapping[str, Any]) -> bytes:
    """A quote (timestamp as datetime) → the JSON bytes the producer sends."""
    return json.dumps(_as_quote(quote).to_message(), separators=(",", ":")).encode("utf-8")


def _as_quote(quote: Mapping[str, Any]) -> Quote:
    return quote if isinstance(quote, Quote) else Quote.from_document(quote)
