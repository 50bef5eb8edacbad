"""Keep trying until it works or we are told to stop: the one retry helper, on tenacity.

    outcome = retry(connect, what="connecting the Kafka producer", retry_on=(KafkaError, OSError), stop=stop)
    if outcome is STOPPED:
        return None

- The first attempt always runs; each failure in `retry_on` is logged (one WARNING line,
  "<what> failed (attempt n[ of m]): <error>; retrying in <s>s") and followed by a wait
  of `Backoff.delay(n)`: `first` doubling up to `maximum`.
- `stop` (a threading.Event) cuts a wait short, and no attempt starts once it is set:
  the result is then `STOPPED`, never None, so an action may return None (or nothing).
- With `attempts`, the last failure is raised as it is when they are spent.
- Any other exception is raised at once.

A leaf: imports nothing of ours, so logs/ and database/ (below common/) use it too.
"""

from __future__ import annotations

import enum
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Literal, TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    retry_if_not_exception_type,
    stop_after_attempt,
    stop_never,
)
from tenacity.stop import stop_base, stop_when_event_set

T = TypeVar("T")
_log = logging.getLogger(__name__)


class Stopped(enum.Enum):
    """The outcome of a retry that the stop event ended (a one-member enum: a typed sentinel)."""

    STOPPED = "stopped"


STOPPED: Final = Stopped.STOPPED


@dataclass(frozen=True)
class Backoff:
    """Exponential waits: `first` after the first failure, doubling, never over `maximum`."""

    first: float = 0.5
    maximum: float = 30.0

    def delay(self, failures: int) -> float:
        """The wait after the `failures`-th failure in a row (1 for the first)."""
        return min(self.first * 2 ** max(failures - 1, 0), self.maximum)


class _StopSet(Exception):  # noqa: N818 - internal signal, never leaves this module
    """Raised instead of starting an attempt once the stop event is set."""


def retry(
    action: Callable[[], T],
    *,
    what: str,
    retry_on: tuple[type[BaseException], ...],
    stop: threading.Event | None = None,
    attempts: int | None = None,
    backoff: Backoff = Backoff(),  # noqa: B008 - frozen, so one shared default is safe
    log: logging.Logger | None = _log,
    sleep: Callable[[float], object] | None = None,
) -> T | Literal[Stopped.STOPPED]:
    """`action()`'s value once it succeeds; `STOPPED` if `stop` was set first; with `attempts`,
    the last failure raised when they are spent. `log=None` keeps it silent (the log shipper
    must not log into its own queue). `sleep` defaults to `stop.wait` (or time.sleep)."""
    started = 0

    def attempt() -> T:
        nonlocal started
        if started and stop is not None and stop.is_set():
            raise _StopSet
        started += 1
        return action()

    def log_failure(state: RetryCallState) -> None:
        if log is None or state.outcome is None or state.next_action is None:
            return
        exc = state.outcome.exception()
        of = f" of {attempts}" if attempts else ""
        log.warning("%s failed (attempt %d%s): %s; retrying in %.1fs", what, state.attempt_number, of,
                    exc or type(exc).__name__, state.next_action.sleep)

    ends: stop_base = stop_after_attempt(attempts) if attempts else stop_never
    if stop is not None:
        ends = ends | stop_when_event_set(stop)
    if sleep is None and stop is not None:
        sleep = stop.wait
    retrying = Retrying(
        stop=ends,
        wait=lambda state: backoff.delay(state.attempt_number),
        retry=retry_if_exception_type(retry_on) & retry_if_not_exception_type(_StopSet),
        before_sleep=log_failure,
        reraise=True,
        **({"sleep": sleep} if sleep is not None else {}),
    )
    try:
        return retrying(attempt)
    except _StopSet:
        return STOPPED
    except retry_on:
        if stop is not None and stop.is_set():
            return STOPPED
        raise
