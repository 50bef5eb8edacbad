"""The batch container's process: backfill once, catch up, then the daily job on BATCH_CRON.

    python batch/scheduler.py

1. At start, if daily_aggregates is empty, the backfill (batch/backfill.py) gives
   every symbol BACKFILL_DAYS of history.
2. Catch-up: the most recent scheduled instant at or before now aggregates the day
   before it; if that day (and any before it since the newest stored day, at most
   RETENTION_DAYS back) has no rows, the container was down at midnight and those
   days are aggregated now.
3. Then the daily job runs at every BATCH_CRON instant in MARKET_TIMEZONE,
   aggregating the calendar day that ended before the instant's date.
4. Meanwhile, from the end of the start-up check on, a backfill watcher (a thread) reads the
   symbol registry every REREAD_SECONDS (15 s) and backfills the registered symbols it has not
   handled yet (a ticker a user just added gets BACKFILL_DAYS of daily history within about
   15 s plus the backfill's own time), then records `backfilled_at` in the registry so a restart
   does not redo it. Where the chain has no real daily source (only the simulator, or Yahoo
   refusing), the history is simulated and labelled source "simulated", as for the defaults.
   With BACKFILL_DAYS=0 there is no watcher.
With BATCH_SCHEDULE_ENABLED=false (Airflow drives the jobs) it does none of this
and only waits to be stopped; Airflow's `new_symbol_backfill` DAG then runs the watcher's pass
(`python batch/backfill.py --new-only`) every minute.
Every run opens its own connections, so a database that was down for one run does not affect
the next. SIGTERM/SIGINT stop the process between runs (a
running job finishes first); the exit status is then 0.
"""

from __future__ import annotations

import sys
import threading
from datetime import date, datetime, timedelta

import pymysql
from pymongo.database import Database

from batch.backfill import backfill_new_symbols, run_backfill
from batch.daily_aggregation import days_in_range, run
from batch.stores import describe_failure, open_stores
from common.clock import utc_now
from common.retry import Backoff, retry
from common.schedule import run_schedule
from common.service import idle_until_stopped
from config import Settings
from database.mongo.symbols import REREAD_SECONDS, mark_backfilled
from database.mysql import aggregates
from logs.logger_config import get_logger

log = get_logger("batch.scheduler")

STARTUP_ATTEMPTS = 6
STARTUP_BACKOFF = Backoff(5.0, 60.0)


def day_for_fire(fire: datetime, settings: Settings) -> date:
    """The market day a scheduled run aggregates: the day before the instant's date."""
    return fire.astimezone(settings.tz).date() - timedelta(days=1)


def missed_days(conn: pymysql.Connection, target: date, retention_days: int) -> list[date]:
    """Days up to `target` after the newest stored day (at most `retention_days` back:
    older quotes are gone anyway). Empty when `target` is stored already."""
    oldest = target - timedelta(days=retention_days - 1)
    latest = aggregates.latest_date(conn, on_or_before=target)
    start = oldest if latest is None else max(oldest, latest + timedelta(days=1))
    return days_in_range(start, target) if start <= target else []


class BatchService:
    def __init__(self, settings: Settings, stop: threading.Event) -> None:
        self.settings = settings
        self.stop = stop
        # Set once the start-up check is over, so the watcher never races the first backfill.
        self.started = threading.Event()

    def _with_stores(self, what: str, action):  # type: ignore[no-untyped-def]
        try:
            with open_stores(self.settings) as (db, conn):
                return action(db, conn)
        except Exception as exc:
            message = describe_failure(exc, self.settings)
            if message is None:
                raise
            raise RuntimeError(f"{what} failed: {message}") from None

    def job(self, fire: datetime) -> None:
        day = day_for_fire(fire, self.settings)
        self._with_stores(f"daily run for {day}", lambda db, conn: run(self.settings, [day], db=db, conn=conn))

    def _startup(self, db: Database, conn: pymysql.Connection, last_fire: datetime) -> None:
        if aggregates.count_daily(conn) == 0:
            log.info("daily_aggregates is empty: backfilling history first")
            summary = run_backfill(self.settings, db=db, conn=conn,
                                   sleep=lambda s: self.stop.wait(s))  # type: ignore[arg-type,return-value]
            mark_backfilled(db, summary.symbols, utc_now())
        target = day_for_fire(last_fire, self.settings)
        days = missed_days(conn, target, self.settings.retention_days)
        if days:
            log.info("catching up %d missed day(s): %s .. %s", len(days), days[0], days[-1])
            run(self.settings, days, db=db, conn=conn)
        else:
            log.info("no missed run: %s is aggregated already", target)

    def catch_up(self, last_fire: datetime) -> None:
        """Backfill on empty tables and aggregate missed days; retried while the
        databases come up (compose may start us first); the last failure is raised."""
        try:
            retry(lambda: self._with_stores("start-up", lambda db, conn: self._startup(db, conn, last_fire)),
                  what="batch start-up", retry_on=(RuntimeError,), stop=self.stop, attempts=STARTUP_ATTEMPTS,
                  backoff=STARTUP_BACKOFF, log=log)
        finally:
            self.started.set()

    def backfill_new(self, db: Database, conn: pymysql.Connection) -> list[str]:
        """One pass of the watcher (the same pass as `python batch/backfill.py --new-only`)."""
        return backfill_new_symbols(self.settings, db=db, conn=conn,
                                    sleep=lambda s: self.stop.wait(s))  # type: ignore[arg-type,return-value]

    def watch_registry(self, period: float = REREAD_SECONDS) -> None:
        """The watcher thread: a pass right after the start-up check, then every `period` s.
        A pass that fails (a store down) is logged and the next one tries again."""
        while not self.started.wait(1.0):
            if self.stop.is_set():
                return
        log.info("backfill watcher: reading the symbol registry every %.0f s", period)
        first = True
        while not self.stop.is_set():
            try:
                done = self._with_stores("backfill watcher", self.backfill_new)
                if first and not done:
                    log.info("backfill watcher: every registered symbol is backfilled already")
                first = False
            except Exception:
                log.exception("backfill watcher: pass failed; trying again in %.0f s", period)
            self.stop.wait(period)


def run_scheduler(settings: Settings, stop: threading.Event) -> int:
    if not settings.batch_schedule_enabled:
        # Airflow drives the batch (compose profile `airflow`).
        idle_until_stopped(stop, "BATCH_SCHEDULE_ENABLED=false: no schedule, no start-up backfill; "
                                 "idle until stopped", log)
    else:
        service = BatchService(settings, stop)
        if settings.backfill_days:
            threading.Thread(target=service.watch_registry, name="backfill-watcher", daemon=True).start()
        else:
            log.info("BACKFILL_DAYS=0: no backfill, no watcher for new symbols")
        run_schedule(settings.batch_cron, settings.tz, service.job, name="batch", stop=stop,
                     catch_up=service.catch_up)
    log.info("batch scheduler stopped")
    return 0


def main() -> int:
    from common.service import run_service

    return run_service("batch", run_scheduler)


if __name__ == "__main__":
    sys.exit(main())
