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
"""

from __future__ import annotations

from collections.abc import Sequence

SMA_PERIOD = 20
RSI_PERIOD = 14


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
