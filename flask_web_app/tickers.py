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
from market_data.yahoo_finance import YahooFinanceClient, YahooListing, YahooRefused


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
            raise TickerUnknownError(f"Yahoo Finance could not be asked about {symbol} right now ({exc.kind}); "
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
