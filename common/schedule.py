"""Cron schedules for the long-running job containers (batch at 00:00, news at 08:00).

One mechanism for both, built on croniter and evaluated in the configured time
zone (so "0 0 * * *" means local midnight on both sides of a DST change). Time
is injected: `clock` returns the current aware datetime and `sleep(seconds)`
waits, so tests drive the schedule with a controlled clock instead of sleeping.

    run_schedule(settings.batch_cron, settings.tz, job, name="batch", stop=stop_event,
                 catch_up=catch_up_missed)

- `job(fire)` receives the scheduled instant (aware, in `tz`), not "now": a job
  that starts a few seconds late still knows which run it is.
- A job that raises is logged with its traceback; the schedule goes on and the
  next run is unaffected. A job that raises `JobFailedError` (an expected outside
  failure it has explained) is logged as one line, without a traceback.
- `catch_up(last_fire)` runs once at start with the most recent scheduled
  instant at or before now; the service decides whether that run was missed
  (e.g. the batch checks MySQL for the day, the news job its digest log) and
  does it. Errors are logged like a job's.
- `stop` (threading.Event) ends the loop promptly: the default sleep waits on it,
  so SIGTERM -> stop.set() interrupts a sleep at once; a running job finishes first.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from common.clock import utc_now
from logs.logger_config import get_logger

log = get_logger(__name__)

Clock = Callable[[], datetime]
Sleep = Callable[[float], None]
Job = Callable[[datetime], None]

# Never sleep longer than this in one go: a suspended VM or a changed system
# clock is noticed within a minute instead of at the (possibly wrong) fire time.
MAX_SLEEP_SECONDS = 60.0


def _local(moment: datetime, tz: ZoneInfo) -> datetime:
    if moment.tzinfo is None:
        raise ValueError("schedule times must be timezone-aware")
    return moment.astimezone(tz)


def next_fire(cron: str, tz: ZoneInfo, after: datetime) -> datetime:
    """The first scheduled instant strictly after `after`, aware in `tz`."""
    return croniter(cron, _local(after, tz)).get_next(datetime)


def previous_fire(cron: str, tz: ZoneInfo, at_or_before: datetime) -> datetime:
    """The latest scheduled instant at or before `at_or_before`, aware in `tz`."""
    moment = _local(at_or_before, tz)
    # croniter's get_prev is strictly before: nudge forward so an exact hit counts.
    return croniter(cron, moment + timedelta(microseconds=1)).get_prev(datetime)


def fires_between(cron: str, tz: ZoneInfo, after: datetime, until: datetime, limit: int = 1000) -> list[datetime]:
    """Scheduled instants in (after, until], oldest first, at most `limit` (the newest ones)."""
    fires: list[datetime] = []
    it = croniter(cron, _local(after, tz))
    while True:
        fire = it.get_next(datetime)
        if fire > until:
            break
        fires.append(fire)
        if len(fires) > limit:
            fires.pop(0)
    return fires


class JobFailedError(Exception):
    """A run that failed for a reason the job has already understood (every news feed
    unreachable, a mail server refusing): logged as one line, without a traceback,
    which stays for what nobody expected."""


def _safe(what: str, name: str, func: Callable[[datetime], None], fire: datetime) -> bool:
    try:
        func(fire)
        return True
    except JobFailedError as exc:
        log.error("%s: %s for %s failed: %s; the schedule continues", name, what, fire.isoformat(), exc)
        return False
    except Exception:
        log.exception("%s: %s for %s failed; the schedule continues", name, what, fire.isoformat())
        return False


def run_schedule(
    cron: str,
    tz: ZoneInfo,
    job: Job,
    *,
    name: str,
    clock: Clock = utc_now,
    sleep: Sleep | None = None,
    stop: threading.Event | None = None,
    catch_up: Job | None = None,
    max_runs: int | None = None,
) -> int:
    """Run `job` at every instant of `cron` in `tz` until `stop` is set (or
    `max_runs` jobs ran); returns the number of scheduled runs made."""
    stop = stop or threading.Event()
    wait: Sleep = sleep if sleep is not None else (lambda seconds: stop.wait(seconds))  # type: ignore[func-returns-value]
    if not croniter.is_valid(cron):
        raise ValueError(f"not a cron expression: {cron!r}")

    if catch_up is not None and not stop.is_set():
        last = previous_fire(cron, tz, clock())
        log.info("%s: start-up check of the last scheduled run (%s)", name, last.isoformat())
        _safe("catch-up", name, catch_up, last)

    runs = 0
    fire = next_fire(cron, tz, clock())
    log.info("%s: schedule %r in %s, next run at %s", name, cron, tz.key, fire.isoformat())
    while not stop.is_set() and (max_runs is None or runs < max_runs):
        remaining = (fire - clock()).total_seconds()
        if remaining > 0:
            wait(min(remaining, MAX_SLEEP_SECONDS))
            continue
        log.info("%s: scheduled run for %s starting", name, fire.isoformat())
        ok = _safe("scheduled run", name, job, fire)
        runs += 1
        log.info("%s: scheduled run for %s %s", name, fire.isoformat(), "finished" if ok else "failed")
        now = clock()
        following = next_fire(cron, tz, fire)
        if following <= now:
            # The job outlasted one or more instants: run once more now rather than
            # once per missed instant (the jobs are idempotent per period).
            skipped = fires_between(cron, tz, fire, now)
            log.warning("%s: run took until %s; %d scheduled instant(s) passed meanwhile, running the latest",
                        name, now.isoformat(), len(skipped))
            following = skipped[-1]
        fire = following
        if not stop.is_set():
            log.info("%s: next run at %s", name, fire.isoformat())
    return runs
