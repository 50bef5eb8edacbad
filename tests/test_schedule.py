"""common/schedule.py with a controlled clock: no test here sleeps."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from batch.scheduler import day_for_fire
from common.schedule import fires_between, next_fire, previous_fire, run_schedule
from config.settings import Settings
from tests.support.clock import FakeClock

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def test_next_and_previous_fire_at_local_midnight_across_dst() -> None:
    # Spring forward 2026-03-08 (EST -5 -> EDT -4): midnight stays local midnight.
    first = next_fire("0 0 * * *", NY, ny(2026, 3, 7, 12, 0))
    assert first == ny(2026, 3, 8, 0, 0)
    assert first.astimezone(UTC) == datetime(2026, 3, 8, 5, 0, tzinfo=UTC)
    second = next_fire("0 0 * * *", NY, first)
    assert second.astimezone(UTC) == datetime(2026, 3, 9, 4, 0, tzinfo=UTC)  # a 23-hour day
    # Fall back 2026-11-01: a 25-hour day.
    a = next_fire("0 0 * * *", NY, ny(2026, 10, 31, 23, 0))
    b = next_fire("0 0 * * *", NY, a)
    assert b.astimezone(UTC) - a.astimezone(UTC) == timedelta(hours=25)
    # Input in UTC is read in the schedule's zone: 03:00 UTC is still the 13th in New York.
    assert next_fire("0 0 * * *", NY, datetime(2026, 1, 14, 3, 0, tzinfo=UTC)) == ny(2026, 1, 14, 0, 0)
    # previous_fire counts an exact hit, otherwise the one before.
    assert previous_fire("0 0 * * *", NY, ny(2026, 1, 14, 0, 0)) == ny(2026, 1, 14, 0, 0)
    assert previous_fire("0 0 * * *", NY, ny(2026, 1, 14, 9, 30)) == ny(2026, 1, 14, 0, 0)
    assert previous_fire("0 8 * * *", NY, ny(2026, 1, 14, 7, 59)) == ny(2026, 1, 13, 8, 0)
    assert fires_between("0 0 * * *", NY, ny(2026, 1, 10, 12), ny(2026, 1, 13, 0, 0)) == [
        ny(2026, 1, 11), ny(2026, 1, 12), ny(2026, 1, 13)]
    with pytest.raises(ValueError):
        next_fire("0 0 * * *", NY, datetime(2026, 1, 1))  # naive


def test_runs_fire_at_the_scheduled_instants_and_catch_up_first() -> None:
    clock = FakeClock(ny(2026, 1, 13, 23, 58, 30))
    events: list[tuple[str, datetime, datetime]] = []
    ran = run_schedule(
        "0 0 * * *", NY, lambda fire: events.append(("job", fire, clock())), name="t",
        clock=clock, sleep=clock.sleep, max_runs=3,
        catch_up=lambda last: events.append(("catch_up", last, clock())),
    )
    assert ran == 3
    assert events[0] == ("catch_up", ny(2026, 1, 13, 0, 0), ny(2026, 1, 13, 23, 58, 30))
    fires = [ny(2026, 1, 14), ny(2026, 1, 15), ny(2026, 1, 16)]
    assert [e[0] for e in events[1:]] == ["job"] * 3
    assert [e[1] for e in events[1:]] == fires
    # Each job started exactly at its instant: never early, never late.
    assert [e[2] for e in events[1:]] == fires
    assert max(clock.sleeps) <= 60  # sleeps are bounded, so clock jumps are noticed
    # The batch aggregates the day that ended before each midnight.
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert [day_for_fire(f, settings).isoformat() for f in fires] == ["2026-01-13", "2026-01-14", "2026-01-15"]


def test_failing_job_is_logged_and_the_next_run_happens(caplog: pytest.LogCaptureFixture) -> None:
    clock = FakeClock(ny(2026, 1, 13, 7, 0))
    calls: list[datetime] = []

    def job(fire: datetime) -> None:
        calls.append(fire)
        if len(calls) == 1:
            raise RuntimeError("database down")

    assert run_schedule("0 8 * * *", NY, job, name="news", clock=clock, sleep=clock.sleep, max_runs=2) == 2
    assert calls == [ny(2026, 1, 13, 8), ny(2026, 1, 14, 8)]
    assert "news: scheduled run for 2026-01-13T08:00:00-05:00 failed" in caplog.text
    assert "database down" in caplog.text


def test_stop_event_ends_the_loop_and_interrupts_the_default_sleep() -> None:
    stop = threading.Event()
    clock = FakeClock(ny(2026, 1, 13, 23, 59))

    def job(fire: datetime) -> None:
        stop.set()

    assert run_schedule("0 0 * * *", NY, job, name="t", clock=clock, sleep=clock.sleep, stop=stop) == 1

    # With the real default sleep (stop.wait) a stop from another thread ends a long wait at once.
    stop2 = threading.Event()
    result: list[int] = []
    worker = threading.Thread(target=lambda: result.append(
        run_schedule("0 0 1 1 *", NY, lambda f: None, name="t", stop=stop2)))
    worker.start()
    stop2.set()
    worker.join(timeout=5)
    assert not worker.is_alive() and result == [0]


def test_a_job_longer_than_the_interval_runs_once_more_not_once_per_missed_instant() -> None:
    clock = FakeClock(ny(2026, 1, 13, 23, 59))
    fires: list[datetime] = []

    def job(fire: datetime) -> None:
        fires.append(fire)
        if len(fires) == 1:
            clock.now += timedelta(days=2, hours=3)  # the first run takes 2 days and 3 hours

    run_schedule("0 0 * * *", NY, job, name="t", clock=clock, sleep=clock.sleep, max_runs=3)
    assert fires == [ny(2026, 1, 14), ny(2026, 1, 16), ny(2026, 1, 17)]


def test_catch_up_error_does_not_stop_the_schedule() -> None:
    clock = FakeClock(ny(2026, 1, 13, 23, 59))
    fires: list[datetime] = []

    def broken(_last: datetime) -> None:
        raise RuntimeError("mysql down")

    run_schedule("0 0 * * *", NY, fires.append, name="t", clock=clock, sleep=clock.sleep, max_runs=1, catch_up=broken)
    assert fires == [ny(2026, 1, 14)]
