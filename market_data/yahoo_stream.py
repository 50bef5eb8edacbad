"""Yahoo's live stream: one quote per trade print, coalesced per symbol (the yahoo_stream source).

Yahoo's streamer (YAHOO_STREAM_URL, keyless websocket) pushes one base64 protobuf
PricingData per print once the symbols are subscribed; yfinance's `WebSocket` connects,
subscribes and decodes them (we never decode by hand). Here:

- `parse_print`: one decoded message → `Print` (None for what is not a usable print).
  The quote's timestamp is the print's own time, never the time we received it, so the
  same print sent again after a reconnect is the same (symbol, timestamp) MongoDB already has.
- `Coalescer` (pure): keeps each symbol's newest print and hands out at most one quote per
  symbol per STREAM_MIN_INTERVAL_SECONDS; volume = shares since the symbol's previous stream
  quote, from the print's dayVolume. Pre- and post-market prints become quotes with
  market_open=False and volume 0 and never move the regular session's base (day volume,
  open/high/low), as the daily job and the alerts leave market_open=False quotes out.
- `YahooStream`: the connection in a thread, reconnected with common/retry.Backoff waits;
  `fresh(symbol)` tells the poller which symbols the stream covers right now.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from common.quote import Quote, Source
from common.retry import Backoff

REGULAR_MARKET = 1  # PricingData.market_hours: 0 pre-market, 1 regular, 2 post-market, 3 extended
TALLY_SECONDS = 60.0  # one INFO line this often: prints received and quotes sent
RESUBSCRIBE_SECONDS = 15.0  # yfinance's AsyncWebSocket repeats its subscription this often; Yahoo expects it
PRICE_DECIMALS = 4  # the protobuf's prices are float32: 4 places is what they carry

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Print:
    """One trade print as the streamer sent it."""

    symbol: str
    at: datetime  # the print's time (aware, UTC)
    price: float
    day_volume: int
    day_high: float
    day_low: float
    open: float
    previous_close: float | None
    change_percent: float
    last_size: int
    regular: bool  # printed during the regular session


def _price(msg: Mapping[str, Any], key: str) -> float:
    return round(float(msg.get(key, 0.0)), PRICE_DECIMALS)


def parse_print(msg: Mapping[str, Any]) -> Print | None:
    """A decoded PricingData (yfinance's dict: proto field names, int64 as strings, zero fields
    absent) → Print; None without a symbol, a positive price or a time."""
    symbol = str(msg.get("id", "")).upper()
    price = _price(msg, "price")
    millis = int(msg.get("time", 0) or 0)
    if not symbol or price <= 0 or millis <= 0:
        return None
    previous = _price(msg, "previous_close")
    return Print(symbol=symbol, at=datetime.fromtimestamp(millis / 1000, UTC), price=price,
                 day_volume=int(msg.get("day_volume", 0) or 0), day_high=_price(msg, "day_high"),
                 day_low=_price(msg, "day_low"), open=_price(msg, "open_price"),
                 previous_close=previous if previous > 0 else None,
                 change_percent=round(float(msg.get("change_percent", 0.0)), PRICE_DECIMALS),
                 last_size=int(msg.get("last_size", 0) or 0),
                 regular=int(msg.get("market_hours", 0) or 0) == REGULAR_MARKET)


@dataclass
class _Regular:
    """A symbol's regular-session figures as its last regular stream quote said them."""

    day: date  # the print's UTC date: a US session never spans UTC midnight
    day_volume: int
    open: float
    high: float
    low: float


class Coalescer:
    """The newest print per symbol, out as at most one quote per symbol per `min_interval`
    seconds of `now` (a monotonic clock); pure apart from the clock it is handed."""

    def __init__(self, min_interval: float) -> None:
        self.min_interval = min_interval
        self._held: dict[str, Print] = {}
        self._last_at: dict[str, datetime] = {}  # newest print time handed out (or held)
        self._emitted_at: dict[str, float] = {}  # `now` of the symbol's last quote
        self._regular: dict[str, _Regular] = {}

    def add(self, p: Print) -> bool:
        """Hold a print for the next quote; False (dropped) when it is not newer than the
        symbol's last one (a print sent again after a reconnect, or out of order)."""
        last = self._last_at.get(p.symbol)
        if last is not None and p.at <= last:
            return False
        self._held[p.symbol] = p
        self._last_at[p.symbol] = p.at
        return True

    def forget_volume(self) -> None:
        """After a gap (the stream was down, polling sent quotes): the next quote's volume must
        not count again what the polled quotes carried, so the day-volume base starts over."""
        for regular in self._regular.values():
            regular.day_volume = -1

    def due(self, now: float) -> list[Quote]:
        """The quotes to send now: each held print whose symbol's last quote is min_interval old."""
        out = []
        for symbol, p in list(self._held.items()):
            emitted = self._emitted_at.get(symbol)
            if emitted is not None and now - emitted < self.min_interval:
                continue
            del self._held[symbol]
            self._emitted_at[symbol] = now
            out.append(self._quote(p))
        return out

    def _quote(self, p: Print) -> Quote:
        regular = self._regular.get(p.symbol)
        if p.regular:
            day = p.at.date()
            if regular is not None and regular.day == day and 0 <= regular.day_volume <= p.day_volume:
                volume = p.day_volume - regular.day_volume
            else:  # the first of the day (or after a gap): this print's own size
                volume = p.last_size
            open_ = p.open or p.price
            high, low = max(p.day_high, p.price, open_), min(p.day_low or p.price, p.price, open_)
            self._regular[p.symbol] = _Regular(day, p.day_volume, open_, high, low)
            return self._make(p, volume=volume, open_=open_, high=high, low=low, market_open=True)
        # Pre/post-market: labelled, volume 0, the regular session's figures kept as they were.
        open_ = regular.open if regular is not None else (p.open or p.price)
        high = max(regular.high if regular is not None else p.day_high, p.price, open_)
        low = min(regular.low if regular is not None else (p.day_low or p.price), p.price, open_)
        return self._make(p, volume=0, open_=open_, high=high, low=low, market_open=False)

    @staticmethod
    def _make(p: Print, *, volume: int, open_: float, high: float, low: float, market_open: bool) -> Quote:
        return Quote(symbol=p.symbol, timestamp=p.at, price=p.price, volume=max(volume, 0), open=open_, high=high,
                     low=low, change_percent=p.change_percent, previous_close=p.previous_close,
                     source=Source.YAHOO_STREAM, market_open=market_open)


def _websocket(url: str) -> Any:
    from yfinance import WebSocket  # imported late: yfinance is only in the producer's image

    # yfinance logs every lost connection as an ERROR with its traceback; we say it once, as a warning.
    logging.getLogger("yfinance").setLevel(logging.CRITICAL)
    return WebSocket(url=url, verbose=False)


class YahooStream:
    """The streamer connection in a daemon thread, reconnected after `backoff` waits.

    The producer's loop calls `due()` a few times a second and sends what it returns;
    `fresh(symbol)` is true while the stream is connected and printed the symbol within
    `fresh_seconds`, so the poller leaves that symbol alone."""

    def __init__(self, url: str, symbols: list[str], min_interval: float, fresh_seconds: float, *,
                 log: Any = _log, backoff: Backoff = Backoff(1.0, 60.0),  # noqa: B008 - frozen
                 connect: Callable[[str], Any] = _websocket) -> None:
        self.url = url
        self.symbols = list(symbols)
        self.fresh_seconds = fresh_seconds
        self.log = log
        self.backoff = backoff
        self._connect = connect
        self._coalescer = Coalescer(min_interval)
        self._lock = threading.Lock()
        self._last_print: dict[str, float] = {}  # symbol -> monotonic time of its last print
        self._ws: Any = None
        self._subscribed_at = 0.0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.connected = False
        self.prints = 0
        self.quotes = 0
        self._tally = (time.monotonic(), 0, 0)  # when, prints, quotes at the last tally line

    # ------------------------------------------------------------------ the producer's side
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="yahoo-stream", daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._close_ws()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def fresh(self, symbol: str) -> bool:
        last = self._last_print.get(symbol)
        return self.connected and last is not None and time.monotonic() - last < self.fresh_seconds

    def due(self) -> list[Quote]:
        now = time.monotonic()
        if self.connected and now - self._subscribed_at >= RESUBSCRIBE_SECONDS:
            self._subscribe()
        with self._lock:
            quotes = self._coalescer.due(now)
        self.quotes += len(quotes)
        if now - self._tally[0] >= TALLY_SECONDS:
            self.log.info("Yahoo stream %s: %d prints, %d quotes in the last %.0fs",
                          "connected" if self.connected else "down", self.prints - self._tally[1],
                          self.quotes - self._tally[2], now - self._tally[0])
            self._tally = (now, self.prints, self.quotes)
        return quotes

    # ------------------------------------------------------------------ the thread
    def _on_message(self, msg: Mapping[str, Any]) -> None:
        p = parse_print(msg)
        if p is None:
            return
        with self._lock:
            self.prints += 1
            if self._coalescer.add(p):
                self._last_print[p.symbol] = time.monotonic()

    def _subscribe(self) -> None:
        self._subscribed_at = time.monotonic()
        try:
            self._ws.subscribe(self.symbols)
        except Exception as exc:  # noqa: BLE001 - a dead connection: listen() ends and we reconnect
            self.log.debug("re-subscribing failed: %s", exc)

    def _close_ws(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            try:
                ws.close()
            except Exception as exc:  # noqa: BLE001 - closing a broken connection
                self.log.debug("closing the stream: %s", exc)

    def _run(self) -> None:
        failures = 0
        while not self._stop.is_set():
            before = self.prints
            try:
                self._ws = self._connect(self.url)
                self._ws.subscribe(self.symbols)
                self._subscribed_at = time.monotonic()
                self.connected = True
                self.log.info("Yahoo stream connected at %s: %d symbols subscribed", self.url, len(self.symbols))
                self._ws.listen(self._on_message)  # returns when the connection ends
                error = "connection closed"
            except Exception as exc:  # noqa: BLE001 - any failure of the connection means: reconnect
                error = str(exc) or type(exc).__name__
            finally:
                self.connected = False
                self._close_ws()
            if self._stop.is_set():
                break
            with self._lock:  # polled quotes fill the gap: their volume is not counted again
                self._coalescer.forget_volume()
            failures = 1 if self.prints > before else failures + 1
            wait = self.backoff.delay(failures)
            self.log.warning("Yahoo stream lost (%s); polling covers its symbols, reconnecting in %gs", error, wait)
            self._stop.wait(wait)
