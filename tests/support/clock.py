"""Controlled time for the tests.

- `FakeClock`: for the schedule tests, no test waits for midnight or 08:00.
- `pinned_instant`: the instants a whole test (and every process and container it
  starts) can be pinned to through CLOCK_OFFSET_SECONDS (common/clock.py): the test
  command accepts `TEST_NOW=<name or ISO instant>`, and the Docker check pins its
  containers to `saturday-after-news` on every run.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

NY = ZoneInfo("America/New_York")


class FakeClock:
    """Calling it returns the controlled time; sleep(s) advances it (and records the sleeps)."""

    def __init__(self, start: datetime) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> datetime:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds > 0
        self.sleeps.append(seconds)
        self.now += timedelta(seconds=seconds)


def _next_weekday(start: date, weekdays: set[int]) -> date:
    day = start
    while day.weekday() not in weekdays:
        day += timedelta(days=1)
    return day


# The hours at which the suite once gave another answer. Each is taken in the coming
# days of New York (the market's and the schedules' zone), so the data the tests make
# "today" is as recent as it would be at that hour.
PINNED = {
    # Just after the news run (08:00 New York) on a weekday: the news catch-up runs at start.
    "after-news": lambda today: datetime.combine(_next_weekday(today, {0, 1, 2, 3, 4}), time(8, 0, 30), NY),
    # A Saturday just after 08:00: market closed all day, news catch-up due.
    "saturday-after-news": lambda today: datetime.combine(_next_weekday(today, {5}), time(8, 0, 30), NY),
    # Thirty seconds before midnight on a Friday: "today" changes, and the week with it, mid-test.
    "before-midnight": lambda today: datetime.combine(_next_weekday(today, {4}), time(23, 59, 30), NY),
}


def pinned_instant(spec: str, real_now: datetime | None = None) -> datetime:
    """A name of PINNED or an ISO 8601 instant with its zone -> the aware instant."""
    real_now = real_now or datetime.now(UTC)
    spec = spec.strip()
    if spec in PINNED:
        return PINNED[spec](real_now.astimezone(NY).date())
    try:
        instant = datetime.fromisoformat(spec)
    except ValueError:
        raise ValueError(f"TEST_NOW={spec!r}: a name of {sorted(PINNED)} or an ISO instant such as "
                         "2026-12-05T08:00:30-05:00") from None
    if instant.tzinfo is None:
        raise ValueError(f"TEST_NOW={spec!r} needs its zone (e.g. -05:00 or Z)")
    return instant
