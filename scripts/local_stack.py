"""Run the whole system as processes on local stand-in servers (no Docker).

    .venv/bin/python scripts/local_stack.py [--flask-port 5000] [--poll-interval 2]

Starts the stand-in servers — Tansu (Kafka), SecantusDB (MongoDB), osmem-server
(Elasticsearch), aiosmtpd (SMTP), all from requirements-dev.txt — and a database
on a MySQL/MariaDB you give it (default 127.0.0.1:3306 as root), then every role
with the same command as its container. Grafana and Kibana need Docker.

The end-to-end and fault tests use `LocalStack` too: they may hand in servers
they already run (the stack then stops only what it started itself), and `tag`
keeps their topics, groups, databases and log index apart.
"""

from __future__ import annotations

import email.policy
import os
import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pymysql

if __package__ in (None, ""):  # run as `python scripts/local_stack.py`: the repository root is the import root
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from database.mysql import apply_schema  # noqa: E402
from scripts.es_compat import NODE_CLASS_PATH  # noqa: E402
from scripts.processes import ServiceProcess  # noqa: E402
from scripts.servers import (  # noqa: E402
    OsmemSearch,
    SecantusMongo,
    ServerProcess,
    TansuBroker,
    missing_dev_packages,
)
from scripts.waiting import free_port, wait_for  # noqa: E402

if TYPE_CHECKING:
    from scripts.smtp_inbox import SmtpServer

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
    mysql_host: str = "127.0.0.1"
    mysql_port: int = 3306
    mysql_user: str = "root"
    mysql_password: str = ""
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
    retired: list[ServiceProcess] = field(default_factory=list)  # replaced by restart_role
    # Per-role environment on top of `env` (e.g. LOG_LEVEL=DEBUG for the producer).
    role_env: dict[str, dict[str, str]] = field(default_factory=dict)
    # Non-empty: suffix for topic, groups, Mongo database and log index (tests sharing servers).
    tag: str = ""
    drop_mysql_database: bool = False  # on stop (tests)
    _owned: list[Any] = field(default_factory=list)

    # ------------------------------------------------------------------ servers
    def start_servers(self) -> None:
        """Start every server not handed in; the stack stops only those on stop()."""
        if self.kafka is None:
            self.kafka = TansuBroker().start()
            self._owned.append(self.kafka)
        if self.mongo is None:
            self.mongo = SecantusMongo().start()
            self._owned.append(self.mongo)
        if self.es is None:
            self.es = OsmemSearch().start()
            self._owned.append(self.es)
        if self.smtp is None:
            from scripts.smtp_inbox import SmtpServer  # aiosmtpd: a dev dependency

            self.smtp = SmtpServer().start()
            self._owned.append(self.smtp)
        conn = self._mysql_root()
        try:
            apply_schema(conn, self.mysql_database)
        finally:
            conn.close()

    def _mysql_root(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(host=self.mysql_host, port=self.mysql_port, user=self.mysql_user,
                               password=self.mysql_password, database=database, autocommit=True,
                               connect_timeout=5, cursorclass=pymysql.cursors.DictCursor)

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
        if self.tag:
            env.update({
                "KAFKA_TOPIC": f"stock-prices-{self.tag}", "KAFKA_DLQ_TOPIC": f"stock-prices-{self.tag}.dlq",
                "KAFKA_CONSUMER_GROUP": f"stock-consumer-group-{self.tag}",
                "KAFKA_ALERTS_GROUP": f"stock-alerts-group-{self.tag}",
                "MONGO_DB": f"stock_market_{self.tag}", "ES_LOG_INDEX": f"stock-system-logs-{self.tag}",
            })
        env.update(self.extra_env)
        return env

    def settings(self, **overrides: Any) -> Any:
        from config.settings import Settings

        values: dict[str, Any] = {k.lower(): v for k, v in self.env.items()}
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    # ------------------------------------------------------------------ roles
    def start_role(self, role: str, env: dict[str, str] | None = None) -> ServiceProcess:
        script, args = ROLES[role]
        env = env or {**self.env, **self.role_env.get(role, {})}
        proc = ServiceProcess(script, env, args=args, name=role).start()
        self.processes[role] = proc
        return proc

    def restart_role(self, role: str, *, kill: bool = False) -> ServiceProcess:
        """SIGKILL (kill=True) or SIGTERM the role, then start it again; the old log is kept."""
        old = self.processes[role]
        old.kill() if kill else old.stop()
        self.retired.append(old)
        return self.start_role(role)

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
        servers: list[ServerProcess | None] = [self.es, self.mongo, self.kafka]
        for server in servers:
            if server in self._owned and server is not None and server.proc is not None:
                server.stop()
        if self.smtp is not None and self.smtp in self._owned:
            self.save_mail()
            self.smtp.stop()
        if self.drop_mysql_database:
            try:
                conn = self._mysql_root()
                with conn.cursor() as cur:
                    cur.execute(f"DROP DATABASE IF EXISTS `{self.mysql_database}`")
                conn.close()
            except pymysql.err.Error:
                pass  # a private server that is already gone

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
    parser.add_argument("--mysql-host", default=os.environ.get("LOCAL_STACK_MYSQL_HOST", "127.0.0.1"))
    parser.add_argument("--mysql-port", type=int, default=int(os.environ.get("LOCAL_STACK_MYSQL_PORT", "3306")))
    parser.add_argument("--mysql-user", default=os.environ.get("LOCAL_STACK_MYSQL_USER", "root"),
                        help="an account that may create the database and load the schema")
    parser.add_argument("--mysql-password", default=os.environ.get("LOCAL_STACK_MYSQL_PASSWORD", ""))
    parser.add_argument("--mysql-database", default="stock_analytics_local")
    parser.add_argument("--roles", default=",".join(ROLES), help="comma-separated roles to start")
    args = parser.parse_args(argv)
    missing = missing_dev_packages()
    if missing:
        print("The local stack runs on stand-in servers that are development dependencies, not part of the\n"
              f"images; missing: {', '.join(missing)}.\n"
              "Install them with: .venv/bin/pip install -r requirements-dev.txt", file=sys.stderr)
        return 2

    stack = LocalStack(flask_port=args.flask_port or free_port(), poll_interval=args.poll_interval,
                       mysql_host=args.mysql_host, mysql_port=args.mysql_port, mysql_user=args.mysql_user,
                       mysql_password=args.mysql_password, mysql_database=args.mysql_database,
                       roles=[r for r in args.roles.split(",") if r])
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
                    code = proc.proc.returncode if proc.proc else "?"
                    print(f"{role} exited with {code}; see {proc.log_path}", file=sys.stderr)
                    raise KeyboardInterrupt
            time.sleep(1.0)  # watch the roles; Ctrl-C / SIGTERM interrupts
    except KeyboardInterrupt:
        print("\nstopping…", flush=True)
    finally:
        stack.stop()
        print("stopped.", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
