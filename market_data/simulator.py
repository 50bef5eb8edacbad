"""Simulated quotes calibrated on real large caps; one model for live ticks and the backfill.

Pure (no I/O, no clock: the caller passes `now`; the session comes from MarketHours).

Per symbol (figures in config/symbols.py):
- price: geometric Brownian motion at the symbol's annualised volatility (22-38 % for the default symbols).
  A share of each day's variance (OVERNIGHT_SHARE) is the overnight gap, applied at the
  session's first tick; the rest diffuses over the session in proportion to time.
- jumps: rare news-like moves of 1.5-4 % (JUMPS_PER_DAY: about one per symbol per month).
- events (SIMULATION_EVENT_RATE per session hour, off by default): a 5-9 % move with
  3-6x volume, so both alert rules fire on purpose in demos and tests.
- volume: shares traded since the symbol's previous quote, following a U-shaped intraday
  profile (busy open and close) whose ticks add up to the symbol's typical daily volume
  times a day-to-day factor.
- outside the session nothing moves: the quote repeats the last price with volume 0 and
  market_open False. The previous close rolls at the next session's open, as quote
  screens do.
- a real quote re-anchors the walk (`anchor`): simulation continues from the last real
  price, open, high, low and previous close, so nothing jumps back when sources alternate.

`daily_bars` is the same model at daily resolution (same volatility, overnight share,
jump rate and volumes) for batch/backfill.py, walked backwards from the price the live
series starts at, so the backfilled history and the first live day meet.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

from common.quote import Quote, Source
from config.symbols import annual_volatility, daily_volume, seed_price
from market_data.market_hours import MarketHours, Session

TRADING_DAYS_PER_YEAR = 252
DRIFT = 0.07  # annual
OVERNIGHT_SHARE = 0.2  # of a day's return variance, taken as the opening gap
JUMPS_PER_DAY = 1 / 21  # per symbol: about one a month
JUMP_SIZE = (0.015, 0.04)
EVENT_SIZE = (0.05, 0.09)
BURST = (3.0, 6.0)  # volume multiple at a jump or event, decaying over BURST_DECAY_SECONDS
BURST_DECAY_SECONDS = 300.0
DAY_VOLUME_SIGMA = 0.25  # day-to-day volume factor, log-normal
TICK_VOLUME_SIGMA = 0.2  # tick-to-tick noise, log-normal


def u_shape(fraction: float) -> float:
    """Intraday volume profile, mean 1 over the session: 2x at the open and close, 0.5x at midday."""
    return 0.5 + 1.5 * (2.0 * fraction - 1.0) ** 2


def _lognormal_mean_one(rng: random.Random, sigma: float) -> float:
    return math.exp(rng.gauss(-sigma * sigma / 2, sigma))


def interval_volume(day_volume: int, session: Session | None, now: datetime, interval_seconds: float) -> int:
    """A real source reports the day's cumulative volume; messages carry volume per
    quote. Spread the day's volume evenly over the session elapsed so far (at least one
    interval), which keeps real and simulated quotes comparable for the volume rule."""
    if session is None:
        return 0
    elapsed = max(min((now - session.open).total_seconds(), session.seconds), interval_seconds)
    return max(int(round(day_volume * interval_seconds / elapsed)), 0)


@dataclass
class SymbolState:
    price: float
    previous_close: float
    open: float
    high: float
    low: float
    session_day: date | None
    volatility: float  # annualised
    daily_volume: float
    day_factor: float = 1.0
    burst: float = 1.0
    last_at: datetime | None = None


class MarketSimulator:
    def __init__(self, symbols: Sequence[str], hours: MarketHours, interval_seconds: float,
                 seed: int | None = None, event_rate: float = 0.0) -> None:
        self.rng = random.Random(seed)
        self.hours = hours
        self.interval = interval_seconds
        self.event_rate = event_rate  # per symbol per session hour
        self.states: dict[str, SymbolState] = {}
        for symbol in symbols:
            self.add(symbol)

    def add(self, symbol: str) -> None:
        """Simulate one more symbol (from its seed price until `anchor`), unless it already is."""
        if symbol in self.states:
            return
        price = seed_price(symbol)
        self.states[symbol] = SymbolState(
            price=price, previous_close=price, open=price, high=price, low=price, session_day=None,
            volatility=annual_volatility(symbol), daily_volume=daily_volume(symbol),
        )

    def anchor(self, quote: Mapping[str, Any], now: datetime) -> None:
        """Continue the walk from a real (or stored) quote."""
        state = self.states[quote["symbol"]]
        state.price = float(quote["price"])
        state.previous_close = float(quote.get("previous_close") or quote["price"])
        state.open, state.high, state.low = float(quote["open"]), float(quote["high"]), float(quote["low"])
        session = self.hours.session_at(now)
        # Closed: the quote's price is a session's close, which the next session rolls over.
        state.session_day = session.day if session is not None else date.min
        state.last_at = now

    def _open_session(self, state: SymbolState, session: Session) -> None:
        if state.session_day is not None:
            state.previous_close = state.price
        daily_sigma = state.volatility / math.sqrt(TRADING_DAYS_PER_YEAR)
        gap = self.rng.gauss(0.0, daily_sigma * math.sqrt(OVERNIGHT_SHARE))
        state.price = round(max(state.price * math.exp(gap), 0.01), 2)
        state.open = state.high = state.low = state.price
        state.day_factor = _lognormal_mean_one(self.rng, DAY_VOLUME_SIGMA)
        state.burst = 1.0
        state.session_day = session.day
        state.last_at = None

    def next_quote(self, symbol: str, now: datetime) -> Quote:
        """One simulated quote for `symbol` at `now` (aware datetime)."""
        state = self.states[symbol]
        session = self.hours.session_at(now)
        volume = 0
        if session is not None:
            if state.session_day != session.day:
                self._open_session(state, session)
            volume = self._step(state, session, now)
        state.last_at = now
        change = (state.price - state.previous_close) / state.previous_close * 100
        return Quote(symbol=symbol, timestamp=now, price=state.price, volume=volume, open=state.open,
                     high=state.high, low=state.low, previous_close=state.previous_close,
                     change_percent=round(change, 4), source=Source.SIMULATED, market_open=session is not None)

    def _step(self, state: SymbolState, session: Session, now: datetime) -> int:
        """Move the price over the time since the symbol's previous quote; return its volume."""
        if state.last_at is not None and state.last_at >= session.open:
            since = state.last_at
        else:  # first quote of the session (or of a producer started mid-session): one interval
            since = max(session.open, now - timedelta(seconds=self.interval))
        dt = min(max((now - since).total_seconds(), 0.0), session.seconds)
        share = dt / session.seconds  # of this session's intraday variance and volume
        rng = self.rng
        daily_var = state.volatility**2 / TRADING_DAYS_PER_YEAR
        var = daily_var * (1 - OVERNIGHT_SHARE) * share
        log_return = (DRIFT / TRADING_DAYS_PER_YEAR) * share - var / 2 + math.sqrt(var) * rng.gauss(0.0, 1.0)
        state.burst = 1.0 + (state.burst - 1.0) * math.exp(-dt / BURST_DECAY_SECONDS)
        if rng.random() < -math.expm1(-JUMPS_PER_DAY * share):
            log_return += rng.choice((-1, 1)) * rng.uniform(*JUMP_SIZE)
            state.burst = max(state.burst, rng.uniform(*BURST))
        if self.event_rate and rng.random() < -math.expm1(-self.event_rate * dt / 3600):
            log_return += rng.choice((-1, 1)) * rng.uniform(*EVENT_SIZE)
            state.burst = max(state.burst, rng.uniform(*BURST))
        state.price = round(max(state.price * math.exp(log_return), 0.01), 2)
        state.high = max(state.high, state.price)
        state.low = min(state.low, state.price)
        expected = (state.daily_volume * state.day_factor * share
                    * u_shape(session.fraction(now)) * state.burst)
        return max(int(expected * _lognormal_mean_one(rng, TICK_VOLUME_SIGMA)), 1)


def daily_bars(symbol: str, days: Sequence[date], last_close: float, rng: random.Random) -> list[dict[str, Any]]:
    """Daily bars for `days` (oldest first) from the live model, walked backwards so
    that the last day's close is `last_close` (where the live series starts)."""
    sigma = annual_volatility(symbol) / math.sqrt(TRADING_DAYS_PER_YEAR)
    mu = DRIFT / TRADING_DAYS_PER_YEAR
    closes = [0.0] * len(days)
    opens = [0.0] * len(days)
    close = last_close
    for i in range(len(days) - 1, -1, -1):
        closes[i] = close
        intraday = mu - sigma**2 * (1 - OVERNIGHT_SHARE) / 2 + sigma * math.sqrt(1 - OVERNIGHT_SHARE) * rng.gauss(0, 1)
        if rng.random() < -math.expm1(-JUMPS_PER_DAY):
            intraday += rng.choice((-1, 1)) * rng.uniform(*JUMP_SIZE)
        opens[i] = close / math.exp(intraday)
        gap = sigma * math.sqrt(OVERNIGHT_SHARE) * rng.gauss(0, 1)
        close = opens[i] / math.exp(gap)  # the previous day's close
    bars = []
    for day, open_, close in zip(days, opens, closes, strict=True):
        # Range of a random walk over the session: about 0.8 daily sigma beyond the body each side.
        wick = sigma * math.sqrt(1 - OVERNIGHT_SHARE) * 0.5
        high = max(open_, close) * (1 + abs(rng.gauss(0.0, wick)))
        low = min(open_, close) * (1 - abs(rng.gauss(0.0, wick)))
        volume = int(daily_volume(symbol) * _lognormal_mean_one(rng, DAY_VOLUME_SIGMA))
        bars.append({"date": day, "open": round(open_, 4), "high": round(high, 4), "low": round(low, 4),
                     "close": round(close, 4), "volume": volume})
    return bars
