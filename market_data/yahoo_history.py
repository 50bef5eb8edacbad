"""Daily bars from Yahoo's chart endpoint (interval=1d), without fake crashes at splits. Pure: no I/O.

A daily chart answer carries, per session, `indicators.quote` (open, high, low, close,
volume) and `indicators.adjclose`. Yahoo adjusts the quote prices for splits only; adjclose
is adjusted for splits *and* dividends. The backfill stores the quote prices:
- none of them jumps at a split (a 10:1 split is not a -90 % day, a 4:1 not -75 %), so
  SMA-20 and RSI-14 see the real moves;
- the latest close is the price the market showed, and the live quotes (and the daily
  job's rows from them) continue it without a step the size of the dividends since;
- open, high, low and close stay one consistent bar (adjclose has no open/high/low).
The `splits` events are the guard: yfinance found that Yahoo sometimes serves the bars
before a fresh split unadjusted. If the series still jumps by a split's ratio at its date,
the bars before it are divided by the ratio (volumes multiplied) and a note says so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from market_data.refusal import Refusal
from market_data.yahoo_finance import YahooRefused, chart_result

# Yahoo's chart ranges and the calendar days each covers, shortest first.
CHART_RANGES = (("1mo", 31), ("3mo", 92), ("6mo", 183), ("1y", 366), ("2y", 731), ("5y", 1827), ("10y", 3653))


def chart_range(first: date, today: date) -> str:
    """The shortest chart range reaching back from `today` to `first`."""
    days = (today - first).days
    return next((name for name, covers in CHART_RANGES if covers >= days), "max")


@dataclass
class DailyHistory:
    bars: list[dict[str, Any]]  # oldest first: date, open, high, low, close, volume
    notes: list[str] = field(default_factory=list)  # splits we had to apply ourselves


def _split_dates(events: dict[str, Any], tz: ZoneInfo) -> list[tuple[date, float, str]]:
    splits = []
    for event in (events.get("splits") or {}).values():
        numerator, denominator = float(event["numerator"]), float(event["denominator"])
        if numerator > 0 and denominator > 0 and numerator != denominator:
            day = datetime.fromtimestamp(int(event["date"]), UTC).astimezone(tz).date()
            label = str(event.get("splitRatio") or f"{numerator:g}:{denominator:g}")
            splits.append((day, numerator / denominator, label))
    return sorted(splits)


def apply_missed_splits(bars: list[dict[str, Any]], splits: list[tuple[date, float, str]]) -> list[str]:
    """Divide the bars before a split by its ratio where the series still jumps by it (in place)."""
    notes = []
    for day, ratio, label in splits:
        i = next((k for k, bar in enumerate(bars) if bar["date"] >= day), None)
        if not i:  # the split is before the first bar, after the last, or on the first
            continue
        jump = bars[i - 1]["close"] / bars[i]["open"]
        if abs(math.log(jump) - math.log(ratio)) < abs(math.log(jump)):  # nearer the ratio than no move
            for bar in bars[:i]:
                for key in ("open", "high", "low", "close"):
                    bar[key] /= ratio
                bar["volume"] = round(bar["volume"] * ratio)
            notes.append(f"split {label} on {day}: Yahoo's bars before it were unadjusted; divided by {ratio:g}")
    return notes


def parse_daily_chart(payload: Any, symbol: str) -> DailyHistory:
    """A chart answer (interval=1d) → its daily bars, split-adjusted; YahooRefused otherwise.
    Sessions without prices (Yahoo sends nulls for them) are left out."""
    result, meta = chart_result(payload, symbol)
    try:
        tz = ZoneInfo(meta.get("exchangeTimezoneName") or "America/New_York")
        quote = (result.get("indicators", {}).get("quote") or [{}])[0]
        bars = []
        for k, ts in enumerate(result.get("timestamp") or []):
            values = [quote[key][k] for key in ("open", "high", "low", "close")]
            if any(v is None for v in values):
                continue
            open_, high, low, close = (float(v) for v in values)
            volume = quote.get("volume", [])[k] if k < len(quote.get("volume", [])) else None
            bars.append({"date": datetime.fromtimestamp(int(ts), UTC).astimezone(tz).date(),
                         "open": open_, "high": max(high, open_, close), "low": min(low, open_, close),
                         "close": close, "volume": int(volume or 0)})
        notes = apply_missed_splits(bars, _split_dates(result.get("events") or {}, tz))
    except YahooRefused:
        raise
    except (KeyError, IndexError, TypeError, ValueError, ZeroDivisionError) as exc:
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"unexpected daily chart fields: {exc!r}") from exc
    if any(bar["low"] <= 0 for bar in bars):
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"non-positive price in the daily bars of {symbol}")
    return DailyHistory(bars=bars, notes=notes)
