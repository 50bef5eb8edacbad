"""Does the quote source know a ticker a user typed? (the dashboard's "add a symbol" form)

With Yahoo in QUOTE_SOURCES, Yahoo's search answers (through the producer's own client:
curl_cffi as Chrome, cookie + crumb): the ticker must be one of its matches, and the
company name is Yahoo's. Without Yahoo nothing real is asked: the ticker is accepted and
labelled simulated, named by itself.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime

from config import Settings
from config.sources import Source
from market_data.refusal import Refusal
from market_data.yahoo_finance import YahooFinanceClient, YahooListing, YahooRefused

# The form's words for why Yahoo could not be asked: a user reads them, not the log's refusal kinds.
_WHY = {
    Refusal.RATE_LIMITED: "it is limiting how often it may be asked",
    Refusal.BACKING_OFF: "it refused a request a moment ago and is left alone for a while",
    Refusal.TIMEOUT: "it did not answer in time",
    Refusal.UNREACHABLE: "it could not be reached",
}


@dataclass(frozen=True)
class Known:
    symbol: str
    name: str
    simulated: bool


class TickerUnknownError(LookupError):
    """The source does not know the ticker, or could not be asked; str(exc) is the form's message."""


class TickerCheck:
    def __init__(self, settings: Settings) -> None:
        self.yahoo = YahooFinanceClient(settings) if Source.YAHOO in settings.quote_sources else None
        self._lock = threading.Lock()  # one curl_cffi session, shared by the worker's threads

    def known(self, symbol: str, now: datetime) -> Known:
        if self.yahoo is None:
            return Known(symbol, symbol, simulated=True)
        try:
            with self._lock:
                listing = self.yahoo.listing(symbol, now)
        except YahooRefused as exc:
            why = _WHY.get(exc.kind, "it refused the request")
            raise TickerUnknownError(f"Yahoo Finance could not be asked about {symbol} right now: {why}; "
                                     "try again in a minute.") from exc
        if listing is None:
            raise TickerUnknownError(f"Yahoo Finance does not know the ticker {symbol}.")
        return Known(listing.symbol, listing.name, simulated=False)

    def suggestions(self, query: str, now: datetime) -> list[YahooListing]:
        """Yahoo's matches for what is typed so far (none without Yahoo, or when it refuses)."""
        if self.yahoo is None:
            return []
        try:
            with self._lock:
                return self.yahoo.search(query, now)
        except YahooRefused:
            return []
