"""The Airflow DAGs (airflow/dags) load in Airflow itself and run the services' own jobs.

Airflow is installed into its own virtual environment (.venv-airflow, by
scripts/airflow-venv.sh; skipped when it already holds the pinned version), so its
pins never meet the services'. The DAG folder is then loaded by that venv's python
exactly as Airflow's DAG processor does (tests/support/airflow_probe.py), with the
services' interpreter (this .venv) as STOCK_APP_PYTHON.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from scripts.processes import ServiceProcess
from scripts.waiting import wait_for

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_PYTHON = ROOT / ".venv-airflow" / "bin" / "python"
DAGS = ROOT / "airflow" / "dags"

CUSTOM = {
    "BATCH_CRON": "30 1 * * *",
    "NEWS_CRON": "15 7 * * 1-5",
    "MAINTENANCE_CRON": "0 4 * * 6",
    "MARKET_TIMEZONE": "Europe/Madrid",
}


@pytest.fixture(scope="session")
def airflow_python() -> Path:
    started = time.monotonic()
    proc = subprocess.run(["bash", str(ROOT / "scripts" / "airflow-venv.sh")], cwd=ROOT,
                          env={**os.environ, "PYTHON": sys.executable}, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, f"installing Airflow failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    print(f"\nAirflow venv ready in {time.monotonic() - started:.1f}s {proc.stderr.strip()[-200:]}")
    return AIRFLOW_PYTHON


def probe(airflow_python: Path, tmp_path: Path, env: dict[str, str], *args: str) -> dict[str, Any]:
    full = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "PYTHONPATH"))}
    full.update({
        "AIRFLOW_HOME": str(tmp_path / "airflow-home"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "false",
        "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS),
        "STOCK_APP_ROOT": str(ROOT),
        "STOCK_APP_PYTHON": sys.executable,
        "LOG_TO_ELASTICSEARCH": "false",
        **env,
    })
    proc = subprocess.run([str(airflow_python), str(ROOT / "tests" / "support" / "airflow_probe.py"), str(DAGS), *args],
                          cwd=tmp_path, env=full, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_dags_load_with_schedules_from_the_settings(airflow_python: Path, tmp_path: Path) -> None:
    out = probe(airflow_python, tmp_path, CUSTOM, "2026-01-14T00:30:00+00:00")

    assert out["import_errors"] == {}
    dags = out["dags"]
    assert set(dags) == {"daily_batch", "news_pipeline", "maintenance", "new_symbol_backfill"}
    expected = {
        "daily_batch": ("daily_batch_dag.py", CUSTOM["BATCH_CRON"],
                        {"market_day": [], "daily_aggregation": ["market_day"]}),
        "news_pipeline": ("news_pipeline_dag.py", CUSTOM["NEWS_CRON"], {"daily_news": []}),
        "maintenance": ("maintenance_dag.py", CUSTOM["MAINTENANCE_CRON"],
                        {"ensure_mongo_indexes": [], "backfill_history": ["ensure_mongo_indexes"]}),
        # The batch container's backfill watcher, which BATCH_SCHEDULE_ENABLED=false switches off.
        "new_symbol_backfill": ("new_symbols_dag.py", "* * * * *", {"backfill_new_symbols": []}),
    }
    for dag_id, (file, cron, tasks) in expected.items():
        dag = dags[dag_id]
        assert dag["fileloc"] == file
        assert dag["timetable"] == "CronTriggerTimetable"
        assert (dag["cron"], dag["timezone"]) == (cron, "Europe/Madrid")
        assert dag["catchup"] is False
        assert dag["max_active_runs"] == 1
        assert {t: v["upstream"] for t, v in dag["tasks"].items()} == tasks
        for task in dag["tasks"].values():
            # Every minute, the next run is the retry; the daily jobs retry with backoff.
            assert task["retries"] == (0 if dag_id == "new_symbol_backfill" else 3)
            assert task["operator"] == "BashOperator"
            # The services' interpreter from the repository root: the cron containers' command.
            assert f"exec {sys.executable} " in task["bash_command"]
            assert f"cd {ROOT} && PYTHONPATH={ROOT}" in task["bash_command"]

    commands = {t: v["bash_command"] for d in dags.values() for t, v in d["tasks"].items()}
    assert commands["daily_news"].endswith(" articles/daily_news.py")
    assert commands["ensure_mongo_indexes"].endswith(" database/setup_mongodb.py")
    assert commands["backfill_history"].endswith(" batch/backfill.py")
    assert commands["backfill_new_symbols"].endswith(" batch/backfill.py --new-only")
    assert out["daily_aggregation_rendered"].endswith(" batch/daily_aggregation.py --date <market_day>")
    # 00:30 UTC on the 14th is 01:30 in Madrid: the run for the day before, by the batch's own rule.
    assert out["market_day"] == {"returncode": 0, "stdout": "2026-01-13", "stderr": ""}


def test_defaults_are_the_containers_schedules(airflow_python: Path, tmp_path: Path) -> None:
    out = probe(airflow_python, tmp_path, {})
    crons = {d: (v["cron"], v["timezone"]) for d, v in out["dags"].items()}
    assert crons == {"daily_batch": ("0 0 * * *", "America/New_York"),
                     "news_pipeline": ("0 8 * * *", "America/New_York"),
                     "maintenance": ("0 3 * * 0", "America/New_York"),
                     "new_symbol_backfill": ("* * * * *", "America/New_York")}


def test_a_bad_setting_is_an_import_error_naming_it(airflow_python: Path, tmp_path: Path) -> None:
    out = probe(airflow_python, tmp_path, {"BATCH_CRON": "every midnight"})
    assert {Path(f).name for f in out["import_errors"]} == {"daily_batch_dag.py", "news_pipeline_dag.py",
                                                            "maintenance_dag.py", "new_symbols_dag.py"}
    assert out["dags"] == {}
    assert all("Invalid setting BATCH_CRON='every midnight'" in e for e in out["import_errors"].values())


@pytest.mark.parametrize(("script", "variable"), [("batch/scheduler.py", "BATCH_SCHEDULE_ENABLED"),
                                                  ("articles/scheduler.py", "NEWS_SCHEDULE_ENABLED")])
def test_the_containers_schedule_can_be_switched_off_for_airflow(script: str, variable: str) -> None:
    """With Airflow driving the jobs the container stays up, runs nothing (it does not
    even reach for a database: none is configured here) and stops cleanly on SIGTERM."""
    env = {variable: "false", "LOG_TO_ELASTICSEARCH": "false", "MONGO_URI": "mongodb://127.0.0.1:9",
           "MYSQL_HOST": "127.0.0.1", "MYSQL_PORT": "9"}
    proc = ServiceProcess(script, env).start()
    try:
        wait_for(lambda: "idle until stopped" in proc.output(), timeout=60, what=f"{script} to go idle")
        assert proc.running
    finally:
        code = proc.stop(timeout=30)
    assert code == 0, proc.output()
    assert f"{variable}=false" in proc.output()
    assert "scheduled run" not in proc.output()
