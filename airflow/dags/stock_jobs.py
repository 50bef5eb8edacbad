"""What the three DAGs share: where the services' code and interpreter are, the
settings the schedules come from, and the command that runs an entry point.

The DAGs run the services' own entry points (`python batch/daily_aggregation.py`,
`python articles/daily_news.py`, ...) with the services' interpreter, exactly as
the cron containers and `docker exec` do, so there is one copy of the job logic
and Airflow's dependencies never meet the services' pins:

- STOCK_APP_ROOT    repository root (default: two folders above this file, i.e.
                    the checkout whose airflow/dags this is)
- STOCK_APP_PYTHON  the services' interpreter (default: STOCK_APP_ROOT/.venv/bin/python
                    when it exists, else python3)

These two are Airflow-side wiring, not settings of the system; everything else
(BATCH_CRON, NEWS_CRON, MAINTENANCE_CRON, MARKET_TIMEZONE, the databases...) is
read by the services' own config.Settings, from the same environment / .env.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from datetime import timedelta
from pathlib import Path
from typing import Any

ROOT = Path(os.environ.get("STOCK_APP_ROOT") or Path(__file__).resolve().parents[2])
_VENV_PYTHON = ROOT / ".venv" / "bin" / "python"
PYTHON = os.environ.get("STOCK_APP_PYTHON") or (str(_VENV_PYTHON) if _VENV_PYTHON.exists() else "python3")

# Retries: a database restarting at midnight should not cost a day. The jobs are
# idempotent per day (upserts, one digest per user and day), so a retry is safe.
DEFAULT_ARGS: dict[str, Any] = {
    "owner": "stock-analysis",
    "retries": 3,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(minutes=30),
}

_SETTINGS_SCRIPT = (
    "import json; from config import get_settings; s = get_settings(); "
    "print(json.dumps({'batch_cron': s.batch_cron, 'news_cron': s.news_cron, "
    "'maintenance_cron': s.maintenance_cron, 'market_timezone': s.market_timezone}))"
)


def service_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT)
    return env


def service_settings() -> dict[str, str]:
    """The schedule settings as the services read them (their interpreter, their
    validation, the same .env in ROOT). A bad value fails the DAG import with the
    services' own one-line message, visible in Airflow's import errors."""
    proc = subprocess.run([PYTHON, "-c", _SETTINGS_SCRIPT], cwd=ROOT, env=service_env(),
                          capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise RuntimeError(f"cannot read the services' settings with {PYTHON} in {ROOT}: "
                           f"{(proc.stderr or proc.stdout).strip()[-2000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def command(script: str, *args: str) -> str:
    """Bash command running one entry point from the repository root, as the containers do.

    `script` is quoted here; `args` are passed as written, so they may hold Jinja
    templates (rendered by Airflow before the command runs) and must be quoted by
    the caller where needed."""
    root = shlex.quote(str(ROOT))
    return " ".join([f"cd {root} && PYTHONPATH={root} PYTHONUNBUFFERED=1 exec", shlex.quote(PYTHON),
                     shlex.quote(script), *args])
