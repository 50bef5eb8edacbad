"""Turning stored rows into JSON and chart specs (pure: no Flask, no I/O).

Figures are plain plotly.js dicts: the page embeds them as JSON data and
static/js/dashboard.js hands them to Plotly.newPlot, so no inline script runs.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
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


def utc_iso(value: datetime | str | None) -> str:
    """An instant as ISO 8601 UTC ('…Z') for <time datetime>: static/js/localtime.js shows it in the
    viewer's and the market's zones. A naive datetime is UTC (MySQL DATETIME columns hold UTC)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    aware = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    return aware.isoformat(timespec="seconds").replace("+00:00", "Z")


def utc_text(value: datetime | str | None, seconds: bool = False) -> str:
    """The text a page without scripts shows: '2026-01-13 15:30 UTC'."""
    iso = utc_iso(value)
    return f"{iso[:19 if seconds else 16].replace('T', ' ')} UTC" if iso else ""


def quote_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a quote the pages show (common/quote.py QUOTE_FIELDS), JSON-ready;
    a field an older document lacks is null."""
    return {field: jsonable(doc.get(field)) for field in QUOTE_FIELDS}


# What a page shows of an alert (email status and errors stay on the account page).
ALERT_FIELDS = ("alert_key", "symbol", "rule", "message", "value", "threshold", "price", "quote_timestamp",
                "created_at", "source")


def alert_view(doc: Mapping[str, Any]) -> dict[str, Any]:
    """A system or own alert as the pages show it; `own` marks a user's own alert (the user
    id itself never goes to a page: whose it is was decided on the server)."""
    view = {name: jsonable(doc.get(name)) for name in ALERT_FIELDS}
    if doc.get("own"):
        view["own"] = True
    return view


def merge_alerts(system: Iterable[Mapping[str, Any]], own: Iterable[Mapping[str, Any]],
                 limit: int) -> list[dict[str, Any]]:
    """The newest `limit` of the system's alerts and a user's own ones together, newest first
    (by created_at), the own ones marked `own`; each alert_key once."""
    merged: dict[object, dict[str, Any]] = {}
    for n, (doc, is_own) in enumerate([*((d, False) for d in system), *((d, True) for d in own)]):
        key = doc.get("alert_key") or n  # a row without a key (older rows) is kept, not merged
        if key not in merged:
            merged[key] = {**doc, "own": True} if is_own else dict(doc)
    oldest = datetime.min.replace(tzinfo=UTC)

    def created(doc: Mapping[str, Any]) -> datetime:
        at = doc.get("created_at")
        if not isinstance(at, datetime):
            return oldest
        return at if at.tzinfo else at.replace(tzinfo=UTC)  # pymongo hands back naive UTC

    return sorted(merged.values(), key=created, reverse=True)[:limit]


def market_state(quotes: Iterable[Mapping[str, Any]]) -> str | None:
    """'open' when any symbol's newest quote was taken in the session, 'closed' when all
    say closed, None when no quote says (older producers sent no flag)."""
    flags = [q.get("market_open") for q in quotes if q.get("market_open") is not None]
    if not flags:
        return None
    return "open" if any(flags) else "closed"


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def _series(rows: Sequence[Mapping[str, Any]], column: str) -> list[float | None]:
    return [_num(r.get(column)) for r in rows]


def _weekend(day: Any) -> bool:
    """Whether a daily row's date falls in the chart's Saturday-to-Monday rangebreak."""
    return isinstance(day, date) and day.weekday() >= 5


def daily_figure(rows: Sequence[Mapping[str, Any]], symbol: str) -> dict[str, Any]:
    """Candlestick with Bollinger (20, 2), SMA-20 (the middle band) and EMA-20 (top), volume,
    RSI-14 with 30/70 bands, MACD (12, 26, 9) line, signal and histogram (bottom).

    Colours are the light theme's; static/js/chart_theme.js recolours axes and background
    for a dark system setting (the traces' colours read on both)."""
    dates = [jsonable(r["date"]) for r in rows]
    # A row on a Saturday or Sunday (quotes stored while the calendar said open) falls in the
    # weekend rangebreak below: plotly.js makes such a point a gap, and with connectgaps off every
    # line broke there while the candles looked whole. The lines leave those rows out (the axis
    # hides them anyway); a missing value on a trading day still shows as a gap.
    traded = [r for r in rows if not _weekend(r["date"])]
    traded_dates = [jsonable(r["date"]) for r in traded]

    def line(name: str, column: str, style: dict[str, Any], yaxis: str, **extra: Any) -> dict[str, Any]:
        return {"type": "scatter", "mode": "lines", "name": name, "x": traded_dates, "y": _series(traded, column),
                "line": {"width": 1.5, **style}, "connectgaps": False, "xaxis": "x", "yaxis": yaxis, **extra}

    candle = {
        "type": "candlestick", "name": symbol, "x": dates,
        "open": _series(rows, "open_price"), "high": _series(rows, "high_price"),
        "low": _series(rows, "low_price"), "close": _series(rows, "close_price"),
        "xaxis": "x", "yaxis": "y",
    }
    # The band: upper first, then lower filled up to it ("tonexty"), drawn under the candles.
    band = {"width": 1, "color": "rgba(86, 130, 190, 0.75)", "dash": "dot"}
    upper = line("Bollinger upper (20, 2σ)", "bb_upper", band, "y", legendgroup="bb")
    lower = line("Bollinger lower (20, 2σ)", "bb_lower", band, "y", legendgroup="bb",
                 fill="tonexty", fillcolor="rgba(86, 130, 190, 0.10)")
    sma = line("SMA-20 (Bollinger middle)", "sma_20", {"color": "#ff9f1c"}, "y")
    ema = line("EMA-20", "ema_20", {"color": "#e0457b"}, "y")
    volume = {"type": "bar", "name": "Volume", "x": dates, "y": [int(r.get("total_volume") or 0) for r in rows],
              "marker": {"color": "#8da9c4"}, "xaxis": "x", "yaxis": "y2"}
    rsi = line("RSI-14", "rsi_14", {"color": "#6a4c93"}, "y3")
    hist = [_num(r.get("macd_hist")) for r in rows]
    macd_hist = {"type": "bar", "name": "MACD histogram", "x": dates, "y": hist, "xaxis": "x", "yaxis": "y4",
                 "marker": {"color": ["#26a269" if (h or 0) >= 0 else "#c01c28" for h in hist]}}
    macd = line("MACD (12, 26)", "macd", {"color": "#1f6feb"}, "y4")
    signal = line("MACD signal (9)", "macd_signal", {"color": "#ff7f0e"}, "y4")
    bands = [
        {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y3", "y0": level, "y1": level,
         "line": {"dash": "dot", "width": 1, "color": "#c0392b" if level == RSI_HIGH else "#27ae60"}}
        for level in (RSI_LOW, RSI_HIGH)
    ]
    layout = {
        "height": 760, "margin": {"l": 55, "r": 20, "t": 30, "b": 40}, "showlegend": True,
        "legend": {"orientation": "h", "y": 1.04},
        "xaxis": {"type": "date", "rangeslider": {"visible": False}, "anchor": "y4",
                  "rangebreaks": [{"bounds": ["sat", "mon"]}]},  # no empty weekend gaps
        "yaxis": {"domain": [0.50, 1.0], "title": {"text": "Price"}},
        "yaxis2": {"domain": [0.38, 0.47], "title": {"text": "Volume"}},
        "yaxis3": {"domain": [0.20, 0.35], "range": [0, 100], "title": {"text": "RSI-14"},
                   "tickvals": [RSI_LOW, 50, RSI_HIGH]},
        "yaxis4": {"domain": [0.0, 0.17], "title": {"text": "MACD"}, "zeroline": True},
        "shapes": bands,
    }
    return {"data": [upper, lower, candle, sma, ema, volume, rsi, macd_hist, macd, signal], "layout": layout}


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
    if len(values) == 1:
        # A line needs two points: the first quote is a dot (round caps on a zero-length
        # segment) where the newest point goes, so the cell is not blank for its first minute.
        return f"{width - 2:.1f},{height / 2:.1f} {width - 2:.1f},{height / 2:.1f}"
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = width / max(len(values) - 1, 1)
    return " ".join(
        f"{i * step:.1f},{height - 2 - (v - low) / span * (height - 4):.1f}" for i, v in enumerate(values)
    )


def is_simulated(source: Any) -> bool:
    """True for data that is not (entirely) from the market: 'simulated' or 'mixed'."""
    return str(source or "").lower() in {Source.SIMULATED, MIXED}
