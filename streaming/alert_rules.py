"""Alert rules, their state machines and the decisions around them. Pure (no I/O).

- price_change, once per event: a band state machine per symbol and market day.
  band = k when |change from previous close| exceeds k x PRICE_CHANGE_THRESHOLD.
  An alert fires when the band rises above the highest band reached since the
  symbol was last "armed"; it re-arms once the move is back below
  threshold - PRICE_CHANGE_HYSTERESIS (or flips direction), and at the start of
  each market day. A stock that is up 6 % all day alerts once; 11 % alerts again.
- volume_spike: volume > VOLUME_THRESHOLD_MULTIPLIER x a baseline: the median,
  over the symbol's last sessions, of its mean per-quote volume in the same
  time-of-day bucket (so the busy open and close are not spikes by themselves);
  while there are too few such sessions, the average of its previous VOLUME_WINDOW
  quotes (the old rule), labelled as such.
- cooldown (volume_spike only): per (symbol, rule), on quote timestamps.
- per-user filter: a user receives a system alert when it passes their
  watchlist; a user with a stricter threshold of their own gets the alerts of their
  own rule instead (streaming/user_alert_rules.py).
"""

from __future__ import annotations

import math
import statistics
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from enum import Enum
from typing import Any
from zoneinfo import ZoneInfo

from common.quote import Quote, format_timestamp

PRICE_CHANGE = "price_change"
VOLUME_SPIKE = "volume_spike"
# Rules of users' own (streaming/user_alert_rules.py): named here so the renderers know them.
USER_PRICE_CHANGE = "user_price_change"
USER_VOLUME_SPIKE = "user_volume_spike"
PRICE_LEVEL = "price_level"
RULE_NAMES = {PRICE_CHANGE: "Price move", VOLUME_SPIKE: "Volume spike", USER_PRICE_CHANGE: "Price move",
              USER_VOLUME_SPIKE: "Volume spike", PRICE_LEVEL: "Price level"}

TIME_OF_DAY = "time_of_day"  # baseline kinds
RECENT_AVERAGE = "recent_average"


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
    band: int | None = None  # price_change: the band reached (k x the threshold)
    baseline: float | None = None  # volume_spike: the usual volume it was compared with
    baseline_kind: str | None = None  # time_of_day or recent_average

    @property
    def key(self) -> str:
        """Idempotency key: a redelivered quote yields the same key, never a second alert."""
        return alert_key(self.symbol, self.rule, self.quote_timestamp)

    def as_record(self) -> dict[str, Any]:
        return {
            "alert_key": self.key, "symbol": self.symbol, "rule": self.rule, "value": self.value,
            "threshold": self.threshold, "price": self.price, "quote_timestamp": self.quote_timestamp,
            "message": self.message, "source": self.source, "band": self.band, "baseline": self.baseline,
            "baseline_kind": self.baseline_kind,
        }


def alert_key(symbol: str, rule: str, quote_timestamp: datetime) -> str:
    return f"{symbol}|{rule}|{format_timestamp(quote_timestamp)}"


def market_day(ts: datetime, tz: ZoneInfo) -> date:
    return ts.astimezone(tz).date()


# ---------------------------------------------------------------------- price bands
def band_of(move: float, threshold: float) -> int:
    """k such that |move| exceeds k x threshold but not (k+1) x threshold (0 inside)."""
    ratio = abs(move) / threshold
    return max(0, math.ceil(round(ratio, 9)) - 1)


@dataclass(frozen=True)
class BandState:
    """Where a symbol's price move stands today. as_of: quote time of the last change
    (older quotes are replays and change nothing); fired_at: quote time of the last alert."""

    day: date | None = None
    direction: int = 0  # +1 up, -1 down, 0 armed
    band: int = 0  # highest band alerted since armed
    as_of: datetime | None = None
    fired_at: datetime | None = None


def step_band(state: BandState, move: float, ts: datetime, day: date, threshold: float,
              hysteresis: float) -> tuple[BandState, int | None]:
    """Feed one quote's move; returns (new state, band that fires or None).

    A quote not newer than state.as_of is a replay: the state stays, and only the very
    quote that fired returns its band again (so its delivery can be completed).
    """
    if state.as_of is not None and ts <= state.as_of:
        return state, (state.band if ts == state.fired_at and state.band > 0 else None)
    current = state if state.day == day else BandState(day=day, as_of=state.as_of, fired_at=state.fired_at)
    band = band_of(move, threshold)
    direction = 1 if move > 0 else -1 if move < 0 else 0
    if current.band > 0 and (abs(move) < threshold - hysteresis or (band > 0 and direction != current.direction)):
        current = replace(current, direction=0, band=0)  # back inside (or flipped): re-armed
    if band > current.band:
        return replace(current, direction=direction, band=band, as_of=ts, fired_at=ts), band
    if current != state:
        return replace(current, as_of=ts), None
    return state, None


def state_to_doc(state: BandState) -> dict[str, Any]:
    """The stored form of a band state (alert_state; user_alert_state for a user's own threshold)."""
    return {"day": state.day.isoformat() if state.day else None, "direction": state.direction, "band": state.band,
            "as_of": state.as_of, "fired_at": state.fired_at}


def state_from_doc(doc: Mapping[str, Any] | None) -> BandState:
    if not doc:
        return BandState()
    return BandState(day=date.fromisoformat(doc["day"]) if doc.get("day") else None, direction=doc.get("direction", 0),
                     band=doc.get("band", 0), as_of=doc.get("as_of"), fired_at=doc.get("fired_at"))


def price_alert(quote: Quote, band: int, threshold: float) -> Alert:
    symbol, change, price = quote["symbol"], quote["change_percent"], quote["price"]
    direction = "up" if change > 0 else "down"
    what = "crossed the threshold" if band == 1 else f"passed {band}x the threshold"
    return Alert(
        symbol, PRICE_CHANGE, round(change, 4), threshold, price, quote["timestamp"], quote["source"],
        f"{symbol} is {direction} {abs(change):.2f}% from the previous close and {what} "
        f"(band {band}, threshold {threshold:g}%), price {price:.2f}",
        band=band,
    )


# ---------------------------------------------------------------------- volume
@dataclass(frozen=True)
class Baseline:
    volume: float
    kind: str  # TIME_OF_DAY or RECENT_AVERAGE
    detail: str  # what it is, for people: "median of 5 sessions, 10:00-10:30"


def bucket_of(ts: datetime, tz: ZoneInfo, minutes: int) -> tuple[time, time]:
    """The time-of-day bucket (local start, end) a quote falls in; buckets are
    aligned to midnight, so 15 or 30 minutes also align with a 09:30 open."""
    local = ts.astimezone(tz)
    start_min = (local.hour * 60 + local.minute) // minutes * minutes
    end_min = min(start_min + minutes, 24 * 60 - 1)
    return time(start_min // 60, start_min % 60), time(end_min // 60, end_min % 60)


def baseline_windows(ts: datetime, tz: ZoneInfo, minutes: int, lookback_days: int) -> list[tuple[datetime, datetime]]:
    """[start, end) of the quote's bucket on each of the `lookback_days` days before its
    market day, newest first, as aware datetimes (weekends simply hold no quotes)."""
    start_t, end_t = bucket_of(ts, tz, minutes)
    day = market_day(ts, tz)
    windows = []
    for back in range(1, lookback_days + 1):
        d = day - timedelta(days=back)
        windows.append((datetime.combine(d, start_t, tzinfo=tz), datetime.combine(d, end_t, tzinfo=tz)))
    return windows


def time_of_day_baseline(per_day: Mapping[date, Sequence[int]], sessions: int, min_sessions: int,
                         label: str) -> Baseline | None:
    """Median over the newest `sessions` days of each day's mean volume in the bucket;
    None with fewer than `min_sessions` days of data (the caller falls back)."""
    days = sorted((d for d, v in per_day.items() if v), reverse=True)[:sessions]
    if len(days) < min_sessions:
        return None
    volume = statistics.median(sum(per_day[d]) / len(per_day[d]) for d in days)
    if volume <= 0:
        return None
    return Baseline(float(volume), TIME_OF_DAY, f"median of {len(days)} sessions, {label}")


class VolumeWindows:
    """The last `size` volumes of each symbol, fed in quote-time order (the fallback baseline)."""

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

    def baseline(self, symbol: str) -> Baseline | None:
        average = self.average(symbol)
        if average is None or average <= 0:
            return None
        return Baseline(average, RECENT_AVERAGE, f"average of the last {self.size} quotes")

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


def volume_alert(quote: Quote, baseline: Baseline | None, multiplier: float) -> Alert | None:
    """The volume_spike a quote raises against its baseline (before cooldown), or None."""
    if baseline is None:
        return None
    limit = multiplier * baseline.volume
    volume = quote["volume"]
    if volume <= limit:
        return None
    symbol, price = quote["symbol"], quote["price"]
    usual = "usual volume" if baseline.kind == TIME_OF_DAY else "recent average"
    return Alert(
        symbol, VOLUME_SPIKE, float(volume), round(limit, 4), price, quote["timestamp"], quote["source"],
        f"{symbol} traded {volume:,} shares, {volume / baseline.volume:.1f}x its {usual} of "
        f"{baseline.volume:,.0f} ({baseline.detail}; threshold {multiplier:g}x), price {price:.2f}",
        baseline=round(baseline.volume, 4), baseline_kind=baseline.kind,
    )


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


# ---------------------------------------------------------------------- people
@dataclass(frozen=True)
class UserRules:
    """One user's alert settings (thresholds never below the system's)."""

    user_id: str
    email: str
    enabled: bool
    watchlist: tuple[str, ...]  # empty = every symbol
    price_threshold: float
    volume_multiplier: float
    daily_cap: int
    webhook_url: str | None
    # Stricter than the system's: the user's own rule (streaming/user_alerts.py) raises their
    # alerts of that kind, so the system's of that kind do not reach them (no alert twice).
    own_price: bool = False
    own_volume: bool = False


def user_wants(rules: UserRules, alert: Alert) -> bool:
    """Whether a system alert passes this user's own rules (the cap is decided apart)."""
    if not rules.enabled or (rules.watchlist and alert.symbol not in rules.watchlist):
        return False
    if (alert.rule == PRICE_CHANGE and rules.own_price) or (alert.rule == VOLUME_SPIKE and rules.own_volume):
        return False
    if alert.rule == PRICE_CHANGE:
        return abs(alert.value) > rules.price_threshold
    if alert.rule == VOLUME_SPIKE:
        return bool(alert.baseline) and alert.value > rules.volume_multiplier * float(alert.baseline or 0)
    return False


def render_email(alert: Alert) -> tuple[str, str]:
    """(subject, text) of the alert email."""
    rule = RULE_NAMES.get(alert.rule, alert.rule)
    subject = f"[Stock alert] {alert.symbol}: {rule.lower()}"
    why = (f"Band: {alert.band} (the move exceeds {alert.band}x the threshold)\n" if alert.band else
           f"Level: {alert.threshold:g}\n" if alert.rule == PRICE_LEVEL else
           f"Baseline: {alert.baseline:g} shares ({alert.baseline_kind})\n" if alert.baseline else "")
    text = (
        f"{rule} on {alert.symbol}\n\n{alert.message}.\n\n"
        f"Quote time (UTC): {format_timestamp(alert.quote_timestamp)}\n"
        f"Value: {alert.value:g}   Threshold: {alert.threshold:g}\n{why}"
        f"Source: {alert.source}\n\n"
        "You receive this because you opted in to alerts in the Stock Analysis System.\n"
    )
    return subject, text


def render_webhook_text(alert: Alert) -> str:
    """One line for Slack / Discord."""
    rule = RULE_NAMES.get(alert.rule, alert.rule).lower()
    return (f"[Stock alert] {alert.symbol} {rule}: {alert.message} "
            f"(quote {format_timestamp(alert.quote_timestamp)}, source {alert.source})")
