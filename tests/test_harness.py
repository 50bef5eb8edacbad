"""The test command and its runner: an unreachable MariaDB is named, with the fix, not an obscure
failure; each process the runner starts writes its own log."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from scripts.processes import ServiceProcess
from scripts.waiting import free_port

ROOT = Path(__file__).resolve().parents[1]


def test_unreachable_mariadb_stops_the_run_with_the_fix() -> None:
    port = free_port()  # nothing listens there
    env = dict(os.environ, TEST_MYSQL_HOST="127.0.0.1", TEST_MYSQL_PORT=str(port), PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_mysql_schema.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out
    assert f"MariaDB/MySQL is not reachable at 127.0.0.1:{port}" in out
    assert "start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd" in out
    assert "TEST_MYSQL_HOST" in out


def test_every_started_process_has_a_log_of_its_own() -> None:
    # The fault tests read a producer's deliveries from its log; a name reused by a later
    # process (object ids are reused once collected) mixed two runs' deliveries into one.
    paths = [ServiceProcess("streaming/producer.py", {}, name="producer").log_path for _ in range(200)]
    assert len(set(paths)) == len(paths)
