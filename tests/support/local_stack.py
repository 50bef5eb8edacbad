"""The whole system as processes on local servers (no Docker).

Starts the test servers — Tansu (Kafka), SecantusDB (MongoDB), osmem-server
(Elasticsearch), aiosmtpd (SMTP) and a database on the local MariaDB — then
every role with the same command as its container. Used by
`scripts/local_stack.py` (for people) and by the end-to-end and fault tests.

Tests may hand in servers they already run (shared session servers, or private
ones they stop and restart); the stack then stops only what it started itself,
and `tag` keeps its topics, groups, databases and log index apart from other tests.
It also knows how to read back what the pipeline did (`StackProbe`).
"""

from __future__ import annotations

import email.policy
import os
import re
import signal
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
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


# ---------------------------------------------------------------------- reading back
# What the producer says for each delivered quote at DEBUG (streaming/producer.py).
_SENT = re.compile(r"kafka_producer: sent (\S+) (\S+) ")
_STOPPED = re.compile(r"producer stopped: (\d+) delivered, (\d+) not delivered \((\d+) still unsent\)")


def ms_utc(ts: datetime) -> datetime:
    """MongoDB keeps milliseconds; the consumer truncates to them (streaming/schema.py)."""
    ts = ts.astimezone(UTC) if ts.tzinfo else ts.replace(tzinfo=UTC)
    return ts.replace(microsecond=ts.microsecond // 1000 * 1000)


def delivered_keys(*outputs: str) -> set[tuple[str, datetime]]:
    """(symbol, timestamp) of every quote the producer saw acknowledged by Kafka
    (its DEBUG line per delivery; run the producer with LOG_LEVEL=DEBUG)."""
    return {(m.group(1), ms_utc(datetime.fromisoformat(m.group(2)))) for out in outputs for m in _SENT.finditer(out)}


def delivered_count(output: str) -> tuple[int, int, int]:
    """The producer's last line on SIGTERM: (delivered, not delivered, still unsent)."""
    found = _STOPPED.findall(output)
    if not found:
        raise AssertionError("the producer did not log its delivered count (was it stopped with SIGTERM?)")
    delivered, failed, unsent = (int(x) for x in found[-1])
    return delivered, failed, unsent


class StackProbe:
    """Reads what the pipeline did: MongoDB, MySQL, topics (to the fetch high-water mark), ES."""

    def __init__(self, stack: LocalStack) -> None:
        from pymongo import MongoClient

        self.stack = stack
        self.settings = stack.settings()
        self.client: Any = MongoClient(self.settings.mongo_uri, tz_aware=True, serverSelectionTimeoutMS=5000)
        self.db = self.client[self.settings.mongo_db]

    def close(self) -> None:
        self.client.close()

    # MongoDB
    def stored_count(self) -> int:
        return int(self.db.realtime_prices.count_documents({}))

    def stored_keys(self) -> list[tuple[str, datetime]]:
        return [(d["symbol"], ms_utc(d["timestamp"])) for d in self.db.realtime_prices.find({}, {"symbol": 1, "timestamp": 1})]

    def alert_history(self) -> list[dict[str, Any]]:
        return list(self.db.alert_history.find({}, {"_id": 0}).sort("quote_timestamp", 1))

    # MySQL
    def mysql_rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        conn = self.stack._mysql_root(self.stack.mysql_database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, args)
                return list(cur.fetchall())
        finally:
            conn.close()

    def alert_rows(self) -> list[dict[str, Any]]:
        return self.mysql_rows("SELECT alert_key, symbol, rule, value, email_status, email_error FROM alert_log ORDER BY id")

    # Kafka
    def produce(self, messages: list[tuple[str | None, bytes]], topic: str | None = None) -> None:
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=self.settings.kafka_bootstrap_servers, acks="all", linger_ms=5,
                                 max_request_size=2 * 1024 * 1024)
        try:
            futures = [producer.send(topic or self.settings.kafka_topic, key=k.encode() if k else None, value=v)
                       for k, v in messages]
            producer.flush(timeout=120)
            for f in futures:
                f.get(timeout=60)
        finally:
            producer.close()

    def read_topic(self, topic: str, timeout: float = 60.0) -> list[Any]:
        """Every record of `topic` up to its high-water mark as the fetch reports it
        (Tansu's end_offsets is not reliable)."""
        from kafka import KafkaConsumer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=self.settings.kafka_bootstrap_servers, group_id=None,
                                 enable_auto_commit=False, auto_offset_reset="earliest",
                                 fetch_max_bytes=8 * 1024 * 1024, max_partition_fetch_bytes=4 * 1024 * 1024)
        try:
            parts = wait_for(lambda: consumer.partitions_for_topic(topic), timeout=timeout, what=f"topic {topic}")
            tps = [TopicPartition(topic, p) for p in sorted(parts)]
            consumer.assign(tps)
            consumer.seek_to_beginning()
            records: list[Any] = []
            deadline = time.monotonic() + timeout

            def done() -> bool:
                for tp in tps:
                    hw = consumer.highwater(tp)
                    if hw is None or consumer.position(tp) < hw:
                        return False
                return True

            while True:
                for batch in consumer.poll(timeout_ms=500).values():
                    records.extend(batch)
                if done():
                    return records
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(records)} records read from {topic}; high-water mark not reached")
        finally:
            consumer.close()

    # Elasticsearch
    def log_count(self, service: str, since: datetime | None = None) -> int:
        import requests

        query: dict[str, Any] = {"bool": {"filter": [{"term": {"service": service}}]}}
        if since is not None:
            query["bool"]["filter"].append({"range": {"timestamp": {"gte": since.isoformat(timespec="milliseconds")}}})
        assert self.stack.es is not None
        resp = requests.post(f"{self.stack.es.url}/{self.settings.es_log_index}/_count", json={"query": query}, timeout=10)
        if resp.status_code == 404:
            return 0
        resp.raise_for_status()
        return int(resp.json()["count"])

    # Rates
    def stored_rate(self, seconds: float) -> float:
        """Quotes stored per second over the next `seconds` (a measured window, not a wait)."""
        start_n, start_t = self.stored_count(), time.monotonic()
        deadline = start_t + seconds
        while time.monotonic() < deadline:
            time.sleep(min(0.5, max(0.0, deadline - time.monotonic())))
        return (self.stored_count() - start_n) / (time.monotonic() - start_t)

    def settle_and_account(self, extra: set[tuple[str, datetime]] | None = None,
                           timeout: float = 120.0) -> tuple[int, set[tuple[str, datetime]]]:
        """Stop the producer cleanly and check "nothing lost": every quote it delivered
        (plus `extra`, quotes a test produced itself) is in MongoDB exactly once, and
        nothing else is. Returns (delivered count from its last line, the keys)."""
        producer = self.stack.processes["producer"]
        assert producer.stop() == 0, producer.output()[-3000:]
        outputs = [p.output() for p in [*self.stack.retired, producer] if p.name == "producer"]
        delivered, _failed, unsent = delivered_count(outputs[-1])
        assert unsent == 0, f"{unsent} quotes never sent"
        expected = delivered_keys(*outputs) | (extra or set())
        assert len(expected) >= delivered * 0.99 or delivered == 0, (len(expected), delivered)
        wait_for(lambda: self.stored_count() >= len(expected), timeout=timeout,
                 what=f"{len(expected)} quotes in MongoDB (have {self.stored_count()})")
        keys = self.stored_keys()
        assert len(keys) == len(set(keys)), "a quote is stored twice"
        assert set(keys) == expected, (f"missing {len(expected - set(keys))}: {sorted(expected - set(keys))[:5]}; "
                                       f"unexpected {len(set(keys) - expected)}: {sorted(set(keys) - expected)[:5]}")
        return delivered, expected


STREAMING = ["producer", "consumer", "alerts"]
# Thresholds no simulated move reaches, so the only alerts are the ones a test injects.
QUIET_ALERTS = {"PRICE_CHANGE_THRESHOLD": "15", "VOLUME_THRESHOLD_MULTIPLIER": "1000"}
# Tests never ask the real Yahoo, and quotes move whatever the hour (every minute a session).
TEST_QUOTES = {"QUOTE_SOURCES": "alpha_vantage,simulated", "MARKET_CALENDAR": "24/7"}


@contextmanager
def pipeline(*, mysql: dict[str, Any], database: str, kafka: TansuBroker | None = None,
             mongo: SecantusMongo | None = None, es: OsmemSearch | None = None, smtp: SmtpServer | None = None,
             env: dict[str, str] | None = None, roles: list[str] | None = None,
             min_stored: int = 14) -> Iterator[tuple[LocalStack, StackProbe]]:
    """Producer, consumer and alerts as processes on the given servers (others are
    started and stopped here), with their own topic, groups, Mongo database and log
    index. Yields once quotes are flowing into MongoDB."""
    import uuid

    stack = LocalStack(mysql_host=mysql["host"], mysql_port=int(mysql["port"]), mysql_user=mysql["user"],
                       mysql_password=mysql["password"], mysql_database=database, kafka=kafka, mongo=mongo,
                       es=es, smtp=smtp, poll_interval=0.5, roles=roles or list(STREAMING),
                       tag=uuid.uuid4().hex[:10], flask_port=free_port(),
                       extra_env={"SIMULATION_SEED": "8", "LOG_LEVEL": "INFO", **QUIET_ALERTS, **TEST_QUOTES,
                                  **(env or {})},
                       role_env={"producer": {"LOG_LEVEL": "DEBUG"}})  # one line per delivered quote
    probe: StackProbe | None = None
    try:
        stack.start()
        probe = StackProbe(stack)
        if "consumer" in stack.roles:
            wait_for(lambda: probe.stored_count() >= min_stored, timeout=90, what="quotes flowing into MongoDB")
        yield stack, probe
    finally:
        if probe is not None:
            probe.close()
        stack.stop()
