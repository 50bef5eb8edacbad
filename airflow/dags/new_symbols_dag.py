"""Daily history for newly added symbols on Airflow: the batch container's backfill watcher.

backfill_new_symbols: `python batch/backfill.py --new-only` every minute (the registered
            symbols without `backfilled_at`, e.g. a ticker a user just added on the dashboard,
            get BACKFILL_DAYS of daily history and are recorded so; a pass with nothing new
            only reads the registry). The first pass on a fresh stack is the defaults' history,
            as the container's start-up backfill would have done.

With Airflow driving the batch (BATCH_SCHEDULE_ENABLED=false) the container has no watcher,
so without this DAG a new symbol would wait for the weekly maintenance run. No retries: the
next minute's run is the retry, and one run at a time keeps a long backfill from being doubled.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronTriggerTimetable
from stock_jobs import DEFAULT_ARGS, command, service_settings

settings = service_settings()

# Every minute: "a new symbol's daily history within about a minute" (the watcher reads every 15 s).
EVERY_MINUTE = "* * * * *"

with DAG(
    dag_id="new_symbol_backfill",
    description="Daily history for symbols added to the registry (batch/backfill.py --new-only)",
    schedule=CronTriggerTimetable(EVERY_MINUTE, timezone=settings["market_timezone"]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args={**DEFAULT_ARGS, "retries": 0},
    tags=["stock-analysis", "batch"],
) as dag:
    backfill_new_symbols = BashOperator(task_id="backfill_new_symbols",
                                        bash_command=command("batch/backfill.py", "--new-only"))
