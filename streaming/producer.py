"""Producer: quotes for every symbol to Kafka `stock-prices`, keyed by symbol.

Each symbol's quote comes from the first source in QUOTE_SOURCES that gives one
(default yahoo, alpha_vantage, simulated): Yahoo Finance's batch quotes (no key; all
due symbols in one request per tick, 99 a request; market_data/yahoo_finance.py),
Alpha Vantage GLOBAL_QUOTE within its shared call budget (needs ALPHA_VANTAGE_API_KEY;
without one it is skipped, said once at start), then the simulator (market_data/simulator.py),
which continues from the symbol's last real price. With yahoo_stream in QUOTE_SOURCES
(opt-in) Yahoo's live stream sends each symbol's prints as they come (market_data/yahoo_stream.py,
coalesced per STREAM_MIN_INTERVAL_SECONDS, sent between ticks) and the symbols it covers are not polled.
A refusal is logged once with its reason and the symbol falls to
the next source; Yahoo is left alone while it backs off.

Cadence per symbol, while the regular session is open (MARKET_CALENDAR): every
POLL_INTERVAL_SECONDS, or every YAHOO_REFRESH_SECONDS for a symbol Yahoo answers
(its one-minute bars change no faster). While the market is closed the producer
keeps sending, slowly: one quote per symbol every CLOSED_QUOTE_INTERVAL_SECONDS
with market_open=false, the last price and volume 0, so the pages can say "market
closed"; the daily job and the alerts leave those quotes out.
Run as `python streaming/producer.py`.
"""

from __future__ import annotations

import math
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError
from pymongo.errors import PyMongoError

from common.clock import utc_now
from common.quote import Quote, Source
from common.service import run_service
from common.source_status import SourceState, status_document
from config import Settings
from database.mongo.symbols import RegistryReader
from market_data.alpha_vantage import AlphaVantageClient, AlphaVantageRefused, alpha_vantage_client
from market_data.market_hours import MarketHours, Session
from market_data.refusal import Refusal, SourceRefused
from market_data.simulator import MarketSimulator, interval_volume
from market_data.yahoo_finance import BATCH_MAX, YahooFinanceClient, YahooQuote, YahooRefused, batches
from market_data.yahoo_stream import YahooStream
from streaming.schema import to_message

# Yahoo refusals already said (the backoff that follows is silent until it ends).
QUIET_YAHOO_KINDS = {Refusal.BACKING_OFF, Refusal.SYMBOL_SKIPPED}
MAX_PENDING = 10000  # quotes kept for re-sending while the broker is away
STREAM_SEND_SECONDS = 0.2  # with the live stream on, its quotes are sent this often (a print is out within 1 s)


def active_sources(settings: Settings, alpha_vantage: AlphaVantageClient | None,
                   yahoo: YahooFinanceClient | None,
                   stream: YahooStream | None = None) -> tuple[list[str], list[str]]:
    """QUOTE_SOURCES less those that cannot work here: (in use, [why each other is skipped])."""
    used, skipped = [], []
    for name in settings.quote_sources:
        if name == Source.ALPHA_VANTAGE and (alpha_vantage is None or not alpha_vantage.enabled):
            skipped.append("alpha_vantage skipped: ALPHA_VANTAGE_API_KEY is not set")
        elif name == Source.YAHOO and yahoo is None:
            skipped.append("yahoo skipped: no client")
        elif name == Source.YAHOO_STREAM and stream is None:
            skipped.append("yahoo_stream skipped: no stream")
        else:
            used.append(name)
    return used, skipped


def yahoo_message(q: YahooQuote, now: datetime, volume: int) -> Quote:
    return Quote(symbol=q.symbol, timestamp=now, price=q.price, volume=volume, open=q.open, high=q.high, low=q.low,
                 previous_close=q.previous_close, change_percent=q.change_percent, source=Source.YAHOO,
                 market_open=q.market_open(now))


class QuoteSource:
    """Builds each tick's quotes from the source chain (see the module doc)."""

    def __init__(self, settings: Settings, simulator: MarketSimulator, logger: Any, *,
                 hours: MarketHours, alpha_vantage: AlphaVantageClient | None = None,
                 yahoo: YahooFinanceClient | None = None, stream: YahooStream | None = None) -> None:
        self.symbols = list(settings.stock_symbols)
        self.chain, self.skipped = active_sources(settings, alpha_vantage, yahoo, stream)
        # The live stream sends its own quotes (stream_quotes); a symbol it covers is not polled.
        self.stream = stream if Source.YAHOO_STREAM in self.chain else None
        self.client = alpha_vantage if Source.ALPHA_VANTAGE in self.chain else None
        self.yahoo = yahoo if Source.YAHOO in self.chain else None
        self.simulator = simulator
        self.hours = hours
        self.interval = settings.poll_interval_seconds
        self.yahoo_refresh = settings.yahoo_refresh_seconds
        self.closed_interval = settings.closed_quote_interval_seconds
        self.log = logger
        # Enough real calls per tick to use the minute budget, at least one.
        self.real_per_tick = max(1, math.ceil(settings.alpha_vantage_calls_per_minute * self.interval / 60))
        # With a daily cap far below what the minute limit allows (25/day vs 5/min),
        # spending at full speed would leave the rest of the day simulated; pacing
        # keeps a real anchor coming all day. No pacing when the day cap is no constraint.
        per_day = settings.alpha_vantage_calls_per_day
        self.call_gap = 86400 / per_day if settings.alpha_vantage_spread_daily_budget and per_day > 0 else 0.0
        self._next_call_at: datetime | None = None
        self.cursor = 0
        self._budget_said = False
        self.next_due: dict[str, datetime] = {}
        # symbol -> (session start, Yahoo's day volume, when Yahoo said it)
        self._day_volume: dict[str, tuple[datetime, int, datetime]] = {}
        self._last_quote_at: dict[str, datetime] = {}  # symbol -> its last quote, any source
        # For the source status (common/source_status.py): who served each symbol last, when
        # each source last answered, and the refusal of a source that is not answering.
        self.served: dict[str, str] = {}
        self.answered_at: dict[str, datetime] = {}
        # Company names Yahoo's quote answers gave, not yet written to the symbol registry.
        self.new_names: dict[str, str] = {}
        self._named: set[str] = set()
        self.refused: dict[str, SourceRefused] = {}
        self.fallback = {name: (self.chain[i + 1] if i + 1 < len(self.chain) else "nothing")
                         for i, name in enumerate(self.chain)}

    # ------------------------------------------------------------------ yahoo
    def _yahoo_session(self, q: YahooQuote, now: datetime) -> Session | None:
        """The regular session of a Yahoo quote: the chart answer's own, else the calendar's."""
        if q.session_start is not None and q.session_end is not None:
            return Session(now.date(), q.session_start, q.session_end)
        return self.hours.session_at(now)

    def _yahoo_volume(self, q: YahooQuote, now: datetime) -> int:
        """Shares traded since the symbol's previous quote, from Yahoo's day volume."""
        if not q.market_open(now):
            return 0
        session = self._yahoo_session(q, now)
        # The day volume restarts with each session: a session (or, without one, a day) is its key.
        key = session.open if session is not None else datetime(now.year, now.month, now.day, tzinfo=now.tzinfo)
        before = self._day_volume.get(q.symbol)
        self._day_volume[q.symbol] = (key, q.day_volume, now)
        if before is not None and before[0] == key and q.day_volume >= before[1]:
            traded = q.day_volume - before[1]  # since this symbol's previous Yahoo answer
            # Quotes from another source in between (Yahoo backing off) already carried
            # part of it: only the share since the symbol's last quote, so the volume rule
            # does not see the whole outage's volume as one spike when Yahoo returns.
            since_yahoo = (now - before[2]).total_seconds()
            since_any = (now - self._last_quote_at.get(q.symbol, before[2])).total_seconds()
            return int(traded * min(1.0, since_any / since_yahoo)) if since_yahoo > 0 else traded
        return interval_volume(q.day_volume, session, now, self.yahoo_refresh)

    def _said_yahoo_refused(self, symbols: list[str], exc: YahooRefused) -> None:
        if exc.kind in QUIET_YAHOO_KINDS:
            return
        names = ",".join(symbols) if len(symbols) <= 5 else f"{','.join(symbols[:3])} and {len(symbols) - 3} more"
        self.log.warning("Yahoo refused %s (%s): %s; %s from %s until Yahoo answers again", names, exc.kind,
                         exc.detail, names if exc.kind is Refusal.UNKNOWN_SYMBOL else "quotes come",
                         self.fallback[Source.YAHOO])

    def _from_yahoo(self, pending: list[str], now: datetime) -> dict[str, Quote]:
        """All pending symbols in one batch request (99 a request): each answered symbol a yahoo quote."""
        assert self.yahoo is not None
        try:
            answered, refused = self.yahoo.quotes(pending, now)
        except YahooRefused as exc:  # the whole request: said once for all its symbols
            if exc.kind not in QUIET_YAHOO_KINDS:
                self.refused[Source.YAHOO] = exc
            self._said_yahoo_refused(pending, exc)
            return {}
        self.refused.pop(Source.YAHOO, None)
        # One line per refusal: per symbol (unknown, bad entry) or per refused later batch.
        by_refusal: dict[int, tuple[YahooRefused, list[str]]] = {}
        for symbol, exc in refused.items():
            by_refusal.setdefault(id(exc), (exc, []))[1].append(symbol)
        for exc, symbols in by_refusal.values():
            self._said_yahoo_refused(symbols, exc)
        got: dict[str, Quote] = {}
        for symbol, q in answered.items():
            if q.name and symbol not in self._named:
                self.new_names[symbol] = q.name
                self._named.add(symbol)
            quote = yahoo_message(q, now, self._yahoo_volume(q, now))
            self.simulator.anchor(quote, now)
            got[symbol] = quote
        return got

    # ------------------------------------------------------------------ alpha vantage
    def real_quote(self, symbol: str, now: datetime) -> Quote:
        assert self.client is not None
        q = self.client.global_quote(symbol)
        session = self.hours.session_at(now)
        quote = Quote(symbol=symbol, timestamp=now, price=q["price"],
                      volume=interval_volume(q["volume"], session, now, self.interval),
                      open=q["open"], high=q["high"], low=q["low"], previous_close=q["previous_close"],
                      change_percent=q["change_percent"], source=Source.ALPHA_VANTAGE, market_open=session is not None)
        self.simulator.anchor(quote, now)
        return quote

    def _spent(self, now: datetime) -> None:
        if self.call_gap:
            self._next_call_at = now + timedelta(seconds=self.call_gap)

    def _from_alpha_vantage(self, pending: list[str], now: datetime) -> dict[str, Quote]:
        real: dict[str, Quote] = {}
        if self.client is None or (self._next_call_at is not None and now < self._next_call_at):
            return real
        wanted = set(pending)
        n = len(self.symbols)
        per_tick = 1 if self.call_gap > self.interval else self.real_per_tick
        tried = 0
        for _ in range(n):  # round-robin over the symbols, those still needing a quote
            if tried >= min(per_tick, len(wanted)):
                break
            symbol = self.symbols[self.cursor % n]
            self.cursor = (self.cursor + 1) % n
            if symbol not in wanted:
                continue
            tried += 1
            try:
                real[symbol] = self.real_quote(symbol, now)
                self.refused.pop(Source.ALPHA_VANTAGE, None)
                self._budget_said = False
                self._spent(now)
            except AlphaVantageRefused as exc:
                if exc.kind is Refusal.BUDGET_EXHAUSTED:
                    # Said once per exhaustion, not every tick.
                    if not self._budget_said:
                        self.log.info("Alpha Vantage call budget spent for now; %s until it refills",
                                      self.fallback[Source.ALPHA_VANTAGE])
                        self._budget_said = True
                    self.cursor = (self.cursor - 1) % n  # this symbol's turn is not used up
                else:
                    self._spent(now)  # the call reached the API and counted
                    self.log.warning("Alpha Vantage refused %s (%s): %s; %s for it this tick",
                                     symbol, exc.kind, exc.detail, self.fallback[Source.ALPHA_VANTAGE])
                self.refused[Source.ALPHA_VANTAGE] = exc
                if exc.kind.ends_tick:
                    break
            except PyMongoError as exc:  # the shared budget lives in MongoDB
                self.log.warning("call budget unavailable (%s); %s this tick", exc, self.fallback[Source.ALPHA_VANTAGE])
                self.cursor = (self.cursor - 1) % n
                break
        return real

    # ------------------------------------------------------------------ symbols
    def follow(self, symbols: list[str]) -> tuple[list[str], list[str]]:
        """Quote exactly these symbols from the next tick on (the registry's): (started, stopped).
        A new symbol is due at once; a stopped one is forgotten (its stored history stays)."""
        started = [s for s in symbols if s not in self.symbols]
        stopped = [s for s in self.symbols if s not in symbols]
        for symbol in started:
            self.simulator.add(symbol)
        for symbol in stopped:
            self.next_due.pop(symbol, None)
            self._day_volume.pop(symbol, None)
        self.symbols = list(symbols)
        return started, stopped

    # ------------------------------------------------------------------ tick
    def tick(self, now: datetime) -> list[Quote]:
        """The quotes due at `now` (none for symbols whose next quote is not due yet)."""
        due = [s for s in self.symbols if now >= self.next_due.get(s, now)
               and not (self.stream is not None and self.stream.fresh(s))]
        got: dict[str, Quote] = {}
        pending = list(due)
        for name in self.chain:
            if not pending:
                break
            if name == Source.YAHOO_STREAM:
                continue  # its quotes go out as they print (stream_quotes), not on the tick
            if name == Source.YAHOO:
                got.update(self._from_yahoo(pending, now))
            elif name == Source.ALPHA_VANTAGE:
                got.update(self._from_alpha_vantage(pending, now))
            else:
                got.update({s: self.simulator.next_quote(s, now) for s in pending})
            pending = [s for s in pending if s not in got]
        is_open = self.hours.is_open(now)
        for symbol in due:
            quote = got.get(symbol)
            if quote is not None:
                self._last_quote_at[symbol] = now
                self.served[symbol] = str(quote.source)
                self.answered_at[str(quote.source)] = now
            if (quote is not None and quote.market_open is False) or (quote is None and not is_open):
                step = self.closed_interval
            elif quote is not None and quote.source == Source.YAHOO:
                step = self.yahoo_refresh
            else:
                step = self.interval
            # Kept on the tick grid: a symbol due "now" is served by the tick at or after it.
            self.next_due[symbol] = now + timedelta(seconds=step - min(step, self.interval) / 2)
        return [got[s] for s in due if s in got]

    def status(self, now: datetime) -> list[SourceState]:
        """What each source of the chain is doing now (shown by /healthz and the index page)."""
        states = []
        for name in self.chain:
            refusal = self.refused.get(name)
            until = self.yahoo.blocked_until if name == Source.YAHOO and self.yahoo is not None else None
            kind = str(refusal.kind) if refusal is not None else None
            detail = refusal.detail[:200] if refusal is not None else ""
            symbols = sorted(s for s, by in self.served.items() if by == name)
            if name == Source.YAHOO_STREAM and self.stream is not None and not self.stream.connected:
                # Down: its symbols are polled meanwhile, so none is its own now.
                kind, detail, symbols = "stream_down", "reconnecting; polling covers its symbols", []
            states.append(SourceState(
                name=str(name), symbols=symbols, last_answer=self.answered_at.get(name),
                backing_off_until=until if until is not None and until > now else None,
                refusal=kind, detail=detail))
        return states


    def stream_quotes(self, now: datetime) -> list[Quote]:
        """The live stream's quotes due now (coalesced per symbol), each anchoring the simulator."""
        if self.stream is None:
            return []
        quotes = self.stream.due()
        for quote in quotes:
            self._last_quote_at[quote.symbol] = now
            self.simulator.anchor(quote, now)
            self.served[quote.symbol] = Source.YAHOO_STREAM  # for the source status
        if quotes:
            self.answered_at[Source.YAHOO_STREAM] = now
        return quotes


class QuoteSender:
    """Sends quotes; those the broker did not take are kept and sent again first."""

    def __init__(self, producer: KafkaProducer, topic: str, logger: Any) -> None:
        self.producer = producer
        self.topic = topic
        self.log = logger
        self.pending: deque[Quote] = deque()
        self.sent = 0
        self.failed = 0

    def _keep(self, quote: Quote) -> None:
        if len(self.pending) >= MAX_PENDING:
            self.pending.popleft()
            self.log.warning("re-send buffer full (%d): dropped the oldest quote", MAX_PENDING)
        self.pending.append(quote)

    def send(self, quotes: list[Quote]) -> int:
        """Queue quotes for sending; returns how many the client accepted."""
        batch = list(self.pending) + quotes
        self.pending.clear()
        accepted = 0
        for i, quote in enumerate(batch):
            try:
                future = self.producer.send(self.topic, key=quote["symbol"], value=to_message(quote))
            except KafkaError as exc:
                # Metadata unavailable (broker down): keep this and the rest for later.
                self.log.warning("Kafka unavailable (%s); keeping %d quote(s) to send again", exc, len(batch) - i)
                for rest in batch[i:]:
                    self._keep(rest)
                break
            future.add_callback(self._delivered, quote)
            future.add_errback(self._failed, quote)
            accepted += 1
        return accepted

    def _delivered(self, quote: Quote, metadata: Any) -> None:
        self.sent += 1
        self.log.debug("sent %s %s %.2f (%s) to partition %d offset %d", quote["symbol"],
                       quote["timestamp"].isoformat(), quote["price"], quote["source"],
                       metadata.partition, metadata.offset)

    def _failed(self, quote: Quote, exc: BaseException) -> None:
        # Delivery timed out after the producer's own retries: send it again next tick.
        self.failed += 1
        self.log.warning("delivery of %s %s failed (%s); will send it again", quote["symbol"],
                         quote["timestamp"].isoformat(), exc)
        self._keep(quote)


def anchor_on_stored(simulator: MarketSimulator, symbols: list[str], db: Any, log: Any) -> None:
    """Start each symbol's simulation at its newest stored quote (as the backfill's
    last close does), so a restart continues the series instead of going back to
    the seed price."""
    from database.mongo.prices import latest_quotes

    try:
        stored = latest_quotes(db, symbols)
    except PyMongoError as exc:
        log.warning("could not read the last stored quotes (%s); simulation starts at the seed prices", exc)
        return
    now = utc_now()
    for quote in stored.values():
        simulator.anchor(quote, now)
    if stored:
        log.info("simulation continues from the last stored quote of %s", ", ".join(sorted(stored)))


@dataclass
class ProducerApp:
    """The producer's adapters, built once by `bootstrap`."""

    settings: Settings
    log: Any
    hours: MarketHours
    source: QuoteSource
    sender: QuoteSender
    kafka: KafkaProducer
    registry: RegistryReader | None = None  # the symbols to quote (None: STOCK_SYMBOLS only)
    db: Any = None  # MongoDB, for the registry and the source status
    status_failed: bool = False  # the last status write failed (said once)


def _quote_source(settings: Settings, db: Any, hours: MarketHours, log: Any) -> QuoteSource:
    """The source chain (Yahoo, Alpha Vantage on the shared budget, the simulator), said at start."""
    client = alpha_vantage_client(settings, db) if Source.ALPHA_VANTAGE in settings.quote_sources else None
    if client is not None:
        log.info("Alpha Vantage on: up to %d calls/minute and %d/day, round-robin over %s",
                 settings.alpha_vantage_calls_per_minute, settings.alpha_vantage_calls_per_day,
                 ", ".join(settings.stock_symbols))
    yahoo = YahooFinanceClient(settings) if Source.YAHOO in settings.quote_sources else None
    stream = None
    if Source.YAHOO_STREAM in settings.quote_sources:
        # A symbol that printed within one polling step is the stream's; the others are polled.
        stream = YahooStream(settings.yahoo_stream_url, settings.stock_symbols, settings.stream_min_interval_seconds,
                             max(settings.poll_interval_seconds, settings.yahoo_refresh_seconds), log=log)
    simulator = MarketSimulator(settings.stock_symbols, hours, settings.poll_interval_seconds,
                                seed=settings.simulation_seed, event_rate=settings.simulation_event_rate)
    source = QuoteSource(settings, simulator, log, hours=hours, alpha_vantage=client, yahoo=yahoo, stream=stream)
    _say_sources(settings, source, hours, log)
    anchor_on_stored(simulator, settings.stock_symbols, db, log)
    return source


def _say_sources(settings: Settings, source: QuoteSource, hours: MarketHours, log: Any) -> None:
    for line in source.skipped:
        log.info("QUOTE_SOURCES: %s", line)
    if source.chain == [Source.SIMULATED]:
        log.info("every quote is simulated (source=simulated)")
    log.info("quotes from %s, first that answers; market calendar %s: %s now", " → ".join(source.chain),
             settings.market_calendar, "open" if hours.is_open(utc_now()) else "closed")
    if Source.YAHOO in source.chain:
        log.info("Yahoo Finance at %s (as Chrome, cookie + crumb; up to %d symbols a request): each symbol "
                 "every %gs while open, every %gs while closed (%d quote requests/hour while open)",
                 settings.yahoo_finance_url, BATCH_MAX, settings.yahoo_refresh_seconds,
                 settings.closed_quote_interval_seconds,
                 round(len(batches(settings.stock_symbols)) * 3600 / max(settings.yahoo_refresh_seconds,
                                                                          settings.poll_interval_seconds)))
    if source.stream is not None:
        log.info("Yahoo stream at %s: each print a quote, at most one per symbol every %gs; a symbol the stream "
                 "is quiet on is polled", settings.yahoo_stream_url, settings.stream_min_interval_seconds)
    if settings.simulation_event_rate:
        log.info("SIMULATION_EVENT_RATE=%g: simulated 5-9 %% moves with heavy volume, per symbol per session hour",
                 settings.simulation_event_rate)


def bootstrap(settings: Settings, stop: threading.Event) -> ProducerApp | None:
    """Build the producer's adapters once: MongoDB (budget, last quotes), the sources, Kafka.
    None when stopped before Kafka was reachable."""
    from database.mongo import get_db, make_client
    from logs.logger_config import get_logger
    from streaming.kafka_io import ensure_topics, make_producer

    log = get_logger("streaming.producer")
    hours = MarketHours(settings.market_calendar)
    db = get_db(make_client(settings, server_selection_timeout_ms=2000), settings)
    source = _quote_source(settings, db, hours, log)
    if not ensure_topics(settings, [settings.kafka_topic], stop):
        return None
    kafka = make_producer(settings, stop)
    if kafka is None:
        return None
    log.info("producing %d symbols every %gs to %s", len(settings.stock_symbols),
             settings.poll_interval_seconds, settings.kafka_topic)
    registry = RegistryReader(lambda: db, settings.stock_symbols, now=utc_now)
    return ProducerApp(settings, log, hours, source, QuoteSender(kafka, settings.kafka_topic, log), kafka,
                       registry, db)


def _follow_registry(app: ProducerApp) -> None:
    """Start and stop symbols as the registry says (it is re-read every REREAD_SECONDS)."""
    if app.registry is None:
        return
    started, stopped = app.source.follow(app.registry.symbols())
    if started:
        # A symbol followed before continues from its stored history instead of its seed price.
        anchor_on_stored(app.source.simulator, started, app.db, app.log)
        app.log.info("now quoting %s (added to the symbol registry)", ", ".join(started))
    if stopped:
        app.log.info("no longer quoting %s (no one follows it; its stored history stays)", ", ".join(stopped))


def name_symbols(app: ProducerApp) -> None:
    """Write the company names Yahoo answered with into the registry (once per symbol and process;
    only over a name that is still the ticker), so pages and digests show the source's names."""
    from database.mongo.symbols import name_unnamed

    names, app.source.new_names = app.source.new_names, {}
    if not names or app.db is None:
        return
    try:
        if changed := name_unnamed(app.db, names):
            app.log.info("%d company name(s) from Yahoo written to the symbol registry", changed)
    except PyMongoError as exc:
        app.log.warning("company names not written to the symbol registry (%s); next time they are answered", exc)
        app.source._named.difference_update(names)


def report_status(app: ProducerApp, now: datetime) -> None:
    """Upsert what each source is doing into MongoDB source_status (one small document a tick)."""
    from database.mongo import source_status

    if app.db is None:
        return
    try:
        source_status.save(app.db, status_document(app.source.status(now), now))
    except PyMongoError as exc:
        if not app.status_failed:
            app.log.warning("source status not written to MongoDB (%s); quotes are not affected", exc)
        app.status_failed = True
    else:
        app.status_failed = False


def _tick(app: ProducerApp, was_open: bool | None) -> bool:
    """One tick: say a market open/close, send the due quotes, log the tally. Returns is_open."""
    settings, log, sender = app.settings, app.log, app.sender
    now = utc_now()
    is_open = app.hours.is_open(now)
    if is_open != was_open and was_open is not None:
        log.info("market %s (%s): %s", "open" if is_open else "closed", settings.market_calendar,
                 "quotes move again" if is_open else
                 f"one quote per symbol every {settings.closed_quote_interval_seconds:g}s, prices kept")
    _follow_registry(app)
    quotes = app.source.tick(now)
    accepted = sender.send(quotes)
    name_symbols(app)
    report_status(app, now)
    if quotes or sender.pending:
        by_source = Counter(q.source for q in quotes)
        log.info("tick: %d quotes queued (%s; market %s), %d waiting to re-send", accepted,
                 ", ".join(f"{by_source[name]} {name}" for name in app.source.chain),
                 "open" if is_open else "closed", len(sender.pending))
    return is_open


def _close(app: ProducerApp) -> None:
    # Whatever was handed to the client is delivered before we go.
    log, sender = app.log, app.sender
    if app.source.stream is not None:
        app.source.stream.close()
    log.info("stopping: flushing the producer")
    try:
        app.kafka.flush(timeout=30)
    except KafkaError as exc:
        log.error("flush on shutdown failed: %s", exc)
    app.kafka.close(timeout=30)
    log.info("producer stopped: %d delivered, %d not delivered (%d still unsent)",
             sender.sent, sender.failed, len(sender.pending))


def run(settings: Settings, stop: threading.Event) -> int:
    app = bootstrap(settings, stop)
    if app is None:
        return 0
    next_at = time.monotonic()
    was_open: bool | None = None
    stream = app.source.stream
    if stream is not None:
        stream.start()
    try:
        while not stop.is_set():
            was_open = _tick(app, was_open)
            next_at += settings.poll_interval_seconds
            # A tick that overran (slow API, broker wait) does not cause a burst of catch-up ticks.
            next_at = max(next_at, time.monotonic())
            while stream is not None and not stop.is_set() and time.monotonic() < next_at:
                app.sender.send(app.source.stream_quotes(utc_now()))  # the live stream between ticks
                stop.wait(min(STREAM_SEND_SECONDS, next_at - time.monotonic()))
            stop.wait(next_at - time.monotonic())
    finally:
        _close(app)
    return 0


if __name__ == "__main__":
    sys.exit(run_service("producer", run))
