"""When the exchange's regular session is open, from a maintained calendar.

exchange_calendars (MARKET_CALENDAR, default XNYS) knows NYSE holidays, half days
(13:00 closes) and DST; no hand-kept holiday list. Sessions are read once per
market day and cached, so `is_open` costs a dict look-up per call: the producer
and the 60-day simulation call it once per tick. "24/7" (also in
exchange_calendars) makes every minute a session, for demos and tests at night.

exchange_calendars brings pandas and numpy (~160 MB): only the producer and batch
images install it (requirements/market_hours.txt); the web app reads the
`market_open` flag stored on quotes instead.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from typing import Any

ALWAYS_OPEN = "24/7"


@contextmanager
def _quiet_pandas() -> Any:
    # exchange_calendars 4.13 reads Series.values, which pandas 3.1 deprecates for tz-aware
    # data; the values it reads are correct (UTC), so the warning is noise in every log.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        yield


class UnknownCalendar(ValueError):  # noqa: N818 - reads as what the setting is
    pass


@dataclass(frozen=True)
class Session:
    day: date
    open: datetime  # aware, UTC
    close: datetime  # aware, UTC

    @property
    def seconds(self) -> float:
        return (self.close - self.open).total_seconds()

    def fraction(self, now: datetime) -> float:
        """How far into the session `now` is, 0..1 (clamped)."""
        return min(max((now - self.open).total_seconds() / self.seconds, 0.0), 1.0)


class MarketHours:
    def __init__(self, calendar_name: str = "XNYS") -> None:
        self.name = calendar_name
        self._by_day: dict[date, Session | None] = {}
        self.calendar  # noqa: B018 - fail at start on a bad name, not at the first tick

    @cached_property
    def calendar(self) -> Any:
        import exchange_calendars as xcals

        try:
            with _quiet_pandas():
                return xcals.get_calendar(self.name)
        except xcals.errors.InvalidCalendarName as exc:
            raise UnknownCalendar(f"MARKET_CALENDAR={self.name!r} is not an exchange_calendars name "
                                  f"(e.g. XNYS, XNAS, {ALWAYS_OPEN})") from exc

    @property
    def always_open(self) -> bool:
        return self.name == ALWAYS_OPEN

    def session_on(self, day: date) -> Session | None:
        """The session of market day `day` (exchange-local date), None on a holiday or weekend."""
        if day not in self._by_day:
            self._by_day[day] = self._read(day)
        return self._by_day[day]

    def _read(self, day: date) -> Session | None:
        import pandas as pd

        cal = self.calendar
        label = pd.Timestamp(day)
        with _quiet_pandas():
            if label < cal.first_session or label > cal.last_session or not cal.is_session(label):
                return None
            return Session(day, cal.session_open(label).to_pydatetime().astimezone(UTC),
                           cal.session_close(label).to_pydatetime().astimezone(UTC))

    def local_day(self, now: datetime) -> date:
        return now.astimezone(self.calendar.tz).date()

    def session_at(self, now: datetime) -> Session | None:
        """The session `now` falls in, or None when the market is closed."""
        if self.always_open:
            day = now.astimezone(UTC).date()
            start = datetime(day.year, day.month, day.day, tzinfo=UTC)
            return Session(day, start, start + timedelta(days=1))
        session = self.session_on(self.local_day(now))
        return session if session is not None and session.open <= now < session.close else None

    def is_open(self, now: datetime) -> bool:
        return self.session_at(now) is not None

    def sessions_before(self, day: date, count: int) -> list[date]:
        """The `count` market days before `day`, oldest first."""
        days: list[date] = []
        d = day - timedelta(days=1)
        guard = count * 2 + 30  # weekends and holidays; stops on a calendar's first session
        while len(days) < count and guard > 0:
            if self.always_open or self.session_on(d) is not None:
                days.append(d)
            else:
                guard -= 1
            d -= timedelta(days=1)
        days.reverse()
        return days
