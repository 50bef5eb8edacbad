"""Yahoo Finance quotes without a key, asked the way a browser asks.

Every call goes through curl_cffi impersonating Chrome (`impersonate="chrome"`: Chrome's
TLS and HTTP/2 fingerprint, its User-Agent and client hints; no agent string is written
here). Since April 2025 Yahoo answers clients that look like scripts (python-requests'
fingerprint, whatever their agent says) with 429; yfinance moved to curl_cffi for the
same reason. Like yfinance, the client first gets a cookie and a crumb:

    GET {YAHOO_COOKIE_URL}                       (fc.yahoo.com: sets the session cookie)
    GET {YAHOO_FINANCE_URL}/v1/test/getcrumb     (with the cookie: the crumb, plain text)

and sends both with every call. In the EU the cookie request may end on Yahoo's consent
page (guce.yahoo.com / consent.yahoo.com): that is reported as refusal `consent` (the
log says so and the quotes fall back), not clicked through. A 401 "Invalid Crumb" drops
cookie and crumb, does the handshake again and repeats the call once.

Quotes come in batches (Yahoo's limit: 99 symbols per request):

    GET {YAHOO_FINANCE_URL}/v7/finance/quote?symbols=AAPL,MSFT,...&crumb=...

so 7 symbols cost 1 request a refresh and 100 cost 2. A symbol Yahoo does not know is
simply missing from the answer; it becomes `unknown_symbol` for that symbol alone and
is asked again after 6 hours. The chart endpoint
(`/v8/finance/chart/{symbol}?range=1d&interval=1m`, `quote()`) stays for one-minute
bars; with interval=1d (`daily_chart()`) it gives the backfill's daily history.

Yahoo says no as HTTP 429 ("Too Many Requests", plain text), 999 (request denied),
an HTML consent or error page instead of JSON, or a JSON error. Every refusal becomes
`YahooRefused(kind, detail)`; after 429/999/HTML/consent/unreachable the client backs
off (60 s doubling to 30 min, or the Retry-After the answer gives) and refuses without
asking until then. Parsing is pure (`parse_chart`, `parse_quotes`) and tested without a
server.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from curl_cffi import requests as curl_requests

from common.retry import Backoff
from config import Settings
from market_data.refusal import Refusal, SourceRefused

IMPERSONATE = "chrome"  # curl_cffi's newest Chrome: fingerprint, agent and client hints together
BATCH_MAX = 99  # symbols per /v7/finance/quote request (Yahoo's limit)
CONSENT_HOSTS = ("guce.", "consent.")  # where Yahoo sends EU visitors before any cookie
BACKOFF = Backoff(60.0, 1800.0)
UNKNOWN_SYMBOL_RETRY = timedelta(hours=6)  # a symbol Yahoo does not know is asked again after this
BACKOFF_KINDS = {Refusal.RATE_LIMITED, Refusal.DENIED, Refusal.HTML_PAGE, Refusal.CONSENT, Refusal.NO_CRUMB,
                 Refusal.INVALID_CRUMB, Refusal.UNREACHABLE, Refusal.TIMEOUT, Refusal.HTTP_ERROR}


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
    # The regular session, from a chart answer; a quote answer has no session times but
    # Yahoo's marketState ("REGULAR" while the regular session is open).
    session_start: datetime | None = None
    session_end: datetime | None = None
    market_state: str | None = None
    name: str | None = None  # the company's name in a quote answer (longName, else shortName)

    def market_open(self, now: datetime) -> bool:
        if self.session_start is None or self.session_end is None:
            return self.market_state == "REGULAR"
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


def chart_result(payload: Any, symbol: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(result, meta) of a chart answer for `symbol` (any range and interval); YahooRefused otherwise."""
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
    except (KeyError, TypeError) as exc:
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"unexpected chart fields: {exc!r}") from exc
    if got != symbol.upper():
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"asked for {symbol}, got {got}")
    return result, meta


def parse_chart(payload: Any, symbol: str) -> YahooQuote:
    """A chart answer (range=1d, interval=1m) → YahooQuote; YahooRefused otherwise."""
    result, meta = chart_result(payload, symbol)
    try:
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
            symbol=str(meta["symbol"]).upper(), price=price, open=open_,
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



def finance_error(payload: Any) -> YahooRefused | None:
    """The refusal in a JSON error answer ({"finance": {"error": ...}}, e.g. 401 Invalid Crumb)."""
    for key in ("finance", "quoteResponse"):
        block = payload.get(key) if isinstance(payload, dict) else None
        error = block.get("error") if isinstance(block, dict) else None
        if error:
            code = str(error.get("code", "")) if isinstance(error, dict) else ""
            description = str(error.get("description", ""))[:200] if isinstance(error, dict) else str(error)[:200]
            kind = Refusal.INVALID_CRUMB if "invalid crumb" in description.lower() else Refusal.BAD_PAYLOAD
            return YahooRefused(kind, f"{code}: {description}".strip(": "))
    return None


def parse_quote(item: dict[str, Any]) -> YahooQuote:
    """One entry of quoteResponse.result → YahooQuote (bad_payload if it lacks a price)."""
    try:
        symbol = str(item["symbol"]).upper()
        price = float(item["regularMarketPrice"])
        previous_close = float(item["regularMarketPreviousClose"])
        open_ = float(item.get("regularMarketOpen") or price)
        high = float(item.get("regularMarketDayHigh") or price)
        low = float(item.get("regularMarketDayLow") or price)
        quote = YahooQuote(
            symbol=symbol, price=price, open=open_,
            high=max(high, price, open_), low=min(low, price, open_),
            previous_close=previous_close, day_volume=int(item.get("regularMarketVolume") or 0),
            market_time=_ts(item["regularMarketTime"]), market_state=str(item.get("marketState", "")),
            name=str(item.get("longName") or item.get("shortName") or "")[:200] or None,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"unexpected quote fields: {exc!r}") from exc
    if quote.price <= 0 or quote.previous_close <= 0 or quote.low <= 0:
        raise YahooRefused(Refusal.BAD_PAYLOAD, f"non-positive price in the answer for {symbol}")
    return quote


def parse_quotes(payload: Any, symbols: list[str]) -> tuple[dict[str, YahooQuote], dict[str, YahooRefused]]:
    """A /v7/finance/quote answer → (quotes by symbol, refusal by symbol for the others).
    Yahoo leaves out the symbols it does not know; they are `unknown_symbol`."""
    refusal = finance_error(payload)
    if refusal is not None:
        raise refusal
    result = payload.get("quoteResponse", {}).get("result") if isinstance(payload, dict) else None
    if not isinstance(result, list):
        raise YahooRefused(Refusal.BAD_PAYLOAD, "no quoteResponse.result in the answer")
    quotes: dict[str, YahooQuote] = {}
    refused: dict[str, YahooRefused] = {}
    asked = {s.upper(): s for s in symbols}
    for item in result:
        if not isinstance(item, dict) or str(item.get("symbol", "")).upper() not in asked:
            continue
        symbol = asked[str(item["symbol"]).upper()]
        try:
            quotes[symbol] = parse_quote(item)
        except YahooRefused as exc:
            refused[symbol] = exc
    for symbol in symbols:
        if symbol not in quotes and symbol not in refused:
            refused[symbol] = YahooRefused(Refusal.UNKNOWN_SYMBOL, "Not Found: not in Yahoo's quote answer")
    return quotes, refused


@dataclass(frozen=True)
class YahooListing:
    """One match of Yahoo's search: a ticker Yahoo quotes, its name, exchange and kind."""

    symbol: str
    name: str
    exchange: str
    quote_type: str


def parse_search(payload: Any) -> list[YahooListing]:
    """A /v1/finance/search answer → its quote matches (news, lists and the rest left out)."""
    refusal = finance_error(payload)
    if refusal is not None:
        raise refusal
    items = payload.get("quotes") if isinstance(payload, dict) else None
    if not isinstance(items, list):
        raise YahooRefused(Refusal.BAD_PAYLOAD, "no quotes in the search answer")
    found = []
    for item in items:
        if not isinstance(item, dict) or not isinstance(item.get("symbol"), str):
            continue
        symbol = item["symbol"].upper()
        name = item.get("longname") or item.get("shortname") or symbol
        found.append(YahooListing(symbol, str(name)[:200], str(item.get("exchDisp") or item.get("exchange") or ""),
                                  str(item.get("quoteType") or "")))
    return found


def batches(symbols: list[str], size: int = BATCH_MAX) -> list[list[str]]:
    return [symbols[i:i + size] for i in range(0, len(symbols), size)]


def _looks_like_html(resp: Any) -> bool:
    kind = resp.headers.get("Content-Type", "").lower()
    return "html" in kind or resp.content.lstrip()[:1] == b"<"


def _is_consent(resp: Any) -> bool:
    """Yahoo's cookie-consent page (EU): its host, or its form when served elsewhere."""
    host = urlsplit(str(resp.url)).hostname or ""
    return host.startswith(CONSENT_HOSTS) or (_looks_like_html(resp) and b'name="csrfToken"' in resp.content)


def _refusal(resp: Any) -> YahooRefused | None:
    """The refusal an answer carries in its status or body before any JSON is read."""
    if resp.status_code in (429, 999):
        kind = Refusal.RATE_LIMITED if resp.status_code == 429 else Refusal.DENIED
        refusal = YahooRefused(kind, f"HTTP {resp.status_code} {resp.text.strip()[:80]}".strip())
        refusal.retry_after = resp.headers.get("Retry-After")  # type: ignore[attr-defined]
        return refusal
    if _is_consent(resp):
        return YahooRefused(Refusal.CONSENT, f"Yahoo's cookie-consent page ({str(resp.url).split('?')[0]}): "
                                       "Yahoo wants consent from this address; not given automatically")
    if _looks_like_html(resp):
        return YahooRefused(Refusal.HTML_PAGE, f"HTTP {resp.status_code} HTML page instead of JSON "
                                         f"(consent or error page, {str(resp.url).split('?')[0]})")
    return None


class YahooFinanceClient:
    """Yahoo over one curl_cffi session impersonating Chrome, with the cookie + crumb handshake."""

    def __init__(self, settings: Settings, session: curl_requests.Session | None = None) -> None:
        self.url = settings.yahoo_finance_url.rstrip("/")
        self.cookie_url = settings.yahoo_cookie_url
        self.timeout = settings.http_timeout_seconds
        self.session = session or curl_requests.Session(impersonate=IMPERSONATE)
        self.crumb: str | None = None
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

    def _guarded(self, now: datetime, call: Any) -> Any:
        """call() unless backing off; a refusal that warrants it starts (or extends) the backoff."""
        if self.blocked_until is not None and now < self.blocked_until:
            raise YahooRefused(Refusal.BACKING_OFF, f"until {self.blocked_until:%H:%M:%S} UTC")
        try:
            result = call()
        except YahooRefused as exc:
            if exc.kind in BACKOFF_KINDS:
                seconds = self._back_off(now, getattr(exc, "retry_after", None))
                exc.detail = f"{exc.detail}; backing off {seconds:.0f} s"
            raise
        self.failures = 0
        self.blocked_until = None
        return result

    # ------------------------------------------------------------------ http
    def _send(self, url: str, params: dict[str, str] | None = None) -> Any:
        try:
            return self.session.get(url, params=params, timeout=self.timeout, allow_redirects=True)
        except curl_requests.exceptions.Timeout as exc:
            raise YahooRefused(Refusal.TIMEOUT, f"no answer in {self.timeout:g}s") from exc
        except curl_requests.exceptions.RequestException as exc:
            raise YahooRefused(Refusal.UNREACHABLE, type(exc).__name__) from exc

    def _handshake(self) -> str:
        """Cookie from YAHOO_COOKIE_URL, then the crumb that goes with it (as yfinance does)."""
        resp = self._send(self.cookie_url)  # fc.yahoo.com answers 404 with the cookie: the status is no news
        if _is_consent(resp) or resp.status_code in (429, 999):
            raise _refusal(resp)  # type: ignore[misc]
        resp = self._send(f"{self.url}/v1/test/getcrumb")
        refusal = _refusal(resp)
        if refusal is not None:
            raise refusal
        crumb = resp.text.strip()
        if resp.status_code != 200 or not crumb or crumb.startswith(("<", "{")) or len(crumb) > 64:
            raise YahooRefused(Refusal.NO_CRUMB, f"HTTP {resp.status_code} {crumb[:80]!r} from /v1/test/getcrumb")
        return crumb

    def _get_json(self, path: str, params: dict[str, str]) -> tuple[int, Any]:
        """GET a JSON answer with cookie and crumb; on 401 Invalid Crumb a new handshake and one more try."""
        for attempt in (1, 2):
            if self.crumb is None:
                self.crumb = self._handshake()
            resp = self._send(f"{self.url}{path}", {**params, "crumb": self.crumb})
            refusal = _refusal(resp)
            if refusal is not None:
                raise refusal
            try:
                payload = resp.json()
            except ValueError as exc:
                if resp.status_code != 200:
                    raise YahooRefused(Refusal.HTTP_ERROR, f"HTTP {resp.status_code}") from exc
                raise YahooRefused(Refusal.BAD_PAYLOAD, "answer is not JSON") from exc
            if resp.status_code == 401:
                error = finance_error(payload)
                if error is not None and error.kind is Refusal.INVALID_CRUMB:
                    # Cookie and crumb expired or were never good: start over, once.
                    self.crumb = None
                    self.session.cookies.clear()
                    if attempt == 1:
                        continue
                    raise error
            return resp.status_code, payload
        raise AssertionError("unreachable")  # the loop returns or raises

    # ------------------------------------------------------------------ quotes
    def quotes(self, symbols: list[str], now: datetime) -> tuple[dict[str, YahooQuote], dict[str, YahooRefused]]:
        """Quotes for many symbols, BATCH_MAX per request: (quotes, refusal by symbol for the rest).
        A refusal of the first request (429, consent, ...) is raised; after a later one the
        batches already answered are kept and the rest carry that refusal."""
        quotes: dict[str, YahooQuote] = {}
        refused: dict[str, YahooRefused] = {}
        ask = []
        for symbol in symbols:
            if symbol in self.unknown and now < self.unknown[symbol]:
                refused[symbol] = YahooRefused(Refusal.SYMBOL_SKIPPED, "Yahoo did not know it")
            else:
                ask.append(symbol)
        for batch in batches(ask):
            try:
                got, missing = self._guarded(now, lambda b=batch: self._quote_batch(b))
            except YahooRefused as exc:
                if not quotes:
                    raise
                refused.update({s: exc for s in batch})
                continue
            quotes.update(got)
            for symbol, exc in missing.items():
                if exc.kind is Refusal.UNKNOWN_SYMBOL:
                    self.unknown[symbol] = now + UNKNOWN_SYMBOL_RETRY
            refused.update(missing)
        return quotes, refused

    def _quote_batch(self, batch: list[str]) -> tuple[dict[str, YahooQuote], dict[str, YahooRefused]]:
        status, payload = self._get_json("/v7/finance/quote", {"symbols": ",".join(batch)})
        if status != 200:
            raise finance_error(payload) or YahooRefused(Refusal.HTTP_ERROR, f"HTTP {status}")
        return parse_quotes(payload, batch)

    # ------------------------------------------------------------------ search
    def search(self, query: str, now: datetime, count: int = 8) -> list[YahooListing]:
        """Yahoo's ticker search (the dashboard's suggestions and its check of a typed ticker)."""
        def ask() -> list[YahooListing]:
            status, payload = self._get_json("/v1/finance/search", {
                "q": query, "quotesCount": str(count), "newsCount": "0", "listsCount": "0",
                "enableFuzzyQuery": "false"})
            if status != 200:
                raise finance_error(payload) or YahooRefused(Refusal.HTTP_ERROR, f"HTTP {status}")
            return parse_search(payload)
        return self._guarded(now, ask)

    def listing(self, symbol: str, now: datetime) -> YahooListing | None:
        """Yahoo's listing of exactly this ticker, or None when Yahoo does not know it."""
        return next((found for found in self.search(symbol, now) if found.symbol == symbol.upper()), None)

    # ------------------------------------------------------------------ chart
    def quote(self, symbol: str, now: datetime) -> YahooQuote:
        """One symbol's quote from the chart endpoint (its one-minute bars and session times)."""
        if symbol in self.unknown and now < self.unknown[symbol]:
            raise YahooRefused(Refusal.SYMBOL_SKIPPED, "Yahoo did not know it")
        try:
            return self._guarded(now, lambda: self._chart(symbol))
        except YahooRefused as exc:
            if exc.kind is Refusal.UNKNOWN_SYMBOL:
                self.unknown[symbol] = now + UNKNOWN_SYMBOL_RETRY
            raise

    def _chart(self, symbol: str) -> YahooQuote:
        return parse_chart(self._chart_payload(symbol, {"range": "1d", "interval": "1m"}), symbol)

    def _chart_payload(self, symbol: str, params: dict[str, str]) -> Any:
        status, payload = self._get_json(f"/v8/finance/chart/{symbol}", params)
        if status != 200:
            refusal = chart_error(payload)
            if refusal is not None and refusal.kind is Refusal.UNKNOWN_SYMBOL:
                raise refusal
            raise YahooRefused(Refusal.HTTP_ERROR, f"HTTP {status}")
        return payload

    def daily_chart(self, symbol: str, chart_range: str, now: datetime) -> Any:
        """The chart answer of daily bars over `chart_range` (e.g. "2y"), with split and dividend
        events; parsed by market_data/yahoo_history.py."""
        params = {"range": chart_range, "interval": "1d", "events": "div,splits"}
        return self._guarded(now, lambda: self._chart_payload(symbol, params))
