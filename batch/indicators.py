"""Technical indicators over a series of daily closes (pure, no I/O).

Both functions take closes oldest first and answer for the *last* close. Where
the series is too short they return None: the table stores NULL, never a
made-up number.

SMA-n (simple moving average)
    SMA_t = (C_t + C_{t-1} + ... + C_{t-n+1}) / n
    Needs n closes.

RSI-n with Wilder's smoothing (J. Welles Wilder, "New Concepts in Technical
Trading Systems", 1978; the StockCharts ChartSchool worked example uses it)
    change_i = C_i - C_{i-1};  gain_i = max(change_i, 0);  loss_i = max(-change_i, 0)
    first AvgGain = mean(gain_1..gain_n),  first AvgLoss = mean(loss_1..loss_n)
    then  AvgGain_t = (AvgGain_{t-1} * (n-1) + gain_t) / n   (same for AvgLoss)
    RS = AvgGain / AvgLoss;  RSI = 100 - 100 / (1 + RS)
    AvgLoss = 0 gives RSI 100 (only gains); AvgGain = AvgLoss = 0 (a flat
    series) gives 50, neither overbought nor oversold.
    Needs n + 1 closes (n changes). Because of the smoothing the value depends
    on how far back the series starts; callers pass the whole stored history
    (StockCharts likewise uses up to 250 days) so results are stable.

EMA-n (exponential moving average), alpha = 2 / (n + 1)
    EMA_0 = C_0;  EMA_t = alpha * C_t + (1 - alpha) * EMA_{t-1}
    Seeded with the first close (pandas `ewm(span=n, adjust=False)`, which the `ta`
    package and most charting tools use); shown from the n-th close on, like
    `min_periods=n`, so a value never rests on fewer than n closes. The seed's
    weight after k more closes is (1 - alpha)^k: after the 300 closes the batch
    reads it is below 1e-10 for n <= 26, so the start of the history no longer shows.
    EMA_PERIOD = 20 (next to SMA-20 on the chart).

Bollinger bands (John Bollinger; n = 20, k = 2)
    middle = SMA-n;  upper = middle + k * sigma;  lower = middle - k * sigma
    sigma: the population standard deviation of the same n closes (divide by n,
    as Bollinger and StockCharts do; pandas `rolling(n).std(ddof=0)`). Needs n closes.

MACD (Gerald Appel; 12, 26, 9)
    line      = EMA-12(C) - EMA-26(C)          from the 26th close on
    signal    = EMA-9 of the line, seeded with the line's first value
                                               from the 9th line value on (34th close)
    histogram = line - signal
    Exactly `ta.trend.MACD(window_fast=12, window_slow=26, window_sign=9)`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

SMA_PERIOD = 20
RSI_PERIOD = 14
EMA_PERIOD = 20
BOLLINGER_PERIOD = 20
BOLLINGER_WIDTH = 2.0  # standard deviations either side of the middle band
MACD_FAST, MACD_SLOW, MACD_SIGNAL = 12, 26, 9


def sma(closes: Sequence[float], period: int = SMA_PERIOD) -> float | None:
    """SMA of the last `period` closes, or None with fewer closes."""
    if period < 1:
        raise ValueError("period must be >= 1")
    if len(closes) < period:
        return None
    window = closes[-period:]
    return sum(window) / period


def sma_series(closes: Sequence[float], period: int = SMA_PERIOD) -> list[float | None]:
    """SMA at every position (None until `period` closes exist)."""
    return [sma(closes[: i + 1], period) for i in range(len(closes))]


def _rsi_from_averages(avg_gain: float, avg_loss: float) -> float:
    if avg_loss == 0:
        return 50.0 if avg_gain == 0 else 100.0
    rs = avg_gain / avg_loss
    return 100.0 - 100.0 / (1.0 + rs)


def rsi_series(closes: Sequence[float], period: int = RSI_PERIOD) -> list[float | None]:
    """Wilder RSI at every position (None for the first `period` closes)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    out: list[float | None] = [None] * len(closes)
    if len(closes) <= period:
        return out
    gains = [max(closes[i] - closes[i - 1], 0.0) for i in range(1, len(closes))]
    losses = [max(closes[i - 1] - closes[i], 0.0) for i in range(1, len(closes))]
    avg_gain = sum(gains[:period]) / period
    avg_loss = sum(losses[:period]) / period
    out[period] = _rsi_from_averages(avg_gain, avg_loss)
    for i in range(period, len(gains)):
        avg_gain = (avg_gain * (period - 1) + gains[i]) / period
        avg_loss = (avg_loss * (period - 1) + losses[i]) / period
        out[i + 1] = _rsi_from_averages(avg_gain, avg_loss)
    return out


def rsi(closes: Sequence[float], period: int = RSI_PERIOD) -> float | None:
    """Wilder RSI of the last close, or None with `period` closes or fewer."""
    series = rsi_series(closes, period)
    return series[-1] if series else None


def _ewm(values: Sequence[float], period: int) -> list[float]:
    """The recursion of EMA-`period` at every position, seeded with values[0] (no warm-up cut)."""
    alpha = 2.0 / (period + 1)
    out: list[float] = []
    for value in values:
        out.append(value if not out else alpha * value + (1.0 - alpha) * out[-1])
    return out


def ema_series(closes: Sequence[float], period: int = EMA_PERIOD) -> list[float | None]:
    """EMA at every position (None for the first `period - 1` closes)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    smoothed = _ewm(closes, period)
    return [None if i < period - 1 else v for i, v in enumerate(smoothed)]


@dataclass(frozen=True)
class Bollinger:
    middle: float
    upper: float
    lower: float


def bollinger_series(closes: Sequence[float], period: int = BOLLINGER_PERIOD,
                     width: float = BOLLINGER_WIDTH) -> list[Bollinger | None]:
    """Bollinger bands at every position (None until `period` closes exist)."""
    if period < 1:
        raise ValueError("period must be >= 1")
    out: list[Bollinger | None] = []
    for i in range(len(closes)):
        if i < period - 1:
            out.append(None)
            continue
        window = closes[i - period + 1: i + 1]
        middle = sum(window) / period
        sigma = math.sqrt(sum((c - middle) ** 2 for c in window) / period)
        out.append(Bollinger(middle, middle + width * sigma, middle - width * sigma))
    return out


@dataclass(frozen=True)
class Macd:
    line: float
    signal: float | None  # None until `signal` line values exist
    histogram: float | None


def macd_series(closes: Sequence[float], fast: int = MACD_FAST, slow: int = MACD_SLOW,
                signal: int = MACD_SIGNAL) -> list[Macd | None]:
    """MACD at every position (None until `slow` closes exist)."""
    if not 1 <= fast < slow or signal < 1:
        raise ValueError("need 1 <= fast < slow and signal >= 1")
    fast_ema, slow_ema = _ewm(closes, fast), _ewm(closes, slow)
    lines = [f - s for f, s in zip(fast_ema, slow_ema, strict=True)][slow - 1:]
    signals = _ewm(lines, signal)
    out: list[Macd | None] = [None] * min(len(closes), slow - 1)
    for k, (line, sig) in enumerate(zip(lines, signals, strict=True)):
        if k < signal - 1:
            out.append(Macd(line, None, None))
        else:
            out.append(Macd(line, sig, line - sig))
    return out


@dataclass(frozen=True)
class DailyIndicators:
    """Every indicator a daily_aggregates row stores, for one day (None: too few closes)."""

    sma_20: float | None = None
    rsi_14: float | None = None
    ema_20: float | None = None
    bb_middle: float | None = None
    bb_upper: float | None = None
    bb_lower: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None


def daily_indicators(closes: Sequence[float]) -> list[DailyIndicators]:
    """The stored indicators at every position of `closes` (oldest first)."""
    smas, rsis, emas = sma_series(closes), rsi_series(closes), ema_series(closes)
    bands, macds = bollinger_series(closes), macd_series(closes)
    return [
        DailyIndicators(
            sma_20=s, rsi_14=r, ema_20=e,
            bb_middle=b.middle if b else None, bb_upper=b.upper if b else None, bb_lower=b.lower if b else None,
            macd=m.line if m else None, macd_signal=m.signal if m else None, macd_hist=m.histogram if m else None,
        )
        for s, r, e, b, m in zip(smas, rsis, emas, bands, macds, strict=True)
    ]


def latest_indicators(closes: Sequence[float]) -> DailyIndicators:
    """The indicators of the last close (all None for an empty series)."""
    series = daily_indicators(closes)
    return series[-1] if series else DailyIndicators()
