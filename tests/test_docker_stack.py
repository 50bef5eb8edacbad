"""`docker compose up -d`, for real: the real docker-compose.yml and the six
Dockerfile.<role> on a Docker engine, with stand-ins for the infrastructure images
this machine cannot pull (tests/docker/compose.standins.yml, tests/docker/README.md).

The module starts (or finds) an engine, makes the Python base image when it cannot be
pulled, builds the stand-ins, then, as one project with no .env:
`up -d --wait` brings every started service to healthy/running; quotes reach
MongoDB and the Flask page in headless Chromium within a minute; the README's two
manual commands work; `--scale consumer=3` shares the partitions with nothing doubled;
`restart mongodb` loses no quote; `stop producer` ends with the flush line and every
delivered quote is stored once; `down -v` leaves nothing behind. A summary with the
durations is printed at the end (and written to test-artifacts/docker/summary.txt).

Skipped, loudly, only where no engine can be had (not root and none running); in CI
(CI set) that is a failure instead.
"""

from __future__ import annotations

import os
import re
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email import message_from_string
from email import policy as mail_policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pymongo
import pymysql
import pytest
import requests

from common.clock import OFFSET_VARIABLE, offset_to, utc_now
from config.settings import Settings
from scripts.waiting import free_port, wait_for
from tests.support import ARTIFACTS as TEST_ARTIFACTS
from tests.support.accounts import confirmation_link
from tests.support.clock import pinned_instant
from tests.support.compose_project import ComposeProject
from tests.support.docker_engine import DockerEngine, EngineUnavailableError
from tests.support.docker_standins import build_standins, ensure_python_base

pytestmark = [pytest.mark.slow, pytest.mark.docker, pytest.mark.browser]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = TEST_ARTIFACTS / "docker"
CHROMIUM = "/usr/bin/chromium"
DEFAULTS = Settings(_env_file=None)  # type: ignore[call-arg]
SYMBOLS = list(DEFAULTS.stock_symbols)
STARTED = {"zookeeper", "kafka", "mongodb", "mysql", "elasticsearch",
           "producer", "consumer", "alerts", "batch", "news", "flask"}
TEST_ONLY = {"feeds"}  # the recorded news feeds (tests/docker/feeds), not a service of the product
LEFT_OUT = {"grafana", "kibana", "kibana-setup"}  # no stand-in for their images
# Host ports the check talks to (compose variable -> default). A busy one is moved to a
# free port through its variable, which the summary says.
HOST_PORTS = {"FLASK_PORT": 5000, "MONGO_HOST_PORT": 27017, "MYSQL_HOST_PORT": 3307,
              "KAFKA_HOST_PORT": 9092, "ES_HOST_PORT": 9200}
BATCH_LINE = re.compile(r"batch of (\d+): (\d+) stored, (\d+) already present, (\d+) to DLQ; (.*)$")
ERROR_LINE = re.compile(r"\b(ERROR|CRITICAL)\b|Traceback \(most recent call last\)")
ROLES = ["producer", "consumer", "alerts", "batch", "news", "flask"]
# Never the real Yahoo from a test, and a session at every hour: the checks below count
# producer ticks, which come every 5 minutes while the NYSE is closed (tests/test_simulator.py
# and tests/test_yahoo_finance.py cover the closed market and Yahoo's answers).
QUOTE_VARIABLES = {"QUOTE_SOURCES": "alpha_vantage,simulated", "MARKET_CALENDAR": "24/7"}
# The news container reads the recorded feeds of the feeds stand-in (the real ones cannot be
# reached from here), in the URL formats of the real ones.
FEED_VARIABLES = {"YAHOO_RSS_URL": "http://feeds:8080/rss/2.0/headline?s={symbol}&region=US&lang=en-US",
                  "GOOGLE_NEWS_RSS_URL": "http://feeds:8080/rss/search?q={query}&hl=en-US&gl=US&ceid=US:en"}
# The instant the containers believe it is at the start (CLOCK_OFFSET_SECONDS), whatever the
# hour of the CI machine: a Saturday just after 08:00 New York, so that the news container's
# start-up catch-up runs on every check (TEST_NOW overrides it: tests/support/clock.py).
DEFAULT_INSTANT = "saturday-after-news"
STOPPED_LINE = re.compile(r"producer stopped: (\d+) delivered, (\d+) not delivered \((\d+) still unsent\)")


@dataclass
class StackRun:
    project: ComposeProject
    engine: DockerEngine
    ports: dict[str, int]
    up_output: str = ""
    up_returncode: int = -1
    up_done_at: float = 0.0
    timings: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    user_email: str = ""
    instant: datetime | None = None  # what the containers' clock read at the start
    down_done: bool = False

    def timed(self, what: str, started: float) -> float:
        took = time.monotonic() - started
        self.timings.append((what, took))
        return took

    def mongo(self) -> Any:
        client = pymongo.MongoClient(f"mongodb://127.0.0.1:{self.ports['MONGO_HOST_PORT']}",
                                     serverSelectionTimeoutMS=5000)
        return client, client[DEFAULTS.mongo_db]


def _port_free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _report(request: pytest.FixtureRequest, run: StackRun | None, total: float) -> None:
    lines = []
    if run is not None:
        lines.append(f"engine: {run.engine.description}, Docker Engine {run.engine.version()}")
        lines += [f"{what:<58} {took:7.1f} s" for what, took in run.timings]
        lines += run.notes
    lines.append(f"{'total (engine start to engine stop)':<58} {total:7.1f} s")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "summary.txt").write_text("\n".join(lines) + "\n")
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        # Past pytest's output capture, so the summary shows in every run's output (CI's too).
        with capture.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_sep("=", "docker compose stack check")
            for line in lines:
                reporter.write_line(line)


@pytest.fixture(scope="module")
def stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackRun]:
    began = time.monotonic()
    clock_pin = pytest.MonkeyPatch()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    try:
        engine = DockerEngine.obtain(ARTIFACTS)
    except EngineUnavailableError as exc:
        message = f"NO DOCKER ENGINE, docker-compose.yml NOT RUN: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    run: StackRun | None = None
    try:
        started = time.monotonic()
        ports = {var: default if _port_free(default) else free_port() for var, default in HOST_PORTS.items()}
        instant = pinned_instant(os.environ.get("TEST_NOW") or DEFAULT_INSTANT)
        offset = offset_to(instant)
        # The checks below read "today" as the containers do.
        clock_pin.setenv(OFFSET_VARIABLE, str(offset))
        env_file = tmp_path_factory.mktemp("compose") / "empty.env"
        env_file.write_text("")
        project = ComposeProject(engine, f"sas-check-{uuid.uuid4().hex[:8]}", env_file, ARTIFACTS,
                                 {var: str(port) for var, port in ports.items() if port != HOST_PORTS[var]}
                                 | QUOTE_VARIABLES | FEED_VARIABLES | {OFFSET_VARIABLE: str(offset)})
        run = StackRun(project, engine, ports, instant=instant)
        run.timed("engine ready", began)
        run.notes.append(f"clock: the containers started at {instant.isoformat()} "
                         f"({instant.astimezone(UTC):%a %Y-%m-%d %H:%M} UTC; {OFFSET_VARIABLE}={offset:.0f})")
        for var, value in project.variables.items():
            if var in HOST_PORTS:
                run.notes.append(f"note: host port {HOST_PORTS[var]} was busy; {var}={value}")

        started = time.monotonic()
        base = ensure_python_base(engine, ARTIFACTS / "python-base.log")
        run.timed("Python base image", started)
        run.notes.append(f"base image: {base}")

        started = time.monotonic()
        build_standins(engine, ARTIFACTS)
        run.timed("stand-in images (zookeeper, kafka, mongodb, mysql, es)", started)

        started = time.monotonic()
        project.run("build", timeout=1800)
        run.timed("docker compose build (the six Dockerfile.<role>)", started)

        started = time.monotonic()
        proc = project.run("up", "-d", "--wait", "--wait-timeout", "300", timeout=600, check=False)
        run.up_returncode, run.up_output = proc.returncode, proc.stdout + proc.stderr
        run.up_done_at = time.monotonic()
        run.timed("docker compose up -d --wait", started)
        yield run
    finally:
        if run is not None and not run.down_done:
            for service in STARTED | TEST_ONLY:
                logs = run.project.run("logs", "--no-color", service, check=False).stdout
                (ARTIFACTS / f"{service}.log").write_text(logs)
            run.project.run("down", "-v", "--remove-orphans", check=False)
        total = time.monotonic() - began
        _report(request, run, total)
        engine.stop()
        clock_pin.undo()


def _containers(stack: StackRun) -> list[dict[str, Any]]:
    return stack.project.ps()


def test_up_wait_brings_every_started_service_to_healthy_or_running(stack: StackRun) -> None:
    assert stack.up_returncode == 0, stack.up_output[-4000:]
    assert "dependency failed" not in stack.up_output and "unhealthy" not in stack.up_output, stack.up_output[-4000:]
    active = set(stack.project.run("config", "--services").stdout.split())
    assert active == STARTED | TEST_ONLY, f"services the override leaves running: {sorted(active)}"
    every = set(stack.project.run("--profile", "*", "config", "--services").stdout.split())
    assert every - active >= LEFT_OUT, "grafana, kibana and kibana-setup are left out by the override"
    containers = _containers(stack)
    assert {c["Service"] for c in containers} == STARTED | TEST_ONLY
    for c in containers:
        assert c["State"] == "running", f"{c['Name']}: {c['State']} {c.get('Status')}"
        has_check = stack.engine.docker("inspect", "--format", "{{if .State.Health}}yes{{end}}",
                                        c["Name"]).stdout.strip()
        if has_check:
            assert c.get("Health") == "healthy", f"{c['Name']}: {c.get('Health')}"
    healthy = sorted(c["Service"] for c in containers if c.get("Health") == "healthy")
    assert set(healthy) >= {"zookeeper", "kafka", "mongodb", "mysql", "elasticsearch", "flask"}
    stack.notes.append(f"up --wait: {len(containers)} containers running; healthy: {', '.join(healthy)}")
    stack.notes.append("left out (no stand-in for the official image): " + ", ".join(sorted(LEFT_OUT)))


def test_quotes_reach_mongodb_and_the_dashboard_within_a_minute(stack: StackRun) -> None:
    from playwright.sync_api import expect, sync_playwright

    client, db = stack.mongo()
    try:
        def every_symbol_stored() -> bool:
            return set(db.realtime_prices.distinct("symbol")) >= set(SYMBOLS)

        deadline = 60 - (time.monotonic() - stack.up_done_at)
        wait_for(every_symbol_stored, timeout=max(deadline, 1), interval=1,
                 what="a quote of every symbol in MongoDB realtime_prices")
        took = time.monotonic() - stack.up_done_at
        stack.timings.append(("first quote of every symbol in MongoDB (after up)", took))
        for doc in db.realtime_prices.find({}, {"_id": 0}):
            assert doc["source"] == "simulated" and doc["price"] > 0 and doc["symbol"] in SYMBOLS, doc

        shots = ARTIFACTS / "screenshots"
        shots.mkdir(parents=True, exist_ok=True)
        url = f"http://127.0.0.1:{stack.ports['FLASK_PORT']}"
        email = f"compose.check.{uuid.uuid4().hex[:6]}@example.com"
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--headless", "--no-sandbox", "--disable-gpu",
                                               "--disable-background-networking"])
            try:
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                page.goto(url + "/")
                for symbol in SYMBOLS:
                    row = page.locator(f'tr[data-symbol="{symbol}"]')
                    expect(row.locator(".badge.sim")).to_be_visible(timeout=20_000)

                    def shows_the_latest(symbol: str = symbol, row: Any = row) -> bool:
                        latest = db.realtime_prices.find_one({"symbol": symbol}, sort=[("timestamp", -1)])
                        return row.locator(".price").inner_text() == f"{latest['price']:.2f}"

                    wait_for(shows_the_latest, timeout=30, interval=0.5, what=f"{symbol}'s latest price on /")
                page.screenshot(path=str(shots / "compose-index.png"), full_page=True)
                page_took = time.monotonic() - stack.up_done_at
                stack.timings.append(("every symbol's latest price on / in Chromium (after up)", page_took))

                # A user opted in to the digest, through the form, for the news check below.
                page.goto(url + "/register")
                page.fill("#email", email)
                page.fill("#name", "Compose Check")
                page.fill("#password", "Quiet-meadow-58")
                page.fill("#confirm", "Quiet-meadow-58")
                page.check('input[name="digest_opt_in"]')
                page.click("#submit")
                expect(page.locator("#registered-message")).to_be_visible(timeout=20_000)
                # No SMTP in this stack: the confirmation mail is an .eml in the outbox volume; the
                # digest goes only to a confirmed address, so follow its link as the user would.
                raw = stack.engine.docker("exec", "flask", "sh", "-c", "cat outbox/confirm-*.eml").stdout
                mail = message_from_string(raw, policy=mail_policy.default)
                assert isinstance(mail, EmailMessage) and mail["To"] == email, raw[-2000:]
                page.goto(url + confirmation_link(mail))
                expect(page.locator("#confirmed-message")).to_be_visible(timeout=20_000)
                page.goto(url + "/login?next=/account")
                page.fill("#email", email)
                page.fill("#password", "Quiet-meadow-58")
                page.click("#submit")
                expect(page.locator("#account-email")).to_have_text(email, timeout=20_000)
            finally:
                browser.close()
        stack.user_email = email
        assert took <= 60, f"quotes took {took:.0f} s to reach MongoDB"
        assert page_took <= 60, f"the page showed every latest price {page_took:.0f} s after up"
    finally:
        client.close()


def _readme_command(prefix: str) -> list[str]:
    """The command exactly as the README types it."""
    for line in (ROOT / "README.md").read_text().splitlines():
        command = line.split("#", 1)[0].strip()
        if command.startswith(prefix):
            return command.split()
    raise AssertionError(f"README has no `{prefix}` line")


def test_the_two_manual_commands_work_as_the_readme_types_them(stack: StackRun) -> None:
    batch = _readme_command("docker exec batch python batch/daily_aggregation.py")
    assert batch == ["docker", "exec", "batch", "python", "batch/daily_aggregation.py"]
    started = time.monotonic()
    proc = stack.engine.docker(*batch[1:], check=False, timeout=300)
    stack.timed("docker exec batch python batch/daily_aggregation.py", started)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # Today's rows, read from the host as the least-privilege user with the compose
    # default password: the init contract ran schema and users.
    conn = pymysql.connect(host="127.0.0.1", port=stack.ports["MYSQL_HOST_PORT"], user=DEFAULTS.mysql_user,
                           password=DEFAULTS.mysql_password, database=DEFAULTS.mysql_database, connect_timeout=10)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT symbol, close_price FROM daily_aggregates WHERE date = %s",
                        (utc_now().astimezone(DEFAULTS.tz).date(),))
            rows = dict(cur.fetchall())
    finally:
        conn.close()
    assert set(rows) == set(SYMBOLS), rows
    assert all(price > 0 for price in rows.values()), rows

    news = _readme_command("docker exec news python articles/daily_news.py")
    assert news == ["docker", "exec", "news", "python", "articles/daily_news.py"]
    started = time.monotonic()
    proc = stack.engine.docker(*news[1:], check=False, timeout=300)
    stack.timed("docker exec news python articles/daily_news.py", started)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "digests written to /app/outbox" in out, out[-3000:]
    assert f"digest for {stack.user_email} written to /app/outbox/" in out, out[-3000:]
    # Every source read (the recorded feeds of the feeds stand-in), some articles among them.
    summary = re.search(r"done: (\d+) articles \((\d+) new\), (\d+) source failures", out)
    assert summary and int(summary.group(1)) > 0 and summary.group(3) == "0", out[-3000:]
    stack.notes.append(f"news: {summary.group(1)} articles from the recorded feeds, 0 source failures")
    # The README's look at the outbox, and the file is the non-root user's.
    listing = stack.engine.docker("exec", "news", "ls", "outbox").stdout.split()
    digest = [name for name in listing if name.startswith("digest-") and stack.user_email in name]
    assert digest and digest[0].endswith(".eml"), listing
    owner = stack.engine.docker("exec", "news", "stat", "-c", "%u %U", f"outbox/{digest[0]}").stdout.split()
    assert owner == ["10001", "app"], owner


def test_every_service_ships_its_logs_to_elasticsearch(stack: StackRun) -> None:
    """The product's log shipper, unchanged, against the stand-in (through its media-type proxy)."""
    url = f"http://127.0.0.1:{stack.ports['ES_HOST_PORT']}/{DEFAULTS.es_log_index}/_count"

    def count(service: str) -> int:
        resp = requests.post(url, json={"query": {"term": {"service": service}}}, timeout=10)
        resp.raise_for_status()
        return int(resp.json()["count"])

    for service in ROLES:
        wait_for(lambda service=service: count(service) > 0, timeout=60, interval=1,
                 what=f"{service}'s log records in {DEFAULTS.es_log_index}")
    stack.notes.append("logs in Elasticsearch: " + ", ".join(f"{s} {count(s)}" for s in ROLES))


def _batches(text: str) -> list[tuple[int, int, list[str]]]:
    """(stored, already present, symbols) of each consumer batch line."""
    out = []
    for line in text.splitlines():
        m = BATCH_LINE.search(line)
        if m:
            symbols = [item.split()[0] for item in m.group(5).split(" (+")[0].split(", ") if item.strip() != "-"]
            out.append((int(m.group(2)), int(m.group(3)), symbols))
    return out


def _producer_ticks(stack: StackRun, since: str) -> int:
    return stack.project.logs("producer", since).count("tick: ")


def test_three_consumers_share_the_three_partitions(stack: StackRun) -> None:
    started = time.monotonic()
    stack.project.run("up", "-d", "--wait", "--scale", "consumer=3")
    consumers = sorted(c["Name"] for c in _containers(stack) if c["Service"] == "consumer" and c["State"] == "running")
    assert len(consumers) == 3, consumers

    # Wait out the rebalance: every member has stored a batch since the scale-up.
    scaled_at = _utc_now()
    wait_for(lambda: all(_batches(stack.project.logs(c, scaled_at)) for c in consumers), timeout=120, interval=2,
             what="a batch stored by each of the three consumers")
    # Then two whole producer ticks with the group settled.
    window = _utc_now()
    wait_for(lambda: _producer_ticks(stack, window) >= 2, timeout=60, interval=1, what="two producer ticks")
    wait_for(lambda: sum(len(b[2]) for c in consumers for b in _batches(stack.project.logs(c, window)))
             >= 2 * len(SYMBOLS), timeout=30, interval=1, what="the two ticks stored")
    stack.timed("--scale consumer=3 (rebalance + two ticks)", started)

    owned: dict[str, set[str]] = {}
    for c in consumers:
        batches = _batches(stack.project.logs(c, window))
        assert sum(b[1] for b in batches) == 0, f"{c} re-read quotes another member had stored: {batches}"
        owned[c] = {s for b in batches for s in b[2]}
    assert all(owned.values()), f"a consumer got no partition's quotes: {owned}"
    for a in consumers:
        for b in consumers:
            if a < b:
                assert not owned[a] & owned[b], f"{a} and {b} both consumed {owned[a] & owned[b]}"
    assert set().union(*owned.values()) == set(SYMBOLS), owned
    client, db = stack.mongo()
    try:
        doubled = list(db.realtime_prices.aggregate([
            {"$group": {"_id": {"s": "$symbol", "t": "$timestamp"}, "n": {"$sum": 1}}}, {"$match": {"n": {"$gt": 1}}}]))
    finally:
        client.close()
    assert doubled == []
    stack.notes.append("scale: " + "; ".join(f"{c.rsplit('-', 1)[-1]}: {','.join(sorted(s))}"
                                             for c, s in owned.items()))


def _utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_restart_mongodb_loses_no_quote(stack: StackRun) -> None:
    client, db = stack.mongo()
    try:
        before = {(d["symbol"], d["timestamp"]) for d in db.realtime_prices.find({}, {"symbol": 1, "timestamp": 1})}
        assert before
    finally:
        client.close()
    started = time.monotonic()
    stack.project.run("restart", "mongodb")
    wait_for(lambda: any(c["Service"] == "mongodb" and c.get("Health") == "healthy" for c in _containers(stack)),
             timeout=120, interval=1, what="mongodb healthy again")
    stack.timed("docker compose restart mongodb (until healthy)", started)
    client, db = stack.mongo()
    try:
        after = {(d["symbol"], d["timestamp"]) for d in db.realtime_prices.find({}, {"symbol": 1, "timestamp": 1})}
        assert before <= after, f"{len(before - after)} quotes lost in the restart"
        # The consumers carry on writing (their retry reconnected).
        wait_for(lambda: db.realtime_prices.count_documents({}) >= len(after) + len(SYMBOLS), timeout=60, interval=1,
                 what="new quotes stored after the restart")
    finally:
        client.close()


def test_stop_producer_flushes_and_every_delivered_quote_is_stored_once(stack: StackRun) -> None:
    started = time.monotonic()
    stack.project.run("stop", "producer")
    stack.timed("docker compose stop producer", started)
    lines = [line for line in stack.project.logs("producer").splitlines() if line.strip()]
    assert any("stopping: flushing the producer" in line for line in lines[-3:]), lines[-5:]
    m = STOPPED_LINE.search(lines[-1])
    assert m, f"the producer's last line is not its flush summary: {lines[-1]!r}"
    delivered, not_delivered, unsent = (int(g) for g in m.groups())
    assert (not_delivered, unsent) == (0, 0), lines[-1]
    assert len(stack.project.logs("producer").split("producer stopped:")) == 2, "the producer ran more than once"
    client, db = stack.mongo()
    try:
        # Across the scale-up and the MongoDB restart: every delivered quote stored, once.
        wait_for(lambda: db.realtime_prices.count_documents({}) >= delivered, timeout=60, interval=1,
                 what=f"{delivered} delivered quotes in MongoDB")
        stored = db.realtime_prices.count_documents({})
    finally:
        client.close()
    assert stored == delivered, f"{delivered} delivered, {stored} stored"
    stack.notes.append(f"producer: {delivered} quotes delivered, {stored} in realtime_prices, 0 lost, 0 doubled")
    stats = stack.engine.docker("stats", "--no-stream", "--format", "{{.Name}} {{.MemUsage}}").stdout
    (ARTIFACTS / "docker-stats.txt").write_text(stats)
    stack.notes.append("memory (docker stats, producer stopped, 3 consumers): "
                       + ", ".join(f"{n} {u.split(' / ')[0]}"
                                   for n, _, u in (line.partition(" ") for line in stats.splitlines())))


def test_the_services_logged_no_error(stack: StackRun) -> None:
    """Over the whole run (start, scale-up, MongoDB restart, producer stop): no ERROR,
    CRITICAL or traceback from any of the six services."""
    problems = []
    for service in ROLES:
        text = stack.project.run("logs", "--no-color", service).stdout
        problems += [line for line in text.splitlines() if ERROR_LINE.search(line)]
    assert problems == [], "\n".join(problems[:30])
    # The hour that once turned CI red: started after 08:00 New York, the news container
    # caught today's run up at start, and it went through.
    assert stack.instant is not None
    local = stack.instant.astimezone(DEFAULTS.tz)
    if local.hour >= 8:
        news = stack.project.run("logs", "--no-color", "news").stdout
        assert "was missed (container down?): running it now" in news, news[-3000:]
        assert f"daily news run for {local.date().isoformat()} done" in news, news[-3000:]
        stack.notes.append(f"news: start-up catch-up of {local.date()} 08:00 ran and logged no error")


def test_down_v_leaves_nothing_behind(stack: StackRun) -> None:
    started = time.monotonic()
    for service in STARTED:
        (ARTIFACTS / f"{service}.log").write_text(stack.project.run("logs", "--no-color", service, check=False).stdout)
    stack.project.run("down", "-v")
    stack.down_done = True
    stack.timed("docker compose down -v", started)
    assert stack.project.leftovers() == {}
    assert stack.project.ps() == []
