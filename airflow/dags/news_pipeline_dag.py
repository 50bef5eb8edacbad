"""News pipeline on Airflow: the same job as the news container, on NEWS_CRON.

daily_news: `python articles/daily_news.py` (scrape the feeds, store new articles
in MongoDB, mail each opted-in user one digest per day; idempotent within a day,
so a retry never mails twice). With Airflow driving it, set
NEWS_SCHEDULE_ENABLED=false for the container.
"""

from __future__ import annotations

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, CronTriggerTimetable
from stock_jobs import DEFAULT_ARGS, command, service_settings

settings = service_settings()

with DAG(
    dag_id="news_pipeline",
    description="News feeds -> MongoDB news_articles -> daily digest e-mails (articles/daily_news.py)",
    schedule=CronTriggerTimetable(settings["news_cron"], timezone=settings["market_timezone"]),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=DEFAULT_ARGS,
    tags=["stock-analysis", "news"],
) as dag:
    daily_news = BashOperator(task_id="daily_news", bash_command=command("articles/daily_news.py"))
