"""Run the system's entry points exactly as the containers do: `python <role script>`
from the repository root with PYTHONPATH set to it."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
from pathlib import Path

from scripts.servers import LOG_DIR, ROOT

# One log file per process started. Not id(self): CPython reuses the id of a collected
# object, and two runs appending to one file made a later test read an earlier
# producer's deliveries as its own.
_SEQUENCE = itertools.count(1)


def service_env(env: dict[str, str]) -> dict[str, str]:
    full = dict(os.environ)
    full.update(env)
    full["PYTHONPATH"] = str(ROOT)
    full["PYTHONUNBUFFERED"] = "1"
    return full


class ServiceProcess:
    """One role (e.g. streaming/consumer.py) as a child process with its output in a file."""

    def __init__(self, script: str, env: dict[str, str], args: list[str] | None = None,
                 name: str | None = None) -> None:
        self.script = script
        self.env = env
        self.args = args or []
        self.name = name or Path(script).stem
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"{self.name}-{os.getpid()}-{next(_SEQUENCE)}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> ServiceProcess:
        log = open(self.log_path, "wb")  # noqa: SIM115 - kept open for the child's lifetime
        self.proc = subprocess.Popen(
            [sys.executable, self.script, *self.args], cwd=ROOT, env=service_env(self.env),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
        return self

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace") if self.log_path.exists() else ""

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait (the clean shutdown path); SIGKILL if it does not exit."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


def run_script(script: str, env: dict[str, str], args: list[str] | None = None,
               timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run a one-shot entry point to completion (e.g. batch/daily_aggregation.py)."""
    return subprocess.run(
        [sys.executable, script, *(args or [])], cwd=ROOT, env=service_env(env),
        capture_output=True, text=True, timeout=timeout,
    )
