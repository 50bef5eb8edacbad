"""Alert rules, volume window and cooldown (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from streaming.alert_rules import (
    PRICE_CHANGE,
    VOLUME_SPIKE,
    Decision,
    VolumeWindows,
    cooldown_decision,
    evaluate,
)

T0 = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)


def quote(i: int, change: float = 0.3, volume: int = 1000) -> dict:
    return {"symbol": "AAPL", "timestamp": T0 + timedelta(seconds=15 * i), "price": 261.0, "volume": volume,
            "open": 260.0, "high": 262.0, "low": 259.0, "change_percent": change, "source": "simulated"}


def test_price_rule_fires_above_the_threshold_either_way() -> None:
    windows = VolumeWindows(3)
    assert evaluate(quote(0, change=5.0), 5.0, 2.0, windows) == []  # not above
    up = evaluate(quote(1, change=5.01), 5.0, 2.0, windows)
    down = evaluate(quote(2, change=-7.5), 5.0, 2.0, windows)
    assert [a.rule for a in up + down] == [PRICE_CHANGE, PRICE_CHANGE]
    assert down[0].value == -7.5 and down[0].threshold == 5.0 and "down 7.50%" in down[0].message
    assert down[0].key == "AAPL|price_change|2026-01-13T15:30:30.000+00:00"


def test_volume_rule_waits_for_a_full_window() -> None:
    windows = VolumeWindows(3)
    assert evaluate(quote(0), 5.0, 2.0, windows) == []
    assert evaluate(quote(1), 5.0, 2.0, windows) == []
    assert evaluate(quote(2, volume=10_000), 5.0, 2.0, windows) == []  # window not yet full
    windows = VolumeWindows(3)
    for i in range(3):
        evaluate(quote(i), 5.0, 2.0, windows)
    assert evaluate(quote(3, volume=2000), 5.0, 2.0, windows) == []  # exactly 2x is not above
    spike = evaluate(quote(4, volume=5000), 5.0, 2.0, windows)
    assert [a.rule for a in spike] == [VOLUME_SPIKE]
    assert spike[0].value == 5000 and spike[0].threshold == round(2.0 * (1000 + 1000 + 2000) / 3, 4)


def test_redelivered_quote_does_not_feed_the_window_twice() -> None:
    windows = VolumeWindows(2)
    assert windows.add("AAPL", 100, T0)
    assert not windows.add("AAPL", 100, T0)
    assert windows.average("AAPL") is None


def test_cooldown() -> None:
    cool = timedelta(minutes=15)
    assert cooldown_decision(T0, None, cool) is Decision.NEW
    assert cooldown_decision(T0, T0, cool) is Decision.REPLAY
    assert cooldown_decision(T0 + timedelta(minutes=14), T0, cool) is Decision.COOLDOWN
    assert cooldown_decision(T0 - timedelta(minutes=1), T0, cool) is Decision.COOLDOWN
    assert cooldown_decision(T0 + timedelta(minutes=15), T0, cool) is Decision.NEW
