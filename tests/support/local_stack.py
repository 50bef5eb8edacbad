"""The whole system as processes on local servers (no Docker).

Starts the test servers — Tansu (Kafka), SecantusDB (MongoDB), osmem-server
(Elasticsearch), aiosmtpd (SMTP) and a database on the local MariaDB — then
every role with the same command as its container. Used by
`scripts/local_stack.py` (for people) and by the end-to-end tests.
"""

from __future__ import annotations

import email.policy
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql

from database.mysql import apply_schema
from tests.support.es_compat import NODE_CLASS_PATH
from tests.support.processes import ServiceProcess
from tests.support.servers import OsmemSearch, SecantusMongo, ServerProcess, TansuBroker
from tests.support.smtp import SmtpServer
from tests.support.waiting import free_port, wait_for

# role -> (script or command, args); the same commands the Dockerfiles run.
ROLES: dict[str, tuple[str, list[str]]] = {
    "producer": ("streaming/producer.py", []),
    "consumer": ("streaming/consumer.py", []),
    "alerts": ("streaming/alerts.py", []),
    "batch": ("batch/scheduler.py", []),
    "news": ("articles/scheduler.py", []),
    "flask": ("-m", ["gunicorn", "--config", "flask_web_app/gunicorn.conf.py", "flask_web_app.app:create_app()"]),
}


@dataclass
class LocalStack:
    mysql_host: str = os.environ.get("TEST_MYSQL_HOST", "127.0.0.1")
    mysql_port: int = int(os.environ.get("TEST_MYSQL_PORT", "3306"))
    mysql_user: str = os.environ.get("TEST_MYSQL_USER", "root")
    mysql_password: str = os.environ.get("TEST_MYSQL_PASSWORD", "")
    mysql_database: str = "stock_analytics_local"
    flask_port: int = 5000
    poll_interval: float = 2.0
    roles: list[str] = field(default_factory=lambda: list(ROLES))
    extra_env: dict[str, str] = field(default_factory=dict)
    mail_dir: Path = Path("local-stack/mail")
    kafka: TansuBroker | None = None
    mongo: SecantusMongo | None = None
    es: OsmemSearch | None = None
    smtp: SmtpServer | None = None
    processes: dict[str, ServiceProcess] = field(default_factory=dict)

    # ------------------------------------------------------------------ servers
    def start_servers(self) -> None:
        self.kafka = TansuBroker().start()
        self.mongo = SecantusMongo().start()
        self.es = OsmemSearch().start()
        self.smtp = SmtpServer().start()
        conn = pymysql.connect(host=self.mysql_host, port=self.mysql_port, user=self.mysql_user,
                               password=self.mysql_password, autocommit=True, connect_timeout=5)
        try:
            apply_schema(conn, self.mysql_database)
        finally:
            conn.close()

    @property
    def env(self) -> dict[str, str]:
        assert self.kafka and self.mongo and self.es and self.smtp, "start_servers() first"
        env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.kafka.bootstrap,
            "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
            "MONGO_URI": self.mongo.uri,
            "ELASTICSEARCH_URL": self.es.url, "ELASTICSEARCH_NODE_CLASS": NODE_CLASS_PATH,
            "MYSQL_HOST": self.mysql_host, "MYSQL_PORT": str(self.mysql_port), "MYSQL_USER": self.mysql_user,
            "MYSQL_PASSWORD": self.mysql_password, "MYSQL_DATABASE": self.mysql_database,
            "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(self.smtp.port), "SMTP_STARTTLS": "false",
            "EMAIL_SENDER": self.smtp.user, "EMAIL_PASSWORD": self.smtp.password,
            "POLL_INTERVAL_SECONDS": str(self.poll_interval),
            "ALPHA_VANTAGE_API_KEY": "",
            "FLASK_SECRET_KEY": os.urandom(16).hex(),
            "GUNICORN_BIND": f"127.0.0.1:{self.flask_port}",
        }
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ roles
    def start_role(self, role: str, env: dict[str, str] | None = None) -> ServiceProcess:
        script, args = ROLES[role]
        proc = ServiceProcess(script, env or self.env, args=args, name=role).start()
        self.processes[role] = proc
        return proc

    def start(self) -> LocalStack:
        self.start_servers()
        for role in self.roles:
            self.start_role(role)
        if "flask" in self.roles:
            import requests

            wait_for(lambda: requests.get(f"{self.flask_url}/healthz", timeout=2).status_code in (200, 503),
                     timeout=60, what="flask /healthz")
        return self

    @property
    def flask_url(self) -> str:
        return f"http://127.0.0.1:{self.flask_port}"

    def stop(self) -> None:
        for proc in reversed(list(self.processes.values())):
            proc.stop()
        self.processes.clear()
        servers: list[ServerProcess | SmtpServer | None] = [self.es, self.mongo, self.kafka]
        for server in servers:
            if server is not None and getattr(server, "proc", None) is not None:
                server.stop()  # type: ignore[union-attr]
        if self.smtp is not None:
            self.save_mail()
            self.smtp.stop()

    def save_mail(self) -> list[Path]:
        """Write every received email to mail_dir as .eml (the local stack's inbox)."""
        if self.smtp is None:
            return []
        self.mail_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for i, mail in enumerate(self.smtp.inbox.messages):
            path = self.mail_dir / f"{i:04d}.eml"
            path.write_bytes(mail.message.as_bytes(policy=email.policy.SMTP))
            paths.append(path)
        return paths

    def describe(self) -> str:
        assert self.kafka and self.mongo and self.es and self.smtp
        return "\n".join([
            "Stock Analysis System — local stack (no Docker)",
            f"  Flask dashboard  {self.flask_url}",
            f"  Kafka (Tansu)    {self.kafka.bootstrap}",
            f"  MongoDB          {self.mongo.uri}/stock_market",
            f"  MySQL            {self.mysql_host}:{self.mysql_port}/{self.mysql_database} (user {self.mysql_user})",
            f"  Elasticsearch    {self.es.url}/stock-system-logs/_search",
            f"  SMTP (aiosmtpd)  127.0.0.1:{self.smtp.port}; mail saved to {self.mail_dir}/ on exit",
            "  Grafana and Kibana need Docker: docker compose up -d",
            f"  Role logs        {next(iter(self.processes.values())).log_path.parent if self.processes else '-'}",
            "Ctrl-C stops everything.",
        ])


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Run the whole system as local processes (no Docker).")
    parser.add_argument("--flask-port", type=int, default=5000)
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between simulated quotes")
    parser.add_argument("--mysql-database", default="stock_analytics_local")
    parser.add_argument("--roles", default=",".join(ROLES), help="comma-separated roles to start")
    args = parser.parse_args(argv)

    stack = LocalStack(flask_port=args.flask_port or free_port(), poll_interval=args.poll_interval,
                       mysql_database=args.mysql_database, roles=[r for r in args.roles.split(",") if r])
    stopping: list[int] = []

    def _stop(signum: int, _frame: Any) -> None:
        stopping.append(signum)
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    try:
        stack.start()
        print(stack.describe(), flush=True)
        while True:
            for role, proc in stack.processes.items():
                if not proc.running:
                    print(f"{role} exited with {proc.proc.returncode if proc.proc else '?'}; see {proc.log_path}", file=sys.stderr)
                    raise KeyboardInterrupt
            time.sleep(1.0)  # watch the roles; Ctrl-C / SIGTERM interrupts
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stack.stop()
        print("stopped.", flush=True)
    return 0
