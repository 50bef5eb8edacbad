"""Alert rules, the rolling volume window and the cooldown decision. Pure (no I/O).

- price_change: |change_percent| > PRICE_CHANGE_THRESHOLD.
- volume_spike: volume > VOLUME_THRESHOLD_MULTIPLIER x the average volume of the
  symbol's previous VOLUME_WINDOW quotes; silent until the window is full.
- cooldown: per (symbol, rule), measured on quote timestamps (not the wall clock),
  so a replay after a restart decides exactly as the first pass did.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from streaming.schema import format_timestamp

PRICE_CHANGE = "price_change"
VOLUME_SPIKE = "volume_spike"
RULES = (PRICE_CHANGE, VOLUME_SPIKE)


@dataclass(frozen=True)
class Alert:
    symbol: str
    rule: str
    value: float
    threshold: float
    price: float
    quote_timestamp: datetime
    source: str
    message: str

    @property
    def key(self) -> str:
        """Idempotency key: a redelivered quote yields the same key, never a second alert."""
        return alert_key(self.symbol, self.rule, self.quote_timestamp)

    def as_record(self) -> dict[str, Any]:
        return {
            "alert_key": self.key, "symbol": self.symbol, "rule": self.rule, "value": self.value,
            "threshold": self.threshold, "price": self.price, "quote_timestamp": self.quote_timestamp,
            "message": self.message, "source": self.source,
        }


def alert_key(symbol: str, rule: str, quote_timestamp: datetime) -> str:
    return f"{symbol}|{rule}|{format_timestamp(quote_timestamp)}"


class VolumeWindows:
    """The last `size` volumes of each symbol, fed in quote-time order."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._volumes: dict[str, deque[int]] = {}
        self._last_ts: dict[str, datetime] = {}

    def average(self, symbol: str) -> float | None:
        """Average of a full window; None while it has fewer than `size` samples."""
        window = self._volumes.get(symbol)
        if window is None or len(window) < self.size:
            return None
        return sum(window) / len(window)

    def known(self, symbol: str) -> bool:
        return symbol in self._volumes

    def seed(self, symbol: str, history: list[tuple[datetime, int]]) -> None:
        """Start a symbol's window from stored quotes older than the first one seen
        (oldest first), so a restart does not silence the volume rule for a window."""
        self._volumes[symbol] = deque((v for _, v in history), maxlen=self.size)
        if history:
            self._last_ts[symbol] = history[-1][0]

    def add(self, symbol: str, volume: int, ts: datetime) -> bool:
        """Record a quote's volume; False (ignored) for a quote not newer than the last
        one seen, i.e. a redelivery, so a replay does not count twice."""
        last = self._last_ts.get(symbol)
        if last is not None and ts <= last:
            return False
        self._volumes.setdefault(symbol, deque(maxlen=self.size)).append(volume)
        self._last_ts[symbol] = ts
        return True


def evaluate(quote: dict[str, Any], price_threshold: float, volume_multiplier: float,
             windows: VolumeWindows) -> list[Alert]:
    """Alerts a quote raises (before cooldown). Feeds the quote's volume into the window
    after comparing it, so a spike is measured against the quotes before it."""
    alerts: list[Alert] = []
    symbol, ts, price = quote["symbol"], quote["timestamp"], quote["price"]
    change = quote["change_percent"]
    if abs(change) > price_threshold:
        direction = "up" if change > 0 else "down"
        alerts.append(Alert(
            symbol, PRICE_CHANGE, round(change, 4), price_threshold, price, ts, quote["source"],
            f"{symbol} is {direction} {abs(change):.2f}% from the previous close "
            f"(threshold {price_threshold:g}%), price {price:.2f}",
        ))
    average = windows.average(symbol)
    if average is not None and average > 0:
        limit = volume_multiplier * average
        if quote["volume"] > limit:
            alerts.append(Alert(
                symbol, VOLUME_SPIKE, float(quote["volume"]), round(limit, 4), price, ts, quote["source"],
                f"{symbol} traded {quote['volume']:,} shares, {quote['volume'] / average:.1f}x its recent "
                f"average of {average:,.0f} (threshold {volume_multiplier:g}x), price {price:.2f}",
            ))
    windows.add(symbol, quote["volume"], ts)
    return alerts


class Decision(Enum):
    NEW = "new"  # raise it
    REPLAY = "replay"  # this very alert was raised before (redelivery): make sure it is complete
    COOLDOWN = "cooldown"  # suppressed


def cooldown_decision(quote_ts: datetime, last_alert_ts: datetime | None, cooldown: timedelta) -> Decision:
    """Whether an alert at `quote_ts` may fire, given the last one of the same symbol and rule."""
    if last_alert_ts is None:
        return Decision.NEW
    if quote_ts == last_alert_ts:
        return Decision.REPLAY
    # An older quote (late or replayed) is within the cooldown too: it is stale news.
    if quote_ts - last_alert_ts < cooldown:
        return Decision.COOLDOWN
    return Decision.NEW


def render_email(alert: Alert) -> tuple[str, str]:
    """(subject, text) of the alert email."""
    rule = "Price move" if alert.rule == PRICE_CHANGE else "Volume spike"
    subject = f"[Stock alert] {alert.symbol}: {rule.lower()}"
    text = (
        f"{rule} on {alert.symbol}\n\n{alert.message}.\n\n"
        f"Quote time (UTC): {format_timestamp(alert.quote_timestamp)}\n"
        f"Value: {alert.value:g}   Threshold: {alert.threshold:g}\n"
        f"Source: {alert.source}\n\n"
        "You receive this because you opted in to alerts in the Stock Analysis System.\n"
    )
    return subject, text
