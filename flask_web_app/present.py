"""Turning stored rows into JSON and chart specs (pure: no Flask, no I/O).

Figures are plain plotly.js dicts: the page embeds them as JSON data and
static/js/dashboard.js hands them to Plotly.newPlot, so no inline script runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

from common.quote import MIXED, QUOTE_FIELDS, Source

# What the live page says about the session, from the newest quotes' market_open flags.
MARKET_TEXT = {
    "open": "Market open: quotes are live.",
    "closed": "Market closed: prices are the last session's and move again at the next open.",
}
RSI_LOW, RSI_HIGH = 30, 70


def jsonable(value: Any) -> Any:
    """Decimals to floats, dates and times to ISO 8601 (UTC 'Z' for aware times)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        text = value.isoformat()
        return text.replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items() if k != "_id"}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def quote_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a quote the pages show (common/quote.py QUOTE_FIELDS), JSON-ready;
    a field an older document lacks is null."""
    return {field: jsonable(doc.get(field)) for field in QUOTE_FIELDS}


def market_state(quotes: Iterable[Mapping[str, Any]]) -> str | None:
    """'open' when any symbol's newest quote was taken in the session, 'closed' when all
    say closed, None when no quote says (older producers sent no flag)."""
    flags = [q.get("market_open") for q in quotes if q.get("market_open") is not None]
    if not flags:
        return None
    return "open" if any(flags) else "closed"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def daily_figure(rows: Sequence[Mapping[str, Any]], symbol: str) -> dict[str, Any]:
    """Candlestick + SMA-20 (top), volume (middle), RSI-14 with 30/70 bands (bottom)."""
    dates = [jsonable(r["date"]) for r in rows]
    candle = {
        "type": "candlestick", "name": symbol, "x": dates,
        "open": [_num(r["open_price"]) for r in rows], "high": [_num(r["high_price"]) for r in rows],
        "low": [_num(r["low_price"]) for r in rows], "close": [_num(r["close_price"]) for r in rows],
        "xaxis": "x", "yaxis": "y",
    }
    sma = {"type": "scatter", "mode": "lines", "name": "SMA-20", "x": dates,
           "y": [_num(r.get("sma_20")) for r in rows], "line": {"width": 1.5, "color": "#ff9f1c"},
           "connectgaps": False, "xaxis": "x", "yaxis": "y"}
    volume = {"type": "bar", "name": "Volume", "x": dates, "y": [int(r.get("total_volume") or 0) for r in rows],
              "marker": {"color": "#8da9c4"}, "xaxis": "x", "yaxis": "y2"}
    rsi = {"type": "scatter", "mode": "lines", "name": "RSI-14", "x": dates,
           "y": [_num(r.get("rsi_14")) for r in rows], "line": {"width": 1.5, "color": "#6a4c93"},
           "xaxis": "x", "yaxis": "y3"}
    bands = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y3", "y0": level, "y1": level,
         "line": {"dash": "dot", "width": 1, "color": "#c0392b" if level == RSI_HIGH else "#27ae60"}}
        for level in (RSI_LOW, RSI_HIGH)
    ]
    layout = {
        "height": 620, "margin": {"l": 55, "r": 20, "t": 30, "b": 40}, "showlegend": True,
        "legend": {"orientation": "h", "y": 1.06},
        "xaxis": {"type": "date", "rangeslider": {"visible": False}, "anchor": "y3",
                  "rangebreaks": [{"bounds": ["sat", "mon"]}]},  # no empty weekend gaps
        "yaxis": {"domain": [0.45, 1.0], "title": {"text": "Price"}},
        "yaxis2": {"domain": [0.27, 0.42], "title": {"text": "Volume"}},
        "yaxis3": {"domain": [0.0, 0.24], "range": [0, 100], "title": {"text": "RSI-14"},
                   "tickvals": [RSI_LOW, 50, RSI_HIGH]},
        "shapes": bands,
    }
    return {"data": [candle, sma, volume, rsi], "layout": layout}


def intraday_figure(points: Sequence[Mapping[str, Any]], symbol: str) -> dict[str, Any]:
    # A line needs two points: a lone quote (just started, or the market is closed and
    # quotes are minutes apart) is drawn as a marker on the hour around it, not as an
    # empty chart with a millisecond axis.
    lone = len(points) == 1
    trace = {"type": "scatter", "mode": "markers" if lone else "lines", "name": symbol,
             "x": [jsonable(p["timestamp"]) for p in points], "y": [_num(p.get("price")) for p in points],
             "line": {"width": 1.5, "color": "#1f77b4"}, "marker": {"size": 8, "color": "#1f77b4"}}
    xaxis: dict[str, Any] = {"type": "date"}
    if lone and isinstance(points[0]["timestamp"], datetime):
        ts = points[0]["timestamp"]
        xaxis["range"] = [jsonable(ts - timedelta(minutes=30)), jsonable(ts + timedelta(minutes=30))]
    layout = {"height": 300, "margin": {"l": 55, "r": 20, "t": 20, "b": 40},
              "xaxis": xaxis, "yaxis": {"title": {"text": "Price"}}}
    return {"data": [trace], "layout": layout}


def sparkline_points(prices: Iterable[float | None], width: int = 120, height: int = 32) -> str:
    """SVG polyline points for a sparkline (the JS redraws it the same way on updates)."""
    values = [float(p) for p in prices if p is not None]
    if not values:
        return ""
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(values)
    )


def is_simulated(source: Any) -> bool:
    """True for data that is not (entirely) from the market: 'simulated' or 'mixed'."""
    return str(source or "").lower() in {Source.SIMULATED, MIXED}
