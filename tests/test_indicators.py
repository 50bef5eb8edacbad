"""batch/indicators.py on published reference values (pure, no servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch.indicators import rsi, rsi_series, sma, sma_series

FIXTURES = Path(__file__).parent / "fixtures"


def _load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def test_sma20_matches_stockcharts_bollinger_middle_band() -> None:
    # Reference: StockCharts ChartSchool "Bollinger Bands" spreadsheet (cs-bollinger.xls);
    # its middle band is the 20-day SMA, published to 2 decimals.
    ref = _load("stockcharts_sma20.json")
    series = sma_series(ref["closes"], 20)
    assert series[: ref["sma_from_index"]] == [None] * ref["sma_from_index"]
    published = ref["sma"]
    computed = series[ref["sma_from_index"]:]
    assert len(computed) == len(published)
    for got, want in zip(computed, published, strict=True):
        assert got == pytest.approx(want, abs=0.005 + 1e-9)  # rounding to 2 decimals
    assert sma(ref["closes"], 20) == pytest.approx(91.05, abs=0.005)


def test_rsi14_matches_stockcharts_wilder_example() -> None:
    # Reference: StockCharts ChartSchool "Relative Strength Index (RSI)" spreadsheet (cs-rsi.xls),
    # Wilder's smoothing. The spreadsheet rounds its averages to 2 decimals before RS, which moves
    # the published RSI by up to ~0.07 from the full-precision value; hence 0.08, well below the
    # differences a wrong method gives (a simple, unsmoothed average is off by several points).
    ref = _load("stockcharts_rsi14.json")
    series = rsi_series(ref["closes"], 14)
    start = ref["rsi_from_index"]
    assert series[:start] == [None] * start
    computed = series[start:]
    assert len(computed) == len(ref["rsi"])
    for got, want in zip(computed, ref["rsi"], strict=True):
        assert got == pytest.approx(want, abs=0.08)
    # Full precision of the first value: avg gain 0.2386, avg loss 0.0999 (14 changes).
    assert computed[0] == pytest.approx(70.4641, abs=1e-4)


def test_not_enough_days_gives_none() -> None:
    closes = [float(x) for x in range(1, 30)]
    assert sma(closes[:19], 20) is None
    assert sma(closes[:20], 20) == pytest.approx(10.5)
    assert rsi(closes[:14], 14) is None  # 14 closes = 13 changes
    assert rsi(closes[:15], 14) is not None
    assert rsi([], 14) is None and sma([], 20) is None


def test_rsi_edges_only_gains_only_losses_flat() -> None:
    assert rsi([float(x) for x in range(20)]) == 100.0
    assert rsi([float(20 - x) for x in range(20)]) == 0.0
    assert rsi([5.0] * 20) == 50.0


def test_rsi_uses_smoothing_not_a_plain_window() -> None:
    # The same last 15 closes with different earlier history give different RSI:
    # Wilder's average carries the past (a plain 14-day window would not).
    tail = [10.0, 11, 10.5, 11.5, 11, 12, 11.5, 12.5, 12, 13, 12.5, 13.5, 13, 14, 13.5]
    up_before = [float(x) for x in range(1, 10)] + tail
    down_before = [float(x) for x in range(30, 21, -1)] + tail
    assert rsi(up_before) != pytest.approx(rsi(down_before), abs=0.5)
