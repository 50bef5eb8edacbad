"""A controlled clock for the schedule tests: no test waits for midnight or 08:00."""

from __future__ import annotations

from datetime import datetime, timedelta


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
