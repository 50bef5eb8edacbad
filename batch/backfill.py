"""Daily history from day one, so SMA-20, RSI-14 and the 30-day panels have data
on a fresh stack.

    python batch/backfill.py             # symbols without history get BACKFILL_DAYS trading days
    python batch/backfill.py --force     # every symbol, filling only the days still missing
    python batch/backfill.py --new-only  # one pass of the backfill watcher (below)

"Every symbol" is every registered one (STOCK_SYMBOLS and those users added, database/mongo/symbols.py).
Run by hand, once by batch/scheduler.py when daily_aggregates is empty, and by its backfill
watcher for each symbol added to the registry later (within about 15 s of the addition).
`--new-only` is that watcher's pass on its own (`backfill_new_symbols`): the registered symbols
without `backfilled_at` are backfilled and recorded so; the Airflow DAG `new_symbol_backfill`
runs it every minute when Airflow drives the batch (BATCH_SCHEDULE_ENABLED=false, no watcher).

For each symbol the history is BACKFILL_DAYS sessions of MARKET_CALENDAR (NYSE:
no weekends, no holidays) ending the last session before today or, when MongoDB already holds
quotes of the symbol, before the day of its oldest quote: those days belong to
the daily job, which aggregates them from the quotes (the scheduler's catch-up).
- With `yahoo` in QUOTE_SOURCES, Yahoo's daily bars from the chart endpoint
  (`/v8/finance/chart/<SYM>?range=2y&interval=1d`: the shortest range covering the window,
  one request per symbol, through the same Chrome-like session with cookie and crumb),
  split-adjusted (market_data/yahoo_history.py says which prices and why); rows labelled
  source "yahoo".
- For a symbol Yahoo refuses, with ALPHA_VANTAGE_API_KEY, TIME_SERIES_DAILY (compact: the last 100 trading
  days) within the shared call budget; rows labelled source "real".
- Days the API does not cover (all of them without a key, after a refusal, or
  those older than its 100 days) are simulated by the live simulator's model at
  daily resolution (market_data/simulator.daily_bars: the symbol's volatility,
  jumps and volume), walked backwards from an anchor, labelled source "simulated":
  the earliest real bar's open, else the symbol's latest quote in MongoDB, else its
  seed price, which is where the live simulator starts too, so the first live day
  continues the backfilled series.

Rows are daily bars, not aggregates of quotes: tick_count 0 marks them (no
quote was aggregated), volatility is NULL (no intraday prices),
avg_price is the typical price (high + low + close) / 3 and avg_volume equals
total_volume (one bar). A day that already has a row is never overwritten.
SMA-20, RSI-14, EMA-20, Bollinger (20, 2) and MACD (12, 26, 9) are then computed
over the stored closes (every stored day of the symbol, so `--force` also fills them in
on days stored before the indicator existed), and the weekly and performance rows refreshed.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Protocol

import pymysql
from pymongo.database import Database

from batch.daily_aggregation import (
    refresh_performance,
    refresh_weekly,
    registered_symbols,
    require_daily_columns,
    store_indicators,
)
from batch.metrics import change_pct
from common.clock import utc_now
from common.quote import REAL, DailyBar, Source
from config import Settings
from config.symbols import seed_price
from database.mongo import price_stats
from database.mongo.prices import latest_quotes
from database.mongo.symbols import awaiting_backfill, mark_backfilled
from database.mysql import aggregates, transaction
from logs.logger_config import get_logger
from market_data.market_hours import MarketHours
from market_data.simulator import daily_bars

log = get_logger("batch.backfill")

# How long to wait once for the per-minute API budget before simulating instead.
BUDGET_WAIT_SECONDS = 65.0


class DailySeriesClient(Protocol):
    def daily_series(self, symbol: str) -> list[dict[str, Any]]: ...


class DailyChartClient(Protocol):
    """Yahoo's chart endpoint (market_data/yahoo_finance.YahooFinanceClient)."""

    def daily_chart(self, symbol: str, chart_range: str, now: datetime) -> Any: ...


@dataclass
class BackfillSummary:
    symbols: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    inserted: int = 0
    real_days: dict[str, int] = field(default_factory=dict)
    simulated_days: dict[str, int] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)  # symbol -> yahoo, alpha_vantage or simulated
    seconds: float = 0.0

    def by_source(self) -> dict[str, list[str]]:
        """Which symbols came from where (a symbol's main source: its real bars', else simulated)."""
        grouped: dict[str, list[str]] = {}
        for symbol, source in self.sources.items():
            grouped.setdefault(source, []).append(symbol)
        return grouped


def bar_row(symbol: str, bar: dict[str, Any], source: str) -> DailyBar:
    """The daily_aggregates row of a daily candle (see the module doc for the choices)."""
    high, low, close = float(bar["high"]), float(bar["low"]), float(bar["close"])
    volume = int(bar["volume"])
    return DailyBar(
        symbol=symbol, date=bar["date"],
        open_price=float(bar["open"]), close_price=close, high_price=high, low_price=low,
        avg_price=(high + low + close) / 3.0,
        total_volume=volume, avg_volume=float(volume),
        volatility=None, daily_change_pct=change_pct(float(bar["open"]), close),
        sma_20=None, rsi_14=None, tick_count=0, source=source,  # indicators: store_indicators
    )


def _yahoo_bars(yahoo: DailyChartClient | None, symbol: str, window: Sequence[date],
                today: date) -> list[dict[str, Any]]:
    from market_data.yahoo_finance import YahooRefused
    from market_data.yahoo_history import chart_range, parse_daily_chart

    if yahoo is None:
        return []
    try:
        history = parse_daily_chart(yahoo.daily_chart(symbol, chart_range(window[0], today), utc_now()), symbol)
    except YahooRefused as exc:
        log.warning("%s: Yahoo refused its daily history (%s); trying the next source", symbol, exc)
        return []
    for note in history.notes:
        log.warning("%s: %s", symbol, note)
    first, last = window[0], window[-1]
    return [b for b in history.bars if first <= b["date"] <= last]


def _real_bars(client: DailySeriesClient | None, symbol: str, window: Sequence[date],
               sleep: Callable[[float], None]) -> list[dict[str, Any]]:
    from market_data.alpha_vantage import AlphaVantageRefused
    from market_data.refusal import Refusal

    if client is None:
        return []
    for attempt in (1, 2):
        try:
            bars = client.daily_series(symbol)
            break
        except AlphaVantageRefused as exc:
            if exc.kind is Refusal.BUDGET_EXHAUSTED and attempt == 1:
                # Likely the per-minute share; one wait, then simulate rather than stall.
                log.info("%s: Alpha Vantage budget spent for now; waiting %.0f s once", symbol, BUDGET_WAIT_SECONDS)
                sleep(BUDGET_WAIT_SECONDS)
                continue
            log.warning("%s: Alpha Vantage refused TIME_SERIES_DAILY (%s); simulating its history", symbol, exc)
            return []
    first, last = window[0], window[-1]
    return [b for b in bars if first <= b["date"] <= last]


def backfill(settings: Settings, *, db: Database, conn: pymysql.Connection, today: date,
             client: DailySeriesClient | None = None, yahoo: DailyChartClient | None = None,
             force: bool = False, seed: int | None = None, symbols: Sequence[str] | None = None,
             sleep: Callable[[float], None] = time.sleep) -> BackfillSummary:
    """Fill the history of `symbols` (default: every registered symbol) that have none yet."""
    started = time.monotonic()
    require_daily_columns(conn)
    symbols = list(symbols) if symbols is not None else registered_symbols(db, settings)
    summary = BackfillSummary()
    base_seed = settings.simulation_seed if seed is None else seed
    todo: list[str] = []
    for symbol in symbols:
        if settings.backfill_days and (force or not aggregates.has_daily_before(conn, symbol, today)):
            todo.append(symbol)
        else:
            summary.skipped.append(symbol)
    anchors = latest_quotes(db, todo) if todo else {}
    hours = MarketHours(settings.market_calendar)
    filled_days: set[date] = set()
    for symbol in todo:
        first_quote = price_stats.first_quote_at(db, symbol)
        end = today if first_quote is None else min(today, first_quote.astimezone(settings.tz).date())
        window = hours.sessions_before(end, settings.backfill_days)
        filled_days.update(window)
        # Yahoo first (2 years, no key), Alpha Vantage for what it refuses, simulation for the rest.
        real, label, source = _yahoo_bars(yahoo, symbol, window, today), Source.YAHOO.value, Source.YAHOO
        if not real:
            real, label, source = _real_bars(client, symbol, window, sleep), REAL, Source.ALPHA_VANTAGE
        simulated_days = [d for d in window if not real or d < real[0]["date"]]
        if real:
            anchor = float(real[0]["open"])
        elif symbol in anchors:
            anchor = float(anchors[symbol]["price"])
        else:
            anchor = seed_price(symbol)
        # A fixed SIMULATION_SEED gives the same history every time; otherwise random.
        rng = random.Random(f"{base_seed}:{symbol}") if base_seed is not None else random.Random()
        rows = [bar_row(symbol, b, Source.SIMULATED) for b in daily_bars(symbol, simulated_days, anchor, rng)]
        rows += [bar_row(symbol, b, label) for b in real]
        with transaction(conn) as cur:
            inserted = aggregates.insert_daily_if_absent(cur, [row.as_row() for row in rows])
        store_indicators(conn, symbol, today)
        summary.symbols.append(symbol)
        summary.inserted += inserted
        summary.real_days[symbol] = len(real)
        summary.simulated_days[symbol] = len(simulated_days)
        summary.sources[symbol] = str(source if real else Source.SIMULATED)
        log.info("%s: backfilled %d days (%d real from %s, %d simulated), %d new rows",
                 symbol, len(rows), len(real), source if real else "no source", len(simulated_days), inserted)
    if summary.symbols:
        refresh_weekly(conn, summary.symbols, sorted(filled_days))
        refresh_performance(conn, summary.symbols)
    summary.seconds = time.monotonic() - started
    log.info("backfill done: %d symbols filled, %d skipped (already have history), %d rows inserted, %.2f s; %s",
             len(summary.symbols), len(summary.skipped), summary.inserted, summary.seconds,
             "; ".join(f"{source}: {', '.join(symbols)}" for source, symbols in summary.by_source().items())
             or "nothing to fill")
    return summary


def run_backfill(settings: Settings, *, db: Database, conn: pymysql.Connection, force: bool = False,
                 symbols: Sequence[str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> BackfillSummary:
    from market_data.alpha_vantage import alpha_vantage_client
    from market_data.yahoo_finance import YahooFinanceClient

    today = utc_now().astimezone(settings.tz).date()
    yahoo = YahooFinanceClient(settings) if Source.YAHOO in settings.quote_sources else None
    return backfill(settings, db=db, conn=conn, today=today, client=alpha_vantage_client(settings, db), yahoo=yahoo,
                    force=force, symbols=symbols, sleep=sleep)


def backfill_new_symbols(settings: Settings, *, db: Database, conn: pymysql.Connection,
                         sleep: Callable[[float], None] = time.sleep) -> list[str]:
    """One pass of the backfill watcher: backfill the registered symbols not handled yet and record
    them (a symbol that already has history is only recorded). Returns the symbols handled."""
    todo = awaiting_backfill(db)
    if not todo:
        return []
    log.info("backfill watcher: %d new symbol(s) in the registry: %s", len(todo), ", ".join(todo))
    summary = run_backfill(settings, db=db, conn=conn, symbols=todo, sleep=sleep)
    mark_backfilled(db, [*summary.symbols, *summary.skipped], utc_now())
    return todo


def _new_only(settings: Settings, db: Database, conn: pymysql.Connection) -> list[str]:
    if not settings.backfill_days:
        log.info("BACKFILL_DAYS=0: no backfill of new symbols")
        return []
    # Seeded first, so the defaults of a fresh stack count as new (their start-up backfill, in Airflow mode).
    registered_symbols(db, settings)
    done = backfill_new_symbols(settings, db=db, conn=conn)
    if not done:
        log.info("backfill watcher: every registered symbol is backfilled already")
    return done


def main(argv: Sequence[str] | None = None) -> int:
    from batch.stores import run_with_stores
    from config import get_settings
    from logs.logger_config import setup_logging

    parser = argparse.ArgumentParser(prog="batch/backfill.py", description="Fill daily history (see module doc).")
    parser.add_argument("--force", action="store_true",
                        help="also symbols that already have history (missing days only)")
    parser.add_argument("--new-only", action="store_true",
                        help="only registered symbols not backfilled yet (the watcher's pass), recorded so")
    args = parser.parse_args(argv)
    if args.force and args.new_only:
        parser.error("--force and --new-only exclude each other")
    settings = get_settings()
    setup_logging("batch", settings)
    if args.new_only:
        return run_with_stores(settings, "backfill", lambda db, conn: _new_only(settings, db, conn))
    return run_with_stores(settings, "backfill",
                           lambda db, conn: run_backfill(settings, db=db, conn=conn, force=args.force))


if __name__ == "__main__":
    sys.exit(main())
