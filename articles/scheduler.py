"""The news container's process: the daily news job on NEWS_CRON in MARKET_TIMEZONE.

    python articles/scheduler.py

Uses the one schedule mechanism of the system (common/schedule.py, shared with the
batch container). Each run is articles/daily_news.py's `run` for the scheduled
instant, with its own MongoDB connection, so a database that was down for one
run does not affect the next; a run that fails is logged and the schedule goes on.

At start, if today's scheduled run is already past and nothing has been fetched
since it (the container was down at 08:00), it runs once now: the digest log
makes sure nobody who already had today's digest gets a second one.
SIGTERM/SIGINT stop the process between runs (a running job finishes first).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from datetime import datetime

from articles import daily_news
from common.clock import utc_now
from common.schedule import JobFailedError, run_schedule
from common.service import idle_until_stopped
from config import Settings
from database.mongo import get_db, make_client
from database.mongo import news as news_db
from logs.logger_config import get_logger

log = get_logger("articles.scheduler")


class NewsService:
    def __init__(self, settings: Settings, clock: Callable[[], datetime] = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    def job(self, fire: datetime) -> None:
        client = make_client(self.settings)
        try:
            report = daily_news.run(self.settings, get_db(client, self.settings), now=fire)
        finally:
            client.close()
        if not report.ok:
            # The schedule logs the run as failed in one line; the next run is unaffected.
            raise JobFailedError(f"news run for {report.day} incomplete: {report.problems()}")

    def catch_up(self, last_fire: datetime) -> None:
        tz = self.settings.tz
        if last_fire.astimezone(tz).date() != self.clock().astimezone(tz).date():
            log.info("today's run (%s) is still ahead; nothing to catch up", self.settings.news_cron)
            return
        client = make_client(self.settings)
        try:
            fetched = news_db.latest_fetch(get_db(client, self.settings))
        finally:
            client.close()
        if fetched is not None and fetched >= last_fire:
            log.info("today's run at %s already happened (news fetched %s)", last_fire.isoformat(), fetched.isoformat())
            return
        log.info("today's run at %s was missed (container down?): running it now", last_fire.isoformat())
        self.job(last_fire)


def serve(settings: Settings, stop: threading.Event, **schedule_options: object) -> int:
    service = NewsService(settings, clock=schedule_options.get("clock", utc_now))  # type: ignore[arg-type]
    return run_schedule(settings.news_cron, settings.tz, service.job, name="news", stop=stop,
                        catch_up=service.catch_up, **schedule_options)  # type: ignore[arg-type]


def run_scheduler(settings: Settings, stop: threading.Event) -> int:
    if not settings.news_schedule_enabled:
        # Airflow drives the news job (compose profile `airflow`).
        idle_until_stopped(stop, "NEWS_SCHEDULE_ENABLED=false: no schedule, no catch-up; idle until stopped", log)
    else:
        serve(settings, stop)
    log.info("news scheduler stopped")
    return 0


def main() -> int:
    from common.service import run_service

    return run_service("news", run_scheduler)


if __name__ == "__main__":
    sys.exit(main())
