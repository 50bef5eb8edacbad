"""Rules people set themselves, evaluated as rules of their own. Pure (no I/O).

- A user's own price-move threshold (users.alert_price_threshold) runs the same band
  machine as the system's (streaming/alert_rules.step_band) with the user's threshold:
  8 % fires at 8.x %, again past 16 %, re-arms below threshold - PRICE_CHANGE_HYSTERESIS
  and on each new market day. Their own volume multiplier (alert_volume_multiplier)
  compares the quote with the system's baseline, with the system's cooldown per user.
- Price levels (price_level_rules): "above 300" fires on the first quote at or above
  300 while the rule is armed, "below 250" at or below 250. A one-shot rule then stays
  fired; a re-arming rule arms again once the price has gone back by
  USER_LEVEL_REARM_PERCENT % of the level (above 300 with 1 %: at or below 297), so a
  price hovering at the level does not alert on every quote.
- Replays: a quote not newer than the state's as_of changes nothing, and only the very
  quote that fired fires again (so its record and delivery can be completed; the
  alert's key makes that a no-op when they were).

RuleIndex holds every rule by symbol, so a quote costs only the rules on its symbol.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from common.quote import Quote, format_timestamp
from streaming.alert_rules import PRICE_LEVEL, USER_PRICE_CHANGE, USER_VOLUME_SPIKE, Alert

ABOVE, BELOW = "above", "below"
ONCE, REARM = "once", "rearm"
DIRECTIONS = (ABOVE, BELOW)
MODES = (ONCE, REARM)


@dataclass(frozen=True)
class UserAlert:
    """An alert of one user's own rule (user_alerts; never alert_history / alert_log)."""

    user_id: str
    rule_id: str  # "price_change" / "volume_spike" for the user's thresholds, the rule's id for a level
    symbol: str
    rule: str  # USER_PRICE_CHANGE, USER_VOLUME_SPIKE or PRICE_LEVEL
    value: float
    threshold: float
    price: float
    quote_timestamp: datetime
    source: str
    message: str
    band: int | None = None

    @property
    def key(self) -> str:
        """Idempotency key: a redelivered quote yields the same key, never a second alert."""
        return f"{self.user_id}|{self.rule_id}|{self.symbol}|{format_timestamp(self.quote_timestamp)}"

    def as_record(self) -> dict[str, Any]:
        return {"alert_key": self.key, "user_id": self.user_id, "rule_id": self.rule_id, "symbol": self.symbol,
                "rule": self.rule, "value": self.value, "threshold": self.threshold, "price": self.price,
                "quote_timestamp": self.quote_timestamp, "source": self.source, "message": self.message,
                "band": self.band}

    def as_alert(self) -> Alert:
        """The shape the renderers (email, webhook text) take."""
        return Alert(self.symbol, self.rule, self.value, self.threshold, self.price, self.quote_timestamp,
                     self.source, self.message, band=self.band)


def user_price_alert(user_id: str, quote: Quote, band: int, threshold: float) -> UserAlert:
    symbol, change, price = quote["symbol"], quote["change_percent"], quote["price"]
    direction = "up" if change > 0 else "down"
    what = f"your threshold of {threshold:g}%" if band == 1 else f"{band}x your threshold of {threshold:g}%"
    return UserAlert(user_id, "price_change", symbol, USER_PRICE_CHANGE, round(change, 4), threshold, price,
                     quote["timestamp"], quote["source"],
                     f"{symbol} is {direction} {abs(change):.2f}% from the previous close, past {what}, "
                     f"price {price:.2f}", band=band)


def user_volume_alert(user_id: str, system: Alert, multiplier: float) -> UserAlert:
    """A user's volume spike, from the alert their multiplier raised against the system's baseline."""
    return UserAlert(user_id, "volume_spike", system.symbol, USER_VOLUME_SPIKE, system.value, system.threshold,
                     system.price, system.quote_timestamp, system.source,
                     f"{system.message} (your multiplier {multiplier:g}x)")


# ---------------------------------------------------------------------- price levels
@dataclass(frozen=True)
class LevelState:
    armed: bool = True
    as_of: datetime | None = None  # quote time of the last change (older quotes are replays)
    fired_at: datetime | None = None  # quote time of the last alert
    fired_price: float | None = None


@dataclass(frozen=True)
class LevelRule:
    rule_id: str
    user_id: str
    symbol: str
    direction: str  # ABOVE or BELOW
    level: float
    mode: str  # ONCE or REARM
    state: LevelState = field(default_factory=LevelState)


def past_level(direction: str, price: float, level: float) -> bool:
    return price >= level if direction == ABOVE else price <= level


def rearm_price(direction: str, level: float, margin_percent: float) -> float:
    """Where the price must go back to before a re-arming rule may fire again."""
    step = level * margin_percent / 100
    return level - step if direction == ABOVE else level + step


def step_level(rule: LevelRule, price: float, ts: datetime, margin_percent: float) -> tuple[LevelState, bool]:
    """Feed one quote's price; returns (new state, fires)."""
    state = rule.state
    if state.as_of is not None and ts <= state.as_of:
        return state, ts == state.fired_at
    if state.armed:
        if past_level(rule.direction, price, rule.level):
            return LevelState(armed=False, as_of=ts, fired_at=ts, fired_price=price), True
        return state, False
    if rule.mode == REARM:
        back = rearm_price(rule.direction, rule.level, margin_percent)
        if (price <= back) if rule.direction == ABOVE else (price >= back):
            return replace(state, armed=True, as_of=ts), False
    return state, False


def level_alert(rule: LevelRule, quote: Quote) -> UserAlert:
    symbol, price = quote["symbol"], quote["price"]
    again = " (one-shot: it will not fire again)" if rule.mode == ONCE else ""
    return UserAlert(rule.user_id, rule.rule_id, symbol, PRICE_LEVEL, price, rule.level, price, quote["timestamp"],
                     quote["source"], f"{symbol} is at {price:.2f}, {rule.direction} your level of "
                                      f"{rule.level:g}{again}")


# ---------------------------------------------------------------------- who has what
@dataclass(frozen=True)
class UserThresholds:
    """A user's own thresholds (None: theirs is the system's, whose alerts reach them)."""

    user_id: str
    watchlist: tuple[str, ...]  # empty = every symbol
    price_threshold: float | None
    volume_multiplier: float | None


class RuleIndex:
    """Every user rule by symbol: a quote looks at its symbol's rules and nothing else."""

    def __init__(self, thresholds: Iterable[UserThresholds] = (), levels: Iterable[LevelRule] = ()) -> None:
        self._everywhere: list[UserThresholds] = []
        self._thresholds: dict[str, list[UserThresholds]] = {}
        self._levels: dict[str, dict[str, LevelRule]] = {}
        for t in thresholds:
            if t.price_threshold is None and t.volume_multiplier is None:
                continue
            if not t.watchlist:
                self._everywhere.append(t)
            for symbol in t.watchlist:
                self._thresholds.setdefault(symbol, []).append(t)
        for rule in levels:
            self._levels.setdefault(rule.symbol, {})[rule.rule_id] = rule

    def thresholds(self, symbol: str) -> list[UserThresholds]:
        return self._thresholds.get(symbol, []) + self._everywhere

    def levels(self, symbol: str) -> list[LevelRule]:
        return list(self._levels.get(symbol, {}).values())

    def update_level(self, rule: LevelRule, state: LevelState) -> None:
        """Keep a rule's state after storing it (a rule deleted meanwhile stays gone)."""
        rules = self._levels.get(rule.symbol, {})
        if rule.rule_id in rules:
            rules[rule.rule_id] = replace(rules[rule.rule_id], state=state)

    def size(self) -> int:
        return sum(len(v) for v in self._levels.values()) + sum(len(v) for v in self._thresholds.values()) + len(
            self._everywhere)
