"""Simulated quotes: a seedable geometric Brownian motion per symbol.

Pure (no I/O, no clock: the caller passes `now`). Within a market day (in the
market time zone) open/high/low/previous close stay consistent; at a new day the
last price becomes the previous close. Volume is per tick (shares traded since the
symbol's previous quote), log-normal around a per-symbol base with occasional
bursts; prices take occasional larger jumps, so that both alert rules fire now and
then. A real quote re-anchors the walk (`anchor`), so simulated ticks continue
from the last real price.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from datetime import date, datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from config.symbols import DAILY_VOLUMES, SEED_PRICES

SESSION_OPEN = time(9, 30)
SESSION_CLOSE = time(16, 0)
SESSION_SECONDS = 6.5 * 3600
TRADING_SECONDS_PER_YEAR = 252 * SESSION_SECONDS


@dataclass
class SymbolState:
    price: float
    previous_close: float
    open: float
    high: float
    low: float
    day: date | None
    volatility: float  # annualised
    tick_volume: float  # typical shares per tick


def session_elapsed_seconds(now: datetime, tz: ZoneInfo) -> float:
    """Seconds of the regular session (09:30-16:00 market time) elapsed at `now`, clamped."""
    local = now.astimezone(tz)
    start = datetime.combine(local.date(), SESSION_OPEN, tz)
    return min(max((local - start).total_seconds(), 0.0), SESSION_SECONDS)


def interval_volume(day_volume: int, now: datetime, interval_seconds: float, tz: ZoneInfo) -> int:
    """Alpha Vantage reports the day's cumulative volume; messages carry volume per
    tick. Spread the day's volume evenly over the session elapsed so far (at least one
    tick), which keeps real and simulated quotes comparable for the volume rule."""
    elapsed = max(session_elapsed_seconds(now, tz), interval_seconds)
    return max(int(round(day_volume * interval_seconds / elapsed)), 0)


class MarketSimulator:
    def __init__(self, symbols: list[str], interval_seconds: float, tz: ZoneInfo, seed: int | None = None,
                 jump_probability: float = 0.01, burst_probability: float = 0.02) -> None:
        self.rng = random.Random(seed)
        self.interval = interval_seconds
        self.tz = tz
        self.jump_probability = jump_probability
        self.burst_probability = burst_probability
        ticks_per_day = max(SESSION_SECONDS / interval_seconds, 1.0)
        self.states: dict[str, SymbolState] = {}
        for symbol in symbols:
            price = SEED_PRICES.get(symbol) or round(self.rng.uniform(20, 400), 2)
            daily = DAILY_VOLUMES.get(symbol) or self.rng.uniform(2e6, 30e6)
            self.states[symbol] = SymbolState(
                price=price, previous_close=price, open=price, high=price, low=price, day=None,
                volatility=self.rng.uniform(0.2, 0.5), tick_volume=daily / ticks_per_day,
            )

    def _roll_day(self, state: SymbolState, today: date) -> None:
        if state.day != today:
            if state.day is not None:
                state.previous_close = state.price
            state.open = state.high = state.low = state.price
            state.day = today

    def anchor(self, quote: dict[str, Any], now: datetime) -> None:
        """Continue the walk from a real quote (price, open/high/low, previous close)."""
        state = self.states[quote["symbol"]]
        state.day = now.astimezone(self.tz).date()
        state.price = quote["price"]
        state.open, state.high, state.low = quote["open"], quote["high"], quote["low"]
        state.previous_close = quote["previous_close"]
        if quote.get("volume"):
            # Keep simulated tick volumes on the scale of the real ones.
            state.tick_volume = 0.5 * state.tick_volume + 0.5 * quote["volume"]

    def next_quote(self, symbol: str, now: datetime) -> dict[str, Any]:
        """One simulated quote for `symbol` at `now` (aware datetime)."""
        state = self.states[symbol]
        self._roll_day(state, now.astimezone(self.tz).date())
        dt = self.interval / TRADING_SECONDS_PER_YEAR
        sigma = state.volatility
        # GBM step with a small positive drift.
        log_return = (0.07 - sigma**2 / 2) * dt + sigma * math.sqrt(dt) * self.rng.gauss(0, 1)
        burst = 1.0
        if self.rng.random() < self.jump_probability:
            # News-like move of 2-8 %, either way; it comes with heavy volume.
            log_return += self.rng.choice((-1, 1)) * self.rng.uniform(0.02, 0.08)
            burst = self.rng.uniform(2.5, 6.0)
        elif self.rng.random() < self.burst_probability:
            burst = self.rng.uniform(2.5, 6.0)
        state.price = round(max(state.price * math.exp(log_return), 0.01), 2)
        state.high = max(state.high, state.price)
        state.low = min(state.low, state.price)
        volume = int(state.tick_volume * burst * self.rng.lognormvariate(0, 0.25))
        change = (state.price - state.previous_close) / state.previous_close * 100
        return {
            "symbol": symbol,
            "timestamp": now,
            "price": state.price,
            "volume": max(volume, 1),
            "open": state.open,
            "high": state.high,
            "low": state.low,
            "previous_close": state.previous_close,
            "change_percent": round(change, 4),
            "source": "simulated",
        }

