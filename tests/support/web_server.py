"""The web app under gunicorn, as the container runs it, on a free port of 127.0.0.1 (browser tests)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import requests

from config import Settings
from scripts.servers import LOG_DIR
from scripts.waiting import free_port, wait_for

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def gunicorn_app(settings: Settings, outbox: Path, extra_env: dict[str, str] | None = None,
                 port: int | None = None) -> Iterator[str]:
    """Two workers on `settings`' stores, mail to `outbox` (no SMTP); yields the base URL.
    `port`: listen there (a restart on the same address), else on a free port."""
    port = port or free_port()
    env = dict(os.environ)
    env.update({
        "PYTHONPATH": str(ROOT), "MONGO_URI": settings.mongo_uri, "MONGO_DB": settings.mongo_db,
        "MYSQL_HOST": settings.mysql_host, "MYSQL_PORT": str(settings.mysql_port), "MYSQL_USER": settings.mysql_user,
        "MYSQL_PASSWORD": settings.mysql_password, "MYSQL_DATABASE": settings.mysql_database,
        "FLASK_SECRET_KEY": settings.flask_secret_key, "LOG_TO_ELASTICSEARCH": "false",
        "FLASK_REFRESH_SECONDS": "1", "GUNICORN_BIND": f"127.0.0.1:{port}", "GUNICORN_WORKERS": "2",
        # No SMTP: the confirmation mail is written here.
        "SMTP_SERVER": "", "EMAIL_SENDER": "", "NEWS_OUTBOX_DIR": str(outbox),
        **(extra_env or {}),
    })
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log_path = LOG_DIR / f"gunicorn-web-{port}.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "gunicorn"), "--config", "flask_web_app/gunicorn.conf.py",
             "flask_web_app.app:create_app()"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: proc.poll() is None and requests.get(url + "/healthz", timeout=5).status_code == 200,
                 timeout=60, what=f"gunicorn on {port} (log: {log_path})")
        yield url
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
