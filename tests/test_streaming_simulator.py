"""Simulation (pure): seedable, consistent within a day, moves enough to raise alerts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from streaming.simulator import MarketSimulator, interval_volume

NY = ZoneInfo("America/New_York")
SYMBOLS = ["AAPL", "TSLA", "ZZZ"]


def run(seed: int, ticks: int, start: datetime) -> list[dict]:
    sim = MarketSimulator(SYMBOLS, 15.0, NY, seed=seed)
    return [sim.next_quote(s, start + timedelta(seconds=15 * i)) for i in range(ticks) for s in SYMBOLS]


def test_same_seed_same_quotes() -> None:
    start = datetime(2026, 1, 13, 15, 0, tzinfo=UTC)
    assert run(7, 50, start) == run(7, 50, start)
    assert run(7, 50, start) != run(8, 50, start)


def test_quotes_are_consistent_and_labelled() -> None:
    start = datetime(2026, 1, 13, 20, 0, tzinfo=UTC)
    quotes = run(1, 3000, start)  # crosses into the next market day
    assert {q["source"] for q in quotes} == {"simulated"}
    for q in quotes:
        assert q["low"] <= q["price"] <= q["high"] and q["low"] <= q["open"] <= q["high"]
        assert q["volume"] > 0 and q["price"] > 0
        assert abs(q["change_percent"] - (q["price"] - q["previous_close"]) / q["previous_close"] * 100) < 1e-3
    aapl = [q for q in quotes if q["symbol"] == "AAPL"]
    assert 150 < aapl[0]["price"] < 400  # plausible start
    days = {q["timestamp"].astimezone(NY).date() for q in aapl}
    assert len(days) == 2
    first_of_day2 = next(q for q in aapl if q["timestamp"].astimezone(NY).date() == max(days))
    last_of_day1 = [q for q in aapl if q["timestamp"].astimezone(NY).date() == min(days)][-1]
    assert first_of_day2["previous_close"] == last_of_day1["price"]


def test_occasional_large_moves_and_volume_bursts() -> None:
    quotes = run(3, 3000, datetime(2026, 1, 13, 15, 0, tzinfo=UTC))
    steps = [abs(b["price"] / a["price"] - 1) for a, b in zip(quotes[::3], quotes[3::3], strict=False)]
    assert any(s > 0.02 for s in steps)  # jumps happen...
    assert sorted(steps)[len(steps) // 2] < 0.005  # ...but most ticks are small
    volumes = [q["volume"] for q in quotes if q["symbol"] == "AAPL"]
    average = sum(volumes) / len(volumes)
    assert any(v > 2.5 * average for v in volumes)


def test_anchor_continues_from_the_real_price() -> None:
    sim = MarketSimulator(["AAPL"], 15.0, NY, seed=1)
    now = datetime(2026, 1, 13, 15, 0, tzinfo=UTC)
    sim.anchor({"symbol": "AAPL", "price": 100.0, "open": 99.0, "high": 101.0, "low": 98.0,
                "previous_close": 98.5, "volume": 1000}, now)
    q = sim.next_quote("AAPL", now + timedelta(seconds=15))
    assert 95 < q["price"] < 105 and q["open"] == 99.0 and q["previous_close"] == 98.5


def test_real_day_volume_becomes_a_per_tick_volume() -> None:
    # 13:00 New York = 3.5 h into the session: 15 s is 1/840 of it.
    now = datetime(2026, 1, 13, 18, 0, tzinfo=UTC)
    assert interval_volume(8_400_000, now, 15.0, NY) == 10_000
    # Before the open, the whole day so far counts as one tick.
    assert interval_volume(5000, datetime(2026, 1, 13, 13, 0, tzinfo=UTC), 15.0, NY) == 5000
