"""The daily series of the dashboard as CSV (pure: no Flask, no I/O).

The columns are the daily_aggregates columns the chart draws, under the same names, so
a spreadsheet row and a chart point compare one to one.

CSV injection (OWASP "CSV Injection"): a spreadsheet runs a cell that starts with
= + - @ (or a tab / carriage return before one) as a formula. Numbers and dates are
written by this module from stored numbers, so they cannot carry one; every text cell
(symbol, source) that starts with such a character gets a leading apostrophe, which
spreadsheets show as text and never evaluate.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from datetime import date
from decimal import Decimal
from typing import Any

CSV_COLUMNS = (
    "date", "symbol", "open_price", "high_price", "low_price", "close_price", "total_volume",
    "sma_20", "ema_20", "bb_upper", "bb_lower", "rsi_14", "macd", "macd_signal", "macd_hist", "source",
)
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def safe_text(text: str) -> str:
    """A text cell no spreadsheet evaluates as a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):  # before int: a bool is an int
        return safe_text(str(value))
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, date):
        return value.isoformat()
    return safe_text(str(value))


def daily_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Header and one line per daily row (oldest first, as given), CRLF line ends (RFC 4180)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        writer.writerow([cell(row.get(column)) for column in CSV_COLUMNS])
    return out.getvalue()


def csv_filename(symbol: str, rows: Sequence[Mapping[str, Any]]) -> str:
    """e.g. AAPL-daily-2026-01-02-to-2026-03-13.csv (the symbol is validated: letters, digits, . -)."""
    safe = "".join(ch for ch in symbol if ch.isalnum() or ch in ".-") or "series"
    if not rows:
        return f"{safe}-daily.csv"
    return f"{safe}-daily-{cell(rows[0]['date'])}-to-{cell(rows[-1]['date'])}.csv"
