"""articles/scheduler.py: the news job on NEWS_CRON through common/schedule.py (the one
schedule mechanism), with a controlled clock in-process and as the container runs it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from pymongo.database import Database

import tests.test_news_pipeline as pipeline
from articles.scheduler import serve
from common.clock import utc_now
from scripts.processes import ServiceProcess
from scripts.smtp_inbox import Inbox
from scripts.waiting import free_port, wait_for
from tests.conftest import Stack
from tests.support.clock import FakeClock
from tests.support.http_fixture import RecordedApi
from tests.test_news_pipeline import _bodies, _shift_to_today, _users, feed

# The pipeline tests' fixtures (MongoDB + SMTP + recorded feeds), shared rather than copied.
news = pipeline.news
db = pipeline.db

NY = ZoneInfo("America/New_York")


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY)  # type: ignore[misc]


def _serve_feeds(api: RecordedApi) -> None:
    pipeline.serve(api, yahoo={"AAPL": feed("yahoo_aapl.xml"), "MSFT": feed("yahoo_msft.xml")},
          google={"AAPL": feed("google_aapl.xml"), "MSFT": feed("yahoo_empty.xml")})


def test_job_runs_at_the_cron_instant_in_the_market_zone(news: Stack, db: Database, recorded_api: RecordedApi,
                                                         inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    _serve_feeds(recorded_api)
    _users(db, {"email": "ana@example.com", "watchlist": ["AAPL"]})
    clock = FakeClock(ny(2026, 1, 13, 7, 59, 30))
    caplog.set_level(logging.INFO)

    runs = serve(news.settings(news_cron="0 8 * * *"), threading.Event(), clock=clock, sleep=clock.sleep, max_runs=1)

    assert runs == 1
    assert recorded_api.calls()  # nothing was fetched before 08:00 ...
    assert sum(clock.sleeps) == pytest.approx(30)  # ... it waited for 08:00 New York time
    [mail] = inbox.to("ana@example.com")
    assert "Apple services record lifts shares" in _bodies(mail.message)[1]
    messages = [r.getMessage() for r in caplog.records]
    assert "today's run (0 8 * * *) is still ahead; nothing to catch up" in messages
    assert "news: scheduled run for 2026-01-13T08:00:00-05:00 finished" in messages


def test_missed_run_is_caught_up_at_start_without_mailing_twice(news: Stack, db: Database, recorded_api: RecordedApi,
                                                                inbox: Inbox) -> None:
    _serve_feeds(recorded_api)
    _users(db, {"email": "ana@example.com", "watchlist": ["AAPL"]})
    settings = news.settings(news_cron="0 8 * * *")
    # Started at 09:00: today's 08:00 run never happened.
    assert serve(settings, threading.Event(), clock=FakeClock(ny(2026, 1, 13, 9)), max_runs=0) == 0
    assert len(inbox.to("ana@example.com")) == 1
    assert db.digest_log.find_one({"email": "ana@example.com"})["date"] == "2026-01-13"
    # Restarted again the same morning: whatever it decides, Ana is not mailed twice.
    serve(settings, threading.Event(), clock=FakeClock(ny(2026, 1, 13, 9, 30)), max_runs=0)
    assert len(inbox.to("ana@example.com")) == 1


def test_every_source_unreachable_is_one_error_line_naming_them_without_a_traceback(
        news: Stack, db: Database, inbox: Inbox, caplog: pytest.LogCaptureFixture) -> None:
    # Nothing listens on these ports: a real refused connection, as when the feeds cannot be reached.
    dead = f"http://127.0.0.1:{free_port()}"
    settings = news.settings(news_cron="0 8 * * *", yahoo_rss_url=dead + "/rss?s={symbol}",
                             google_news_rss_url=dead + "/search?q={query}", alpha_vantage_api_key="")
    _users(db, {"email": "ana@example.com", "watchlist": ["AAPL"]})
    caplog.set_level(logging.INFO)

    # Started at 08:01 New York: the catch-up of today's run is the first thing it does.
    serve(settings, threading.Event(), clock=FakeClock(ny(2026, 1, 13, 8, 1)), max_runs=0)

    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    line = errors[0].getMessage()
    assert "catch-up for 2026-01-13T08:00:00-05:00 failed" in line
    assert "no news source could be read" in line
    assert "Yahoo Finance (AAPL, MSFT" in line and "Google News (AAPL, MSFT" in line
    assert "Connection refused" in line and "\n" not in line
    assert all(r.exc_info is None for r in caplog.records), "a traceback was logged"
    assert "Traceback" not in caplog.text
    # The digest still went out, from the news already stored (none here).
    assert len(inbox.to("ana@example.com")) == 1


@pytest.fixture
def scheduler_process(news: Stack) -> Iterator[ServiceProcess]:
    proc = ServiceProcess("articles/scheduler.py", news.with_env(NEWS_CRON="* * * * *"), name="news-scheduler")
    yield proc
    proc.kill()


@pytest.mark.clock
def test_container_process_runs_the_job_and_stops_on_sigterm(news: Stack, db: Database, recorded_api: RecordedApi,
                                                             inbox: Inbox, scheduler_process: ServiceProcess) -> None:
    today = utc_now()
    pipeline.serve(recorded_api,
                   yahoo={"AAPL": _shift_to_today("yahoo_aapl.xml", today), "MSFT": feed("yahoo_empty.xml")},
          google={"AAPL": feed("yahoo_empty.xml"), "MSFT": feed("yahoo_empty.xml")})
    _users(db, {"email": "ana@example.com", "watchlist": ["AAPL"]})

    scheduler_process.start()
    # Every minute: the current minute's run is "missed" at start and runs at once.
    wait_for(lambda: inbox.to("ana@example.com"), timeout=60, what="the digest from the scheduled job")
    wait_for(lambda: "news: schedule '* * * * *' in America/New_York, next run at" in scheduler_process.output(),
             timeout=30, what="the schedule log line")
    assert scheduler_process.stop() == 0
    assert "news scheduler stopped" in scheduler_process.output()
    assert len(inbox.to("ana@example.com")) == 1
