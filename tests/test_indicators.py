"""batch/indicators.py on published reference values (pure, no servers)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from batch.indicators import (
    DailyIndicators,
    bollinger_series,
    daily_indicators,
    ema_series,
    latest_indicators,
    macd_series,
    rsi,
    rsi_series,
    sma,
    sma_series,
)

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


# --- EMA-20, Bollinger (20, 2), MACD (12, 26, 9) against the `ta` package ------------------------
# ta (requirements-dev.txt, pinned) is the reference: pandas ewm(adjust=False) / rolling(ddof=0),
# the standard definitions. Same floating-point operations in another order: 1e-9 is far below a
# cent and far above the rounding differences (~1e-12 on prices near 200).
TOLERANCE = 1e-9


def _reference_closes() -> list[float]:
    return _load("daily_closes_320.json")["closes"]


def _assert_matches(mine: list[float | None], reference: object, name: str) -> None:
    import math

    values = list(reference)  # type: ignore[call-overload]
    assert len(mine) == len(values), name
    for i, (got, want) in enumerate(zip(mine, values, strict=True)):
        if math.isnan(want):
            assert got is None, f"{name}[{i}]: {got} where the reference has no value yet"
        else:
            assert got is not None, f"{name}[{i}]: None where the reference has {want}"
            assert abs(got - want) <= TOLERANCE, f"{name}[{i}]: {got} vs reference {want}"


def test_ema20_matches_ta_reference() -> None:
    import pandas as pd
    from ta.trend import EMAIndicator

    closes = _reference_closes()
    _assert_matches(ema_series(closes, 20), EMAIndicator(pd.Series(closes), window=20).ema_indicator(), "ema_20")
    assert ema_series(closes, 20)[18] is None and ema_series(closes, 20)[19] is not None


def test_bollinger_20_2_matches_ta_reference() -> None:
    import pandas as pd
    from ta.volatility import BollingerBands

    closes = _reference_closes()
    reference = BollingerBands(pd.Series(closes), window=20, window_dev=2)
    bands = bollinger_series(closes, 20, 2.0)
    _assert_matches([b.middle if b else None for b in bands], reference.bollinger_mavg(), "bb_middle")
    _assert_matches([b.upper if b else None for b in bands], reference.bollinger_hband(), "bb_upper")
    _assert_matches([b.lower if b else None for b in bands], reference.bollinger_lband(), "bb_lower")
    # The middle band is SMA-20, exactly as stored in sma_20.
    assert [b.middle if b else None for b in bands] == pytest.approx(sma_series(closes, 20), abs=TOLERANCE)


def test_macd_12_26_9_matches_ta_reference() -> None:
    import pandas as pd
    from ta.trend import MACD

    closes = _reference_closes()
    reference = MACD(pd.Series(closes), window_slow=26, window_fast=12, window_sign=9)
    found = macd_series(closes, 12, 26, 9)
    _assert_matches([m.line if m else None for m in found], reference.macd(), "macd")
    _assert_matches([m.signal if m else None for m in found], reference.macd_signal(), "macd_signal")
    _assert_matches([m.histogram if m else None for m in found], reference.macd_diff(), "macd_hist")
    assert found[24] is None and found[25] is not None  # the line from the 26th close
    assert found[32].signal is None and found[33].signal is not None  # the signal from the 34th


def test_daily_indicators_gathers_every_series_and_short_histories_give_none() -> None:
    closes = _reference_closes()
    rows = daily_indicators(closes)
    last = latest_indicators(closes)
    assert rows[-1] == last
    assert last.sma_20 == pytest.approx(sma(closes, 20)) and last.rsi_14 == pytest.approx(rsi(closes, 14))
    assert last.bb_lower < last.bb_middle < last.bb_upper
    assert last.macd_hist == pytest.approx(last.macd - last.macd_signal)
    assert latest_indicators([]) == DailyIndicators()
    short = latest_indicators(closes[:19])
    assert short.ema_20 is None and short.bb_middle is None and short.macd is None and short.rsi_14 is not None
    # A flat series: bands collapse onto the price, MACD is 0.
    flat = latest_indicators([50.0] * 40)
    assert (flat.bb_lower, flat.bb_middle, flat.bb_upper) == (50.0, 50.0, 50.0)
    assert (flat.macd, flat.macd_signal, flat.macd_hist) == (0.0, 0.0, 0.0)
    with pytest.raises(ValueError):
        macd_series(closes, 26, 12, 9)
