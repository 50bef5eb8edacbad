"""Alert rules (pure): price bands, the time-of-day volume baseline, the fallback
window, the cooldown and a user's own rules."""

from __future__ import annotations

import math
import random
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from streaming.alert_rules import (
    PRICE_CHANGE,
    RECENT_AVERAGE,
    TIME_OF_DAY,
    VOLUME_SPIKE,
    Alert,
    BandState,
    Baseline,
    Decision,
    UserRules,
    VolumeWindows,
    band_of,
    baseline_windows,
    bucket_of,
    cooldown_decision,
    price_alert,
    step_band,
    time_of_day_baseline,
    user_wants,
    volume_alert,
)

T0 = datetime(2026, 1, 13, 15, 30, tzinfo=UTC)  # 10:30 in New York
NY = ZoneInfo("America/New_York")
DAY = date(2026, 1, 13)


def quote(i: int, change: float = 0.3, volume: int = 1000) -> dict:
    return {"symbol": "AAPL", "timestamp": T0 + timedelta(seconds=15 * i), "price": 261.0, "volume": volume,
            "open": 260.0, "high": 262.0, "low": 259.0, "change_percent": change, "source": "simulated"}


def run_moves(moves: list[float], state: BandState | None = None, day: date = DAY,
              start: datetime = T0) -> tuple[BandState, list[tuple[int, int]]]:
    """Feed one move per 15 s quote; returns the final state and (quote index, band) of each alert."""
    state = state or BandState()
    fired = []
    for i, move in enumerate(moves):
        state, band = step_band(state, move, start + timedelta(seconds=15 * i), day, 5.0, 1.0)
        if band is not None:
            fired.append((i, band))
    return state, fired


def test_band_is_how_many_thresholds_the_move_exceeds() -> None:
    assert [band_of(m, 5.0) for m in (0.0, 4.9, 5.0, 5.01, -6.0, 10.0, 10.01, 15.2, -31.0)] == [
        0, 0, 0, 1, 1, 1, 2, 3, 6]


def test_the_issue_day_up_6_for_two_hours_then_11_then_back_to_2_then_6() -> None:
    two_hours = 480  # 15 s quotes
    moves = [0.5, 2.0, 4.0] + [6.0 + 0.3 * math.sin(i / 7) for i in range(two_hours)] + [8.0, 9.5, 11.0, 10.6]
    moves += [8.0, 5.0, 3.0, 2.0, 2.5, 4.5, 6.0, 6.2]
    _, fired = run_moves(moves)
    assert [band for _, band in fired] == [1, 2, 1]
    assert fired[0][0] == 3 and moves[fired[1][0]] == 11.0 and moves[fired[2][0]] == 6.0


def test_hysteresis_a_dip_to_just_under_the_threshold_does_not_rearm() -> None:
    _, fired = run_moves([6.0, 4.5, 4.1, 6.0, 5.5, 3.9, 5.2])
    assert fired == [(0, 1), (6, 1)]  # re-armed only below 5 - 1 = 4 %


def test_falling_from_a_high_band_does_not_fire_the_lower_one_again() -> None:
    _, fired = run_moves([6.0, 12.0, 8.0, 12.5, 9.0, 14.0, 16.0])
    assert fired == [(0, 1), (1, 2), (6, 3)]


def test_a_flip_from_up_to_down_is_a_new_event_and_down_moves_fire_too() -> None:
    _, fired = run_moves([-5.5, -7.0, 6.0, -6.0])
    assert fired == [(0, 1), (2, 1), (3, 1)]


def test_a_new_market_day_rearms_and_replays_change_nothing() -> None:
    state, fired = run_moves([6.0, 6.1])
    assert fired == [(0, 1)] and state.band == 1 and state.fired_at == T0
    # The next day the stock is still up 6 % from ITS previous close: a new event.
    next_day = T0 + timedelta(days=1)
    _, fired = run_moves([6.0], state, day=DAY + timedelta(days=1), start=next_day)
    assert fired == [(0, 1)]
    # A redelivered older quote changes nothing; the very quote that fired gives its band
    # again (so its delivery can be completed under the same alert_key).
    same, band = step_band(state, 9.0, T0 + timedelta(seconds=15), DAY, 5.0, 1.0)
    assert same == state and band is None
    same, band = step_band(state, 6.0, T0, DAY, 5.0, 1.0)
    assert same == state and band == 1


def test_price_alert_says_which_band() -> None:
    alert = price_alert(quote(2, change=-11.5), 2, 5.0)
    assert alert.rule == PRICE_CHANGE and alert.value == -11.5 and alert.band == 2 and alert.threshold == 5.0
    assert "down 11.50%" in alert.message and "2x the threshold" in alert.message
    assert alert.key == "AAPL|price_change|2026-01-13T15:30:30.000+00:00"
    assert alert.as_record()["band"] == 2 and alert.as_record()["baseline"] is None


# ---------------------------------------------------------------------- volume
def test_buckets_and_the_same_bucket_on_earlier_days() -> None:
    assert bucket_of(T0, NY, 30) == (time(10, 30), time(11, 0))
    assert bucket_of(T0 + timedelta(minutes=14), NY, 15) == (time(10, 30), time(10, 45))
    windows = baseline_windows(T0, NY, 30, 3)
    assert [(a.isoformat(), b.isoformat()) for a, b in windows] == [
        ("2026-01-12T10:30:00-05:00", "2026-01-12T11:00:00-05:00"),
        ("2026-01-11T10:30:00-05:00", "2026-01-11T11:00:00-05:00"),
        ("2026-01-10T10:30:00-05:00", "2026-01-10T11:00:00-05:00")]


def test_time_of_day_baseline_is_the_median_of_daily_means_and_needs_enough_sessions() -> None:
    per_day = {date(2026, 1, d): v for d, v in {12: [100, 300], 9: [400], 8: [50, 150], 7: [], 6: [10_000]}.items()}
    base = time_of_day_baseline(per_day, sessions=3, min_sessions=3, label="10:30-11:00")
    assert base == Baseline(200.0, TIME_OF_DAY, "median of 3 sessions, 10:30-11:00")  # days 12, 9, 8
    assert time_of_day_baseline(per_day, sessions=10, min_sessions=3, label="x").volume == 300.0  # +day 6
    assert time_of_day_baseline({date(2026, 1, 12): [100]}, sessions=10, min_sessions=3, label="x") is None


def u_shape(minute: float) -> float:
    """Typical per-quote volume of a session minute (0..390): busy open and close."""
    x = minute / 390
    return 1000 * (1 + 5 * (1 - x) ** 8 + 3 * x**10)


def test_a_u_shaped_day_is_quiet_against_its_time_of_day_but_not_against_the_recent_average() -> None:
    rng = random.Random(7)
    open_at = datetime(2026, 1, 13, 9, 30, tzinfo=NY)
    history: dict[tuple[time, time], dict[date, list[int]]] = {}
    for back in range(1, 6):
        day_open = open_at - timedelta(days=back)
        for m in range(0, 390, 5):
            ts = day_open + timedelta(minutes=m)
            history.setdefault(bucket_of(ts, NY, 30), {}).setdefault(ts.date(), []).append(
                int(u_shape(m) * rng.lognormvariate(0, 0.15)))
    windows = VolumeWindows(20)
    tod, recent = [], []
    for i in range(390 * 4):  # 15 s quotes
        ts = open_at + timedelta(seconds=15 * i)
        volume = int(u_shape(i / 4) * rng.lognormvariate(0, 0.15))
        if i == 700:
            volume *= 5  # the one real outlier, mid-session
        q = {**quote(0, volume=volume), "timestamp": ts}
        base = time_of_day_baseline(history[bucket_of(ts, NY, 30)], 10, 3, "b")
        if (a := volume_alert(q, base, 2.0)) is not None:
            tod.append(i)
            assert a.baseline_kind == TIME_OF_DAY and a.baseline == round(base.volume, 4)
        if volume_alert(q, windows.baseline("AAPL"), 2.0) is not None:
            recent.append(i)
        windows.add("AAPL", volume, ts)
    assert tod == [700]
    assert 700 in recent


def test_the_fallback_window_waits_until_full_and_labels_itself() -> None:
    windows = VolumeWindows(3)
    for i in range(2):
        windows.add("AAPL", 1000, quote(i)["timestamp"])
    assert windows.baseline("AAPL") is None
    windows.add("AAPL", 2000, quote(2)["timestamp"])
    base = windows.baseline("AAPL")
    assert base is not None and base.kind == RECENT_AVERAGE and round(base.volume, 4) == round(4000 / 3, 4)
    assert volume_alert(quote(3, volume=2666), base, 2.0) is None  # not above 2x
    spike = volume_alert(quote(4, volume=5000), base, 2.0)
    assert spike is not None and spike.rule == VOLUME_SPIKE and spike.value == 5000
    assert spike.threshold == round(2.0 * 4000 / 3, 4) and "recent average" in spike.message


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


def test_a_user_gets_the_system_alerts_passing_their_own_rules() -> None:
    ann = UserRules("1", "ann@x", True, (), 8.0, 4.0, 5, None)
    bob = UserRules("2", "bob@x", True, ("MSFT",), 5.0, 2.0, 5, None)
    off = UserRules("3", "off@x", False, (), 5.0, 2.0, 5, None)
    move6, move11 = price_alert(quote(0, change=6.0), 1, 5.0), price_alert(quote(1, change=-11.0), 2, 5.0)
    spike3 = volume_alert(quote(2, volume=3000), Baseline(1000.0, TIME_OF_DAY, "d"), 2.0)
    spike5 = volume_alert(quote(3, volume=5000), Baseline(1000.0, TIME_OF_DAY, "d"), 2.0)
    assert isinstance(spike3, Alert) and isinstance(spike5, Alert)
    assert [user_wants(ann, a) for a in (move6, move11, spike3, spike5)] == [False, True, False, True]
    assert not any(user_wants(bob, a) for a in (move6, move11, spike3, spike5))  # AAPL is not on his list
    assert user_wants(bob, price_alert({**quote(0, change=6.0), "symbol": "MSFT"}, 1, 5.0))
    assert not user_wants(off, move11)
