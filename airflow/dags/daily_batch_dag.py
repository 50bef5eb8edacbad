"""Daily batch on Airflow: the same job as the batch container, on BATCH_CRON.

market_day: the market day this run aggregates, by the batch's own rule
            (batch.scheduler.day_for_fire: the day before the run's instant,
            in MARKET_TIMEZONE), printed and passed on via XCom.
daily_aggregation: `python batch/daily_aggregation.py --date <that day>`, the
            command the container runs (aggregates, weekly and performance rows,
            archive to S3 when ARCHIVE_ENABLED, retention).

Catch-up is off: a run missed while Airflow was down is not replayed by
Airflow; re-run a day with "Trigger" or `python batch/daily_aggregation.py --date`.
With Airflow driving the batch, set BATCH_SCHEDULE_ENABLED=false for the container.
"""

from __future__ import annotations

import shlex
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronTriggerTimetable
from stock_jobs import DEFAULT_ARGS, command, service_settings

settings = service_settings()

# `run_after` is the scheduled instant for a scheduled run and the trigger time for
# a manual one (Airflow 3 gives manual runs no logical date of their own).
MARKET_DAY_CODE = (
    "import sys; from datetime import datetime; from config import get_settings; "
    "from batch.scheduler import day_for_fire; "
    "print(day_for_fire(datetime.fromisoformat(sys.argv[1]), get_settings()))"
)
RUN_AFTER = "'{{ dag_run.run_after.isoformat() }}'"

with DAG(
    dag_id="daily_batch",
    description="MongoDB quotes of a market day -> MySQL aggregates (batch/daily_aggregation.py)",
    schedule=CronTriggerTimetable(settings["batch_cron"], timezone=settings["market_timezone"]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["stock-analysis", "batch"],
) as dag:
    market_day = BashOperator(
        task_id="market_day",
        bash_command=command("-c", shlex.quote(MARKET_DAY_CODE), RUN_AFTER),
        do_xcom_push=True,
    )
    daily_aggregation = BashOperator(
        task_id="daily_aggregation",
        bash_command=command("batch/daily_aggregation.py", "--date", "{{ ti.xcom_pull(task_ids='market_day') }}"),
    )
    market_day >> daily_aggregation


