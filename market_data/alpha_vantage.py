"""Alpha Vantage client: GLOBAL_QUOTE (producer), TIME_SERIES_DAILY (backfill),
NEWS_SENTIMENT (news), all spending one call budget.

The free tier allows very few calls, and says no in several ways, all with
HTTP 200. Every refusal becomes `AlphaVantageRefused(kind, detail)` (kind: a
market_data.refusal.Refusal, which says whether it ends the tick or the day) so
callers can log which and fall back (simulation for quotes, other sources for news).
`alpha_vantage_client(settings, db)` builds the client on the shared call budget.
Parsing is pure (`parse_*`, `refusal_of`) and tested without a server.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any, Protocol

import requests

from config import Settings
from market_data.refusal import Refusal, SourceRefused

if TYPE_CHECKING:
    from pymongo.database import Database

USER_AGENT = "stock-analysis-system/1.0 (+https://github.com/; educational market dashboard)"


class AlphaVantageRefused(SourceRefused):
    """Alpha Vantage (or our budget for it) said no."""


# --------------------------------------------------------------------------- budget
class CallBudget(Protocol):
    def try_spend(self) -> bool:
        """Take one call from the budget; False (and nothing taken) when exhausted."""
        ...


# --------------------------------------------------------------------------- parsing
def refusal_of(payload: Any) -> AlphaVantageRefused | None:
    """The refusal a 200 answer carries, if any."""
    if not isinstance(payload, dict):
        return AlphaVantageRefused(Refusal.BAD_PAYLOAD, f"expected a JSON object, got {type(payload).__name__}")
    if "Error Message" in payload:
        return AlphaVantageRefused(Refusal.ERROR_MESSAGE, str(payload["Error Message"])[:300])
    if "Note" in payload:
        return AlphaVantageRefused(Refusal.RATE_LIMIT_NOTE, str(payload["Note"])[:300])
    if "Information" in payload:
        return AlphaVantageRefused(Refusal.RATE_LIMIT_INFORMATION, str(payload["Information"])[:300])
    return None


def _num(fields: dict[str, Any], key: str) -> float:
    raw = str(fields[key]).strip().rstrip("%")
    return float(raw)


def parse_global_quote(payload: dict[str, Any]) -> dict[str, Any]:
    """GLOBAL_QUOTE → {symbol, price, volume, open, high, low, previous_close, change_percent, latest_trading_day}."""
    quote = payload.get("Global Quote")
    if not quote:
        raise AlphaVantageRefused(Refusal.EMPTY_QUOTE, "empty \"Global Quote\" (unknown symbol or throttled)")
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
        raise AlphaVantageRefused(Refusal.BAD_PAYLOAD, f"unexpected Global Quote fields: {exc!r}") from exc


def parse_daily_series(payload: dict[str, Any]) -> list[dict[str, Any]]:
    """TIME_SERIES_DAILY → [{date, open, high, low, close, volume}], oldest first."""
    series = payload.get("Time Series (Daily)")
    if not isinstance(series, dict) or not series:
        raise AlphaVantageRefused(Refusal.BAD_PAYLOAD, "no \"Time Series (Daily)\" in the answer")
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
        raise AlphaVantageRefused(Refusal.BAD_PAYLOAD, f"unexpected daily bar: {exc!r}") from exc
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
            raise AlphaVantageRefused(Refusal.NO_KEY, "ALPHA_VANTAGE_API_KEY is not set")
        if not self.budget.try_spend():
            raise AlphaVantageRefused(Refusal.BUDGET_EXHAUSTED, "call budget for this minute/day is spent")
        try:
            resp = self.session.get(self.url, params={**params, "apikey": self.api_key}, timeout=self.timeout)
        except requests.Timeout as exc:
            raise AlphaVantageRefused(Refusal.TIMEOUT, f"no answer in {self.timeout}s") from exc
        except requests.RequestException as exc:
            raise AlphaVantageRefused(Refusal.HTTP_ERROR, type(exc).__name__) from exc
        if resp.status_code != 200:
            raise AlphaVantageRefused(Refusal.HTTP_ERROR, f"HTTP {resp.status_code}")
        try:
            payload = resp.json()
        except ValueError as exc:
            raise AlphaVantageRefused(Refusal.BAD_PAYLOAD, "answer is not JSON") from exc
        refusal = refusal_of(payload)
        if refusal is not None:
            raise refusal
        return payload

    def global_quote(self, symbol: str) -> dict[str, Any]:
        quote = parse_global_quote(self._call(function="GLOBAL_QUOTE", symbol=symbol))
        if quote["symbol"] != symbol.upper():
            raise AlphaVantageRefused(Refusal.BAD_PAYLOAD, f"asked for {symbol}, got {quote['symbol']}")
        return quote

    def daily_series(self, symbol: str, outputsize: str = "compact") -> list[dict[str, Any]]:
        return parse_daily_series(self._call(function="TIME_SERIES_DAILY", symbol=symbol, outputsize=outputsize))

    def news_sentiment(self, tickers: list[str], limit: int = 50) -> dict[str, Any]:
        payload = self._call(function="NEWS_SENTIMENT", tickers=",".join(tickers), limit=str(limit))
        if not isinstance(payload.get("feed"), list):
            raise AlphaVantageRefused(Refusal.BAD_PAYLOAD, "no \"feed\" list in NEWS_SENTIMENT answer")
        return payload


def alpha_vantage_client(settings: Settings, db: Database) -> AlphaVantageClient | None:
    """The one way every role gets Alpha Vantage: a client spending the call budget all
    processes share (in MongoDB), or None without ALPHA_VANTAGE_API_KEY."""
    if not settings.alpha_vantage_api_key:
        return None
    from database.mongo.api_budget import MongoCallBudget

    budget = MongoCallBudget(db, settings.alpha_vantage_calls_per_minute, settings.alpha_vantage_calls_per_day)
    return AlphaVantageClient(settings, budget)
