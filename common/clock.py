"""The services' wall clock: `utc_now()`, the one "now" every role reads.

CLOCK_OFFSET_SECONDS (testing only; unset in a real deployment) shifts it by a
fixed amount, the same in every process that inherits the variable, so the whole
system (processes and containers alike) believes it is a chosen instant while time
still runs at its real pace. The tests use it to run at the hours that matter
(just after the 08:00 news run, a Saturday, a minute before midnight) whatever the
hour of the machine: `TEST_NOW=2026-12-05T08:00:30-05:00 scripts/test.sh`.

Read from the environment on every call, not from Settings: the clock is needed
below the settings (schedules, parsing), and a test pins it per test.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta

OFFSET_VARIABLE = "CLOCK_OFFSET_SECONDS"


def clock_offset() -> timedelta:
    raw = os.environ.get(OFFSET_VARIABLE, "").strip()
    if not raw:
        return timedelta(0)
    try:
        seconds = float(raw)
    except ValueError:
        raise ValueError(f"{OFFSET_VARIABLE}={raw!r} is not a number of seconds") from None
    if not math.isfinite(seconds) or abs(seconds) > 100 * 365 * 86400:
        raise ValueError(f"{OFFSET_VARIABLE}={raw!r} is out of range (at most a hundred years either way)")
    return timedelta(seconds=seconds)


def utc_now() -> datetime:
    """Now, aware, in UTC (shifted by CLOCK_OFFSET_SECONDS when it is set)."""
    return datetime.now(UTC) + clock_offset()


def offset_to(instant: datetime, real_now: datetime | None = None) -> float:
    """The CLOCK_OFFSET_SECONDS value that makes `utc_now()` read `instant` at `real_now`."""
    if instant.tzinfo is None:
        raise ValueError("the instant must carry its time zone (e.g. 2026-12-05T08:00:30-05:00)")
    return (instant - (real_now or datetime.now(UTC))).total_seconds()
