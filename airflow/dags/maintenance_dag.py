"""Maintenance on Airflow, on MAINTENANCE_CRON (default Sundays 03:00 market time).

ensure_mongo_indexes: `python database/setup_mongodb.py` (collections and indexes;
                      idempotent, the services also run it at start).
backfill_history:     `python batch/backfill.py` (daily history for symbols that
                      have none yet, e.g. one just added to STOCK_SYMBOLS; a symbol
                      with history is left alone).
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronTriggerTimetable
from stock_jobs import DEFAULT_ARGS, command, service_settings

settings = service_settings()

with DAG(
    dag_id="maintenance",
    description="MongoDB indexes and history for new symbols",
    schedule=CronTriggerTimetable(settings["maintenance_cron"], timezone=settings["market_timezone"]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["stock-analysis", "maintenance"],
) as dag:
    ensure_mongo_indexes = BashOperator(task_id="ensure_mongo_indexes",
                                        bash_command=command("database/setup_mongodb.py"))
    backfill_history = BashOperator(task_id="backfill_history", bash_command=command("batch/backfill.py"))
    ensure_mongo_indexes >> backfill_history
