"""The producer spreads its daily Alpha Vantage budget over the day (controlled clock, real HTTP)."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta

from market_data.alpha_vantage import AlphaVantageClient
from market_data.market_hours import MarketHours
from market_data.simulator import MarketSimulator
from streaming.producer import QuoteSource
from tests.conftest import Stack
from tests.support.call_budget import LocalCallBudget
from tests.support.http_fixture import RecordedApi, Request, Response


def _quote(req: Request) -> Response:
    symbol = req.query["symbol"]
    return Response(body=json.dumps({"Global Quote": {
        "01. symbol": symbol, "02. open": "100.0", "03. high": "101.0", "04. low": "99.0", "05. price": "100.5",
        "06. volume": "1000000", "07. latest trading day": "2026-01-13", "08. previous close": "100.0",
        "09. change": "0.5", "10. change percent": "0.5%"}}).encode())


def _source(stack: Stack, api: RecordedApi, spread: bool) -> QuoteSource:
    settings = stack.settings(
        alpha_vantage_api_key="k", alpha_vantage_url=api.url + "/query", stock_symbols="AAPL,MSFT,NVDA",
        alpha_vantage_calls_per_minute=5, alpha_vantage_calls_per_day=1440,  # one call a minute when spread
        alpha_vantage_spread_daily_budget=spread, poll_interval_seconds=15,
        quote_sources="alpha_vantage,simulated",
    )
    now = [datetime(2026, 1, 13, 15, 0, tzinfo=UTC)]
    client = AlphaVantageClient(settings, LocalCallBudget(5, 1440, clock=lambda: now[0].timestamp()))
    hours = MarketHours("XNYS")  # 2026-01-13 15:00 UTC is 10:00 in New York, a Tuesday session
    source = QuoteSource(settings, MarketSimulator(settings.stock_symbols, hours, 15, seed=1),
                         logging.getLogger("test.pacing"), hours=hours, alpha_vantage=client)
    source.clock = now  # type: ignore[attr-defined]
    return source


def _run(source: QuoteSource, ticks: int) -> list[list[str]]:
    now = source.clock  # type: ignore[attr-defined]
    sources = []
    for _ in range(ticks):
        quotes = source.tick(now[0])
        sources.append([q["source"] for q in quotes])
        now[0] += timedelta(seconds=15)
    return sources


def test_spread_budget_calls_once_per_gap_round_robin(stack: Stack, recorded_api: RecordedApi) -> None:
    recorded_api.route("/query", _quote)
    ticks = _run(_source(stack, recorded_api, spread=True), 20)  # 5 minutes of 15-second ticks
    calls = [c.query["symbol"] for c in recorded_api.calls("/query")]
    assert calls == ["AAPL", "MSFT", "NVDA", "AAPL", "MSFT"]  # t = 0, 60, 120, 180, 240 s
    assert [i for i, t in enumerate(ticks) if "alpha_vantage" in t] == [0, 4, 8, 12, 16]
    assert all(t.count("alpha_vantage") <= 1 for t in ticks)


def test_unspread_budget_spends_the_minute_limit_at_once(stack: Stack, recorded_api: RecordedApi) -> None:
    recorded_api.route("/query", _quote)
    _run(_source(stack, recorded_api, spread=False), 4)  # one minute
    assert len(recorded_api.calls("/query")) == 5  # the whole per-minute budget in the first minute
