"""Yahoo's daily chart answer → daily bars (market_data/yahoo_history.py): pure, no server.
The fixture is constructed in Yahoo's format (see tests/test_batch_backfill.py)."""

from __future__ import annotations

import copy
import json
from datetime import date

import pytest

from market_data.yahoo_finance import YahooRefused
from market_data.yahoo_history import chart_range, parse_daily_chart
from tests.support.http_fixture import FIXTURES

PAYLOAD = json.loads((FIXTURES / "yahoo_chart_NVDA_2y_1d_synthetic.json").read_text())
SPLIT_DAY = date(2024, 6, 10)


def _moves(bars: list[dict]) -> list[float]:
    return [b["close"] / a["close"] - 1 for a, b in zip(bars, bars[1:], strict=False)]


def test_daily_bars_are_yahoos_split_adjusted_quote_prices_in_exchange_dates() -> None:
    history = parse_daily_chart(PAYLOAD, "NVDA")
    quote = PAYLOAD["chart"]["result"][0]["indicators"]["quote"][0]
    assert len(history.bars) == 501 and history.notes == []
    assert [b["close"] for b in history.bars] == quote["close"]  # not adjclose: no dividend step
    assert history.bars[0]["date"] == date(2024, 1, 16) and history.bars[-1]["date"] == date(2026, 1, 13)
    assert all(b["low"] <= min(b["open"], b["close"]) and b["high"] >= max(b["open"], b["close"])
               for b in history.bars)
    assert min(_moves(history.bars)) > -0.25


def test_a_split_yahoo_left_unadjusted_is_applied_from_its_event() -> None:
    adjusted = parse_daily_chart(PAYLOAD, "NVDA").bars
    raw = copy.deepcopy(PAYLOAD)
    result = raw["chart"]["result"][0]
    quote = result["indicators"]["quote"][0]
    split = next(i for i, b in enumerate(adjusted) if b["date"] == SPLIT_DAY)
    for key in ("open", "high", "low", "close"):  # as traded: ten times the price before the split
        quote[key][:split] = [v * 10 for v in quote[key][:split]]
    quote["volume"][:split] = [v // 10 for v in quote["volume"][:split]]
    unfixed_jump = quote["close"][split] / quote["close"][split - 1] - 1
    assert unfixed_jump < -0.85  # what the dashboard would show without the guard

    history = parse_daily_chart(raw, "NVDA")
    assert history.notes == ["split 10:1 on 2024-06-10: Yahoo's bars before it were unadjusted; divided by 10"]
    assert [b["close"] for b in history.bars] == pytest.approx([b["close"] for b in adjusted])
    assert min(_moves(history.bars)) > -0.25
    assert history.bars[0]["volume"] == pytest.approx(adjusted[0]["volume"], abs=10)


def test_null_sessions_are_left_out_and_errors_are_refusals() -> None:
    holey = copy.deepcopy(PAYLOAD)
    holey["chart"]["result"][0]["indicators"]["quote"][0]["close"][5] = None
    assert len(parse_daily_chart(holey, "NVDA").bars) == 500
    with pytest.raises(YahooRefused) as refused:
        parse_daily_chart(json.loads((FIXTURES / "yahoo_chart_unknown_symbol.json").read_text()), "ZZZZ")
    assert refused.value.kind == "unknown_symbol"
    with pytest.raises(YahooRefused, match="asked for MSFT, got NVDA"):
        parse_daily_chart(PAYLOAD, "MSFT")


@pytest.mark.parametrize(("first", "expected"), [(date(2026, 1, 1), "1mo"), (date(2025, 8, 20), "6mo"),
                                                 (date(2024, 1, 17), "2y"), (date(2022, 1, 1), "5y"),
                                                 (date(1990, 1, 1), "max")])
def test_the_shortest_chart_range_covering_the_window(first: date, expected: str) -> None:
    assert chart_range(first, date(2026, 1, 14)) == expected
