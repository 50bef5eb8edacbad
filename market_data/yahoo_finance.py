"""Yahoo Finance quotes without a key: a thin client of the public chart JSON.

    GET {YAHOO_FINANCE_URL}/v8/finance/chart/{symbol}?range=1d&interval=1m

is what yfinance itself reads for prices; it needs no cookie or crumb (the quote
endpoints do). yfinance is not used: it fetches cookies and crumbs through
curl_cffi, which a local server of recorded answers cannot stand in for. One answer
has the day's one-minute bars and a `meta` block: regularMarketPrice, the day's
high/low/volume, previousClose and currentTradingPeriod (the regular session's
start and end), so one request gives a full quote and whether the session is open.

The chart endpoint takes one symbol per request (the spark endpoint takes many but
carries closes only: no volume, no day range), so the producer asks for each symbol
at most every YAHOO_REFRESH_SECONDS: 7 symbols at 60 s are 420 requests an hour
while the market is open, and 7 per CLOSED_QUOTE_INTERVAL_SECONDS while it is closed
(84 an hour at 300 s). Yahoo publishes no limit (users report from a few hundred to
about 2,000 an hour per address), so this stays at the low end and backs off at the
first refusal. Its one-minute bars do not change faster than that anyway.

Yahoo says no as HTTP 429 ("Too Many Requests", plain text), 999 (request denied),
an HTML consent or error page instead of JSON, or a JSON chart.error (unknown
symbol: 404 "Not Found"). Every refusal becomes `YahooRefused(kind, detail)`; after
429/999/HTML/unreachable the client backs off (60 s doubling to 30 min, or the
Retry-After the answer gives) and refuses without asking until then. Parsing is pure
(`parse_chart`) and tested without a server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import requests

from common.retry import Backoff
from config import Settings
from market_data.refusal import Refusal, SourceRefused

# Yahoo answers scripts without a browser-like agent with 429 more readily.
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) stock-analysis-system/1.0"
BACKOFF = Backoff(60.0, 1800.0)
UNKNOWN_SYMBOL_RETRY = timedelta(hours=6)  # a symbol Yahoo does not know is asked again after this
BACKOFF_KINDS = {Refusal.RATE_LIMITED, Refusal.DENIED, Refusal.HTML_PAGE, Refusal.UNREACHABLE, Refusal.TIMEOUT,
                 Refusal.HTTP_ERROR}


class YahooRefused(SourceRefused):
    """Yahoo said no (or we are backing off)."""

    retry_after: str | None = None  # the Retry-After header of a 429/999 answer


@dataclass(frozen=True)
class YahooQuote:
    symbol: str
    price: float
    open: float
    high: float
    low: float
    previous_close: float
    day_volume: int
    market_time: datetime  # of regularMarketPrice
    session_start: datetime
    session_end: datetime

    def market_open(self, now: datetime) -> bool:
        return self.session_start <= now < self.session_end

    @property
    def change_percent(self) -> float:
        return round((self.price - self.previous_close) / self.previous_close * 100, 4)


def _ts(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value), UTC)


def _first(values: list[Any] | None) -> float | None:
    return next((float(v) for v in values or [] if v is not None), None)


def chart_error(payload: Any) -> YahooRefused | None:
    """The refusal a chart answer carries in chart.error, if any."""
    if not isinstance(payload, dict) or not isinstance(payload.get("chart"), dict):
        return YahooRefused(Refusal.BAD_PAYLOAD, "no \"chart\" object in the answer")
    error = payload["chart"].get("error")
    if error:
        code = str(error.get("code", "")) if isinstance(error, dict) else str(error)
        description = str(error.get("description", ""))[:200] if isinstance(error, dict) else ""
        kind = Refusal.UNKNOWN_SYMBOL if code == "Not Found" else Refusal.BAD_PAYLOAD
        return YahooRefused(kind, f"{code}: {description}".strip(": "))
    return None


def parse_chart(payload: Any, symbol: str) -> YahooQuote:
    """A chart answer (range=1d, interval=1m) → YahooQuote; YahooRefused otherwise."""
    refusal = chart_error(payload)
    if refusal is not None:
        raise refusal
    results = payload["chart"].get("result") or []
    if not results or not isinstance(results[0], dict):
        raise YahooRefused(Refusal.BAD_PAYLOAD, "empty chart.result")
    result = results[0]
    try:
        meta = result["meta"]
        got = str(meta["symbol"]).upper()
        if got != symbol.upper():
            raise YahooRefused(Refusal.BAD_PAYLOAD, f"asked for {symbol}, got {got}")
        price = float(meta["regularMarketPrice"])
        bars = (result.get("indicators", {}).get("quote") or [{}])[0]
        previous_close = float(meta.get("previousClose") or meta["chartPreviousClose"])
        regular = meta["currentTradingPeriod"]["regular"]
        high = meta.get("regularMarketDayHigh")
        low = meta.get("regularMarketDayLow")
        highs = [v for v in bars.get("high") or [] if v is not None]
        lows = [v for v in bars.get("low") or [] if v is not None]
        volume = meta.get("regularMarketVolume")
        if volume is None:
            volume = sum(int(v) for v in bars.get("volume") or [] if v is not None)
        open_ = _first(bars.get("open")) or price
        high = float(high) if high is not None else max(highs, default=price)
        low = float(low) if low is not None else min(lows, default=price)
        quote = YahooQuote(
            symbol=got, price=price, open=open_,
            # The day's range holds the open and the last price, whatever rounding Yahoo did.
            high=max(high, price, open_), low=min(low, price, open_),
            previous_close=previous_close, day_volume=int(volume),
            market_time=_ts(meta["regularMarketTime"]),
            session_start=_ts(regular["start"]), session_end=_ts(regular["end"]),
        )
    except YahooRefused:
        raise
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"unexpected chart fields: {exc!r}") from exc
    if quote.price <= 0 or quote.previous_close <= 0 or quote.low <= 0:
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"non-positive price in the answer for {symbol}")
    return quote


def _looks_like_html(resp: requests.Response) -> bool:
    kind = resp.headers.get("Content-Type", "").lower()
    return "html" in kind or resp.content.lstrip()[:1] == b"<"


class YahooFinanceClient:
    def __init__(self, settings: Settings, session: requests.Session | None = None) -> None:
        self.url = settings.yahoo_finance_url.rstrip("/")
        self.timeout = settings.http_timeout_seconds
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        self.session.headers["Accept"] = "application/json"
        self.blocked_until: datetime | None = None
        self.failures = 0
        self.unknown: dict[str, datetime] = {}  # symbol -> when to ask again

    def _back_off(self, now: datetime, retry_after: str | None) -> float:
        self.failures += 1
        seconds = BACKOFF.delay(self.failures)
        if retry_after and retry_after.strip().isdigit():
            seconds = min(max(float(retry_after), seconds), BACKOFF.maximum)
        self.blocked_until = now + timedelta(seconds=seconds)
        return seconds

    def quote(self, symbol: str, now: datetime) -> YahooQuote:
        if self.blocked_until is not None and now < self.blocked_until:
            raise YahooRefused(Refusal.BACKING_OFF, f"until {self.blocked_until:%H:%M:%S} UTC")
        if symbol in self.unknown and now < self.unknown[symbol]:
            raise YahooRefused(Refusal.SYMBOL_SKIPPED, "Yahoo did not know it")
        try:
            quote = self._fetch(symbol)
        except YahooRefused as exc:
            if exc.kind in BACKOFF_KINDS:
                seconds = self._back_off(now, exc.retry_after)
                exc.detail = f"{exc.detail}; backing off {seconds:.0f} s"
            elif exc.kind is Refusal.UNKNOWN_SYMBOL:
                self.unknown[symbol] = now + UNKNOWN_SYMBOL_RETRY
            raise
        self.failures = 0
        self.blocked_until = None
        return quote

    def _fetch(self, symbol: str) -> YahooQuote:
        try:
            resp = self.session.get(f"{self.url}/v8/finance/chart/{symbol}",
                                    params={"range": "1d", "interval": "1m"}, timeout=self.timeout)
        except requests.Timeout as exc:
            raise YahooRefused(Refusal.TIMEOUT, f"no answer in {self.timeout:g}s") from exc
        except requests.RequestException as exc:
            raise YahooRefused(Refusal.UNREACHABLE, type(exc).__name__) from exc
        if resp.status_code in (429, 999):
            kind = Refusal.RATE_LIMITED if resp.status_code == 429 else Refusal.DENIED
            refusal = YahooRefused(kind, f"HTTP {resp.status_code} {resp.text.strip()[:80]}".strip())
            refusal.retry_after = resp.headers.get("Retry-After")
            raise refusal
        if _looks_like_html(resp):
            raise YahooRefused(Refusal.HTML_PAGE, f"HTTP {resp.status_code} HTML page instead of JSON "
                                            f"(consent or error page, {resp.url.split('?')[0]})")
        try:
            payload = resp.json()
        except ValueError as exc:
            if resp.status_code != 200:
                raise YahooRefused(Refusal.HTTP_ERROR, f"HTTP {resp.status_code}") from exc
            raise YahooRefused(Refusal.BAD_PAYLOAD, "answer is not JSON") from exc
        if resp.status_code != 200:
            refusal = chart_error(payload)
            if refusal is not None and refusal.kind is Refusal.UNKNOWN_SYMBOL:
                raise refusal
            raise YahooRefused(Refusal.HTTP_ERROR, f"HTTP {resp.status_code}")
        return parse_chart(payload, symbol)
