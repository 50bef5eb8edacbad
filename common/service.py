"""The start of every long-running role: settings, logging, and a stop event set by SIGTERM/SIGINT.

    def run(settings: Settings, stop: threading.Event) -> int: ...
    if __name__ == "__main__":
        sys.exit(run_service("producer", run))
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable

from config.settings import Settings, get_settings


def run_service(service: str, run: Callable[[Settings, threading.Event], int]) -> int:
    """Read settings (a bad value exits 2 with one line), set up logging as `service`,
    and run until SIGTERM (docker stop) or SIGINT (Ctrl-C) sets the stop event."""
    from logs.logger_config import get_logger, setup_logging

    settings = get_settings()
    setup_logging(service, settings)
    log = get_logger(__name__)
    stop = threading.Event()

    def _stop(signum: int, _frame: object) -> None:
        log.info("signal %d: stopping", signum)
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    return run(settings, stop)


def idle_until_stopped(stop: threading.Event, log_message: str, log: object) -> int:
    """Stay up doing nothing (a schedule switched off because Airflow drives the job),
    so `docker exec <role> ...` still works; return 0 when stopped."""
    log.info(log_message)  # type: ignore[attr-defined]
    while not stop.wait(60):
        pass
    return 0
