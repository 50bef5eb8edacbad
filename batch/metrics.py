"""Aggregation maths of the batch job (pure, no I/O).

- daily:  one row per symbol and market day from the per-symbol figures the
          MongoDB pipeline returns (database/mongo/price_stats.py), plus SMA-20,
          RSI-14, EMA-20, Bollinger (20, 2) and MACD (12, 26, 9) over the stored daily
          closes and this day (batch/indicators.py).
- weekly: one row per symbol and ISO week from that week's daily rows.
- performance: one row per symbol from its recent daily rows.

Formulas (all percentages are in percent, e.g. 1.5 means 1.5 %):
    daily change %       (close - open) / open * 100
    volatility           population standard deviation of the day's quote prices
    weekly change %      (last day's close - first day's open) / first day's open * 100
    weekly average       mean of the week's daily average prices (each day weighs the same,
                         so backfilled daily bars and quote-aggregated days mix fairly)
    N-day return %       (latest close / close of the last day on or before as_of - N calendar days - 1) * 100;
                         NULL when the history does not reach back N days
    annualised vol. %    sample std-dev of daily log returns over the last 90 calendar days * sqrt(252) * 100
    max drawdown 90d %   min over the last 90 calendar days of (close / running peak close - 1) * 100,
                         so 0 or negative: -12.5 means the close fell 12.5 % below its peak
    trend                "above_sma" when latest close >= SMA-20, "below_sma" when lower, NULL without SMA-20
"""

from __future__ import annotations

import dataclasses
import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, timedelta
from typing import Any

from batch.indicators import latest_indicators
from common.quote import MIXED, REAL, DailyBar, Source

TRADING_DAYS_PER_YEAR = 252
PERFORMANCE_WINDOW_DAYS = 90
RETURN_WINDOWS = (7, 30, 90)

def source_label(sources: Iterable[str | None]) -> str:
    """'real', 'simulated' or 'mixed' for a set of quote/row sources.

    Quotes say "yahoo", "alpha_vantage" or "simulated"; daily rows say real/simulated/mixed.
    Anything else (a future real feed) counts as real: only the simulator says
    "simulated", and a simulated figure must never pass for a real one, nor the reverse.
    """
    real = simulated = False
    for source in sources:
        if source == Source.SIMULATED:
            simulated = True
        elif source == MIXED:
            real = simulated = True
        elif source is not None:
            real = True
    if real and simulated:
        return MIXED
    return REAL if real else Source.SIMULATED.value


def change_pct(start: float, end: float) -> float | None:
    """(end - start) / start * 100; None when start is 0 (no meaningful base)."""
    if not start:
        return None
    return (end - start) / start * 100.0


def daily_row(symbol: str, day: date, stats: Mapping[str, Any], prior_closes: Sequence[float]) -> DailyBar:
    """The daily_aggregates row of one symbol and day.

    stats: the pipeline's figures for the day: open, close, high, low, avg_price,
    total_volume, tick_count, volatility, sources. prior_closes: stored daily
    closes before `day`, oldest first (the indicator history).
    """
    ticks = int(stats["tick_count"])
    total_volume = int(stats.get("total_volume") or 0)
    closes = [*prior_closes, float(stats["close"])]
    return DailyBar(
        **dataclasses.asdict(latest_indicators(closes)),
        symbol=symbol,
        date=day,
        open_price=float(stats["open"]),
        close_price=float(stats["close"]),
        high_price=float(stats["high"]),
        low_price=float(stats["low"]),
        avg_price=float(stats["avg_price"]),
        total_volume=total_volume,
        avg_volume=total_volume / ticks if ticks else 0.0,
        volatility=None if stats.get("volatility") is None else float(stats["volatility"]),
        daily_change_pct=change_pct(float(stats["open"]), float(stats["close"])),
        tick_count=ticks,
        source=source_label(stats.get("sources") or []),
    )


def iso_week_bounds(day: date) -> tuple[int, int, date, date]:
    """(ISO year, ISO week, Monday, Sunday) of the week containing `day`."""
    iso_year, iso_week, weekday = day.isocalendar()
    monday = day - timedelta(days=weekday - 1)
    return iso_year, iso_week, monday, monday + timedelta(days=6)


def weekly_rows(symbol: str, daily: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One weekly_aggregates row per ISO week present in `daily` (rows with date,
    open_price, close_price, high_price, low_price, avg_price, total_volume, source)."""
    weeks: dict[tuple[int, int], list[Mapping[str, Any]]] = {}
    for row in sorted(daily, key=lambda r: r["date"]):
        iso_year, iso_week, _, _ = iso_week_bounds(row["date"])
        weeks.setdefault((iso_year, iso_week), []).append(row)
    out = []
    for (iso_year, iso_week), rows in weeks.items():
        _, _, monday, sunday = iso_week_bounds(rows[0]["date"])
        open_price = float(rows[0]["open_price"])
        close_price = float(rows[-1]["close_price"])
        out.append({
            "symbol": symbol,
            "iso_year": iso_year,
            "iso_week": iso_week,
            "week_start": monday,
            "week_end": sunday,
            "open_price": open_price,
            "close_price": close_price,
            "high_price": max(float(r["high_price"]) for r in rows),
            "low_price": min(float(r["low_price"]) for r in rows),
            "avg_price": sum(float(r["avg_price"]) for r in rows) / len(rows),
            "total_volume": sum(int(r["total_volume"] or 0) for r in rows),
            "weekly_change_pct": change_pct(open_price, close_price),
            "trading_days": len(rows),
            "source": source_label(r["source"] for r in rows),
        })
    return out


def _close_on_or_before(rows: Sequence[Mapping[str, Any]], day: date) -> float | None:
    found = None
    for row in rows:  # oldest first
        if row["date"] > day:
            break
        found = float(row["close_price"])
    return found


def performance_row(symbol: str, daily: Sequence[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The stock_performance row from a symbol's daily rows (any order; needs date,
    close_price, sma_20, rsi_14, source). None when there are no rows."""
    if not daily:
        return None
    rows = sorted(daily, key=lambda r: r["date"])
    latest = rows[-1]
    as_of: date = latest["date"]
    latest_close = float(latest["close_price"])

    returns: dict[int, float | None] = {}
    for days in RETURN_WINDOWS:
        base = _close_on_or_before(rows, as_of - timedelta(days=days))
        returns[days] = None if base is None else change_pct(base, latest_close)

    window_start = as_of - timedelta(days=PERFORMANCE_WINDOW_DAYS)
    window = [float(r["close_price"]) for r in rows if r["date"] >= window_start]
    log_returns = [math.log(b / a) for a, b in zip(window, window[1:], strict=False) if a > 0 and b > 0]
    annual_vol = (
        statistics.stdev(log_returns) * math.sqrt(TRADING_DAYS_PER_YEAR) * 100.0 if len(log_returns) >= 2 else None
    )
    drawdown = max_drawdown_pct(window) if len(window) >= 2 else None

    sma_20 = None if latest.get("sma_20") is None else float(latest["sma_20"])
    rsi_14 = None if latest.get("rsi_14") is None else float(latest["rsi_14"])
    trend = None if sma_20 is None else ("above_sma" if latest_close >= sma_20 else "below_sma")
    return {
        "symbol": symbol,
        "as_of_date": as_of,
        "latest_close": latest_close,
        "return_7d_pct": returns[7],
        "return_30d_pct": returns[30],
        "return_90d_pct": returns[90],
        "annualized_volatility_pct": annual_vol,
        "max_drawdown_90d_pct": drawdown,
        "rsi_14": rsi_14,
        "sma_20": sma_20,
        "trend": trend,
        "source": source_label(r["source"] for r in rows if r["date"] >= window_start),
    }


def max_drawdown_pct(closes: Sequence[float]) -> float:
    """Largest fall from a running peak, in percent (0 or negative)."""
    peak = -math.inf
    worst = 0.0
    for close in closes:
        peak = max(peak, close)
        if peak > 0:
            worst = min(worst, (close / peak - 1.0) * 100.0)
    return worst
