"""Alpha Vantage client: GLOBAL_QUOTE (producer), TIME_SERIES_DAILY (backfill),
NEWS_SENTIMENT (news), all spending one call budget.

The free tier allows very few calls, and says no in several ways, all with
HTTP 200. Every refusal becomes `AlphaVantageRefused(kind, detail)` so callers
can log which and fall back (simulation for quotes, other sources for news).
Parsing is pure (`parse_*`, `refusal_of`) and tested without a server.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

import requests

from config import Settings

USER_AGENT = "stock-analysis-system/1.0 (+https://github.com/; educational market dashboard)"


class AlphaVantageRefused(Exception):  # noqa: N818 - it is a refusal, not a programming error
    """The API (or our budget) said no. kind is one of KINDS."""

    KINDS = (
        "no_key", "budget_exhausted", "http_error", "timeout", "bad_payload",
        "error_message", "rate_limit_note", "rate_limit_information", "empty_quote",
    )

    def __init__(self, kind: str, detail: str = "") -> None:
        super().__init__(f"{kind}: {detail}" if detail else kind)
        self.kind = kind
        self.detail = detail


# --------------------------------------------------------------------------- budget
class CallBudget(Protocol):
    def try_spend(self) -> bool:
        """Take one call from the budget; False (and nothing taken) when exhausted."""
        ...


class LocalCallBudget:
    """Per-minute and per-day call budget for one process (thread-safe)."""

    def __init__(self, per_minute: int, per_day: int, clock: Callable[[], float] = time.time) -> None:
        self.per_minute = per_minute
        self.per_day = per_day
        self.clock = clock
        self._lock = threading.Lock()
        self._minute: tuple[int, int] = (-1, 0)  # (minute number, calls)
        self._day: tuple[int, int] = (-1, 0)  # (day number, calls)

    def try_spend(self) -> bool:
        now = self.clock()
        minute, day = int(now // 60), int(now // 86400)
        with self._lock:
            m_calls = self._minute[1] if self._minute[0] == minute else 0
            d_calls = self._day[1] if self._day[0] == day else 0
            if m_calls >= self.per_minute or d_calls >= self.per_day:
                return False
            self._minute = (minute, m_calls + 1)
            self._day = (day, d_calls + 1)
            return True


# --------------------------------------------------------------------------- parsing
def refusal_of(payload: Any) -> AlphaVantageRefused | None:
    """The refusal a 200 answer carries, if any."""
    if not isinstance(payload, dict):
        return AlphaVantageRefused("bad_payload", f"expected a JSON object, got {type(payload).__name__}")
    if "Error Message" in payload:
        return AlphaVantageRefused("error_message", str(payload["Error Message"])[:300])
    if "Note" in payload:
        return AlphaVantageRefused("rate_limit_note", str(payload["Note"])[:300])
    if "Information" in payload:
        return AlphaVantageRefused("rate_limit_information", str(payload["Information"])[:300])
    return None


def _num(fields: dict[str, Any], key: str) -> float:
    raw = str(fields[key]).strip().rstrip("%")
    return float(raw)


def parse_global_quote(payload: dict[str, Any]) -> dict[str, Any]:
    """GLOBAL_QUOTE → {symbol, price, volume, open, high, low, previous_close, change_percent, latest_trading_day}."""
    quote = payload.get("Global Quote")
    if not quote:
        raise AlphaVantageRefused("empty_quote", "empty \"Global Quote\" (unknown symbol or throttled)")
    try:
        return {
            "symbol": str(quote["01. symbol"]).upper(),
            "open": _num(quote, "02. open"),
            "high": _num(quote, "03. high"),
            "low": _num(quote, "04. low"),
            "price": _num(quote, "05. price"),
            "volume": int(_num(quote, "06. volume")),
            "latest_trading_day": str(quote["07. latest trading day"]),
            "previous_close": _num(quote, "08. previous close"),
            "change_percent": _num(quote, "10. change percent"),
        }
    except (KeyError, ValueError, TypeError) as exc:
        raise AlphaVantageRefused("bad_payload", f"unexpected Global Quote fields: {exc!r}") from exc


def parse_daily_series(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """TIME_SERIES_DAILY → [{date, open, high, low, close, volume}], oldest first."""
    series = payload.get("Time Series (Daily)")
    if not isinstance(series, dict) or not series:
        raise AlphaVantageRefused("bad_payload", "no \"Time Series (Daily)\" in the answer")
    rows = []
    try:
        for day, bar in series.items():
            rows.append({
                "date": date.fromisoformat(day),
                "open": _num(bar, "1. open"),
                "high": _num(bar, "2. high"),
                "low": _num(bar, "3. low"),
                "close": _num(bar, "4. close"),
                "volume": int(_num(bar, "5. volume")),
            })
    except (KeyError, ValueError, TypeError) as exc:
        raise AlphaVantageRefused("bad_payload", f"unexpected daily bar: {exc!r}") from exc
    rows.sort(key=lambda r: r["date"])
    return rows


# --------------------------------------------------------------------------- client
class AlphaVantageClient:
    def __init__(self, settings: Settings, budget: CallBudget, session: requests.Session | None = None) -> None:
        self.url = settings.alpha_vantage_url
        self.api_key = settings.alpha_vantage_api_key
        self.timeout = settings.http_timeout_seconds
        self.budget = budget
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT

    @property
    def enabled(self) -> bool:
        return bool(self.api_key)

    def _call(self, **params: str) -> dict[str, Any]:
        if not self.api_key:
            raise AlphaVantageRefused("no_key", "ALPHA_VANTAGE_API_KEY is not set")
        if not self.budget.try_spend():
            raise AlphaVantageRefused("budget_exhausted", "call budget for this minute/day is spent")
        try:
            resp = self.session.get(self.url, params={**params, "apikey": self.api_key}, timeout=self.timeout)
        except requests.Timeout as exc:
            raise AlphaVantageRefused("timeout", f"no answer in {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise AlphaVantageRefused("http_error", type(exc).__name__) from exc
        if resp.status_code != 200:
            raise AlphaVantageRefused("http_error", f"HTTP {resp.status_code}")
        try:
            payload = resp.json()
        except ValueError as exc:
            raise AlphaVantageRefused("bad_payload", "answer is not JSON") from exc
        refusal = refusal_of(payload)
        if refusal is not None:
            raise refusal
        return payload

    def global_quote(self, symbol: str) -> dict[str, Any]:
        quote = parse_global_quote(self._call(function="GLOBAL_QUOTE", symbol=symbol))
        if quote["symbol"] != symbol.upper():
            raise AlphaVantageRefused("bad_payload", f"asked for {symbol}, got {quote['symbol']}")
        return quote

    def daily_series(self, symbol: str, outputsize: str = "compact") -> list[dict[str, Any]]:
        return parse_daily_series(self._call(function="TIME_SERIES_DAILY", symbol=symbol, outputsize=outputsize))

    def news_sentiment(self, tickers: list[str], limit: int = 50) -> dict[str, Any]:
        payload = self._call(function="NEWS_SENTIMENT", tickers=",".join(tickers), limit=str(limit))
        if not isinstance(payload.get("feed"), list):
            raise AlphaVantageRefused("bad_payload", "no \"feed\" list in NEWS_SENTIMENT answer")
        return payload
