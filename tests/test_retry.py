"""common/retry.py: the one retry helper (pure: no servers; waits are recorded, not slept)."""

from __future__ import annotations

import logging
import threading
import time

import pytest

from common.retry import STOPPED, Backoff, retry


class Flaky:
    """Fails `failures` times with OSError, then returns `value`."""

    def __init__(self, failures: int, value: object = "ok") -> None:
        self.failures = failures
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        if self.calls <= self.failures:
            raise OSError(f"down #{self.calls}")
        return self.value


def test_returns_the_value_after_failures_waiting_the_capped_backoff() -> None:
    waits: list[float] = []
    action = Flaky(6)
    result = retry(action, what="x", retry_on=(OSError,), backoff=Backoff(1.0, 10.0), sleep=waits.append, log=None)
    assert result == "ok" and action.calls == 7
    assert waits == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_delay_doubles_and_is_capped() -> None:
    backoff = Backoff(0.5, 15.0)
    assert [backoff.delay(n) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 15.0]


def test_a_none_result_is_not_stopped() -> None:
    stop = threading.Event()
    result = retry(Flaky(1, value=None), what="x", retry_on=(OSError,), stop=stop, sleep=lambda s: None, log=None)
    assert result is None and result is not STOPPED


def test_stopped_is_told_apart_from_none() -> None:
    stop = threading.Event()

    def fail_then_stop() -> None:
        stop.set()
        raise OSError("down")

    assert retry(fail_then_stop, what="x", retry_on=(OSError,), stop=stop, log=None) is STOPPED


def test_a_set_stop_cuts_the_wait_short_and_starts_no_further_attempt() -> None:
    stop = threading.Event()
    action = Flaky(10**6)
    timer = threading.Timer(0.2, stop.set)
    timer.start()
    began = time.monotonic()
    try:
        result = retry(action, what="x", retry_on=(OSError,), stop=stop, backoff=Backoff(60.0, 60.0), log=None)
    finally:
        timer.cancel()
    assert result is STOPPED
    assert time.monotonic() - began < 10, "the 60 s wait was not cut short by the stop event"
    assert action.calls == 1


def test_attempts_spent_raise_the_last_failure() -> None:
    waits: list[float] = []
    action = Flaky(5)
    with pytest.raises(OSError, match="down #3"):
        retry(action, what="x", retry_on=(OSError,), attempts=3, sleep=waits.append, log=None)
    assert action.calls == 3 and len(waits) == 2


def test_other_exceptions_are_raised_at_once() -> None:
    calls = []

    def broken() -> None:
        calls.append(1)
        raise ValueError("bug")

    with pytest.raises(ValueError, match="bug"):
        retry(broken, what="x", retry_on=(OSError,), sleep=lambda s: None)
    assert calls == [1]


def test_each_failure_is_logged_once_with_attempt_and_wait(caplog: pytest.LogCaptureFixture) -> None:
    log = logging.getLogger("test.retry")
    with caplog.at_level(logging.WARNING, logger="test.retry"):
        retry(Flaky(2), what="connecting the thing", retry_on=(OSError,), attempts=5,
              backoff=Backoff(0.5, 30.0), sleep=lambda s: None, log=log)
    lines = [r.getMessage() for r in caplog.records if r.name == "test.retry"]
    assert lines == [
        "connecting the thing failed (attempt 1 of 5): down #1; retrying in 0.5s",
        "connecting the thing failed (attempt 2 of 5): down #2; retrying in 1.0s",
    ]


def test_log_none_is_silent(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG):
        retry(Flaky(2), what="x", retry_on=(OSError,), sleep=lambda s: None, log=None)
    assert not [r for r in caplog.records if "failed (attempt" in r.getMessage()]


def test_retrying_on_every_exception_still_stops() -> None:
    stop = threading.Event()
    calls = []

    def fail() -> None:
        calls.append(1)
        raise RuntimeError("down")

    threading.Timer(0.1, stop.set).start()
    assert retry(fail, what="x", retry_on=(Exception,), stop=stop, backoff=Backoff(60.0, 60.0), log=None) is STOPPED
    assert calls == [1]
