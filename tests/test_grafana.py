"""Grafana provisioning: the datasource and the "Stock Market Analytics Dashboard".

Every panel's SQL is expanded the way Grafana's MySQL datasource expands it
(time macros, the `symbol` variable) and run, as the read-only grafana_reader
user, on a fresh MariaDB database filled by batch/backfill.py.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pymysql
import pytest
import yaml
from pymongo import MongoClient

from batch.backfill import backfill
from common.clock import utc_now
from config.settings import Settings
from tests.conftest import MYSQL

ROOT = Path(__file__).resolve().parents[1]
PROVISIONING = ROOT / "grafana" / "provisioning"
DASHBOARD = PROVISIONING / "dashboards" / "stock-analytics.json"
SYMBOLS = ["AAPL", "MSFT", "NVDA"]
TIME_SERIES_COLUMNS = ["time", "metric", "value"]
PANELS = {
    "Stock Price Trends (30 days)": ("timeseries", TIME_SERIES_COLUMNS),
    "Trading Volume (30 days)": ("timeseries", TIME_SERIES_COLUMNS),
    "Daily Change %": ("gauge", TIME_SERIES_COLUMNS),
    "RSI Indicator (30 days)": ("timeseries", TIME_SERIES_COLUMNS),
    "Stock Performance Summary": ("table", ["Symbol", "As of", "Close", "7d %", "30d %", "90d %",
                                           "Volatility (ann.) %", "Max drawdown 90d %", "RSI 14", "SMA 20",
                                           "Trend", "Source"]),
}


def datasource() -> dict[str, Any]:
    doc = yaml.safe_load((PROVISIONING / "datasources" / "mysql.yml").read_text())
    assert doc["apiVersion"] == 1
    (ds,) = doc["datasources"]
    return ds


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())


def panels() -> list[dict[str, Any]]:
    return dashboard()["panels"]


# --------------------------------------------------------------------------- files

def test_datasource_is_mysql_read_only_with_a_fixed_uid() -> None:
    ds = datasource()
    assert ds["type"] == "mysql" and ds["uid"] == "mysql-stock-analytics"
    assert ds["url"] == "mysql:3306"  # the compose service, inside port
    assert ds["user"] == "grafana_reader"
    assert ds["jsonData"]["database"] == "stock_analytics"
    # Grafana expands ${VAR} in provisioning files from its own environment.
    assert ds["secureJsonData"]["password"] == "${GRAFANA_DB_PASSWORD}"


def test_dashboard_provider_loads_the_folder_compose_mounts() -> None:
    doc = yaml.safe_load((PROVISIONING / "dashboards" / "dashboards.yml").read_text())
    (provider,) = doc["providers"]
    assert provider["type"] == "file"
    folder = provider["options"]["path"]
    compose = (ROOT / "docker-compose.yml").read_text()
    assert f"./grafana/provisioning/dashboards:{folder}:ro" in compose
    assert f"./grafana/provisioning/datasources:{Path(folder).parent}/datasources:ro" in compose
    assert "GRAFANA_DB_PASSWORD:" in compose.split("\n  grafana:")[1], "grafana needs the variable its datasource reads"


def test_grafana_has_no_default_admin_password_and_starts_through_its_wrapper() -> None:
    """Without GRAFANA_ADMIN_PASSWORD the wrapper generates one (run: tests/test_compose.py), then hands
    over to the image's own /run.sh; sign-up stays off."""
    service = yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]["grafana"]
    env = service["environment"]
    assert env["GF_SECURITY_ADMIN_PASSWORD"] == "${GRAFANA_ADMIN_PASSWORD:-}"
    assert env["GF_USERS_ALLOW_SIGN_UP"] == "false"
    script = service["entrypoint"][-1]
    assert f"./grafana/entrypoint.sh:{script}:ro,z" in service["volumes"]
    wrapper = (ROOT / "grafana" / "entrypoint.sh").read_text()
    assert wrapper.rstrip().endswith('exec /run.sh "$@"') and "GF_SECURITY_ADMIN_PASSWORD__FILE" in wrapper


def test_dashboard_has_the_design_panels_variable_and_refresh() -> None:
    dash = dashboard()
    assert dash["title"] == "Stock Market Analytics Dashboard"
    assert dash["refresh"] == "30s"
    by_title = {p["title"]: p for p in dash["panels"]}
    assert set(by_title) == set(PANELS)
    for title, (kind, _) in PANELS.items():
        assert by_title[title]["type"] == kind, title
    (var,) = dash["templating"]["list"]
    assert var["name"] == "symbol" and var["type"] == "query" and var["multi"] and var["includeAll"]
    assert re.fullmatch(r"SELECT DISTINCT symbol FROM daily_aggregates( ORDER BY symbol)?", var["query"])
    rsi = by_title["RSI Indicator (30 days)"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert {s["value"] for s in rsi} >= {30, 70}
    for title in ("Stock Price Trends (30 days)", "Trading Volume (30 days)", "RSI Indicator (30 days)"):
        assert by_title[title]["timeFrom"] == "30d", title


def test_every_query_names_the_provisioned_datasource() -> None:
    uid = datasource()["uid"]
    dash = dashboard()
    refs = [dash["templating"]["list"][0]["datasource"]]
    for panel in dash["panels"]:
        refs.append(panel["datasource"])
        refs += [t["datasource"] for t in panel["targets"]]
    assert refs and all(r == {"type": "mysql", "uid": uid} for r in refs), refs


# --------------------------------------------------------------------------- the SQL, run

def _sqlstring(values: list[str]) -> str:
    return ",".join("'" + v.replace("'", "''") + "'" for v in values)


ALL = None  # the variable's default selection, "All"


def expand(sql: str, start: dt.datetime, end: dt.datetime, symbols: list[str] | None) -> str:
    """What Grafana's MySQL datasource sends for `sql` (macros of grafana/pkg/tsdb/mysql).
    `symbols` None is "All": Grafana puts the variable's custom allValue in as it is
    (no quoting); without an allValue it would join every option, i.e. nothing at all
    (`IN ()`, a syntax error) while daily_aggregates is empty."""
    f, t = int(start.timestamp()), int(end.timestamp())
    sql = re.sub(r"\$__timeFilter\(([^)]+)\)", rf"\1 BETWEEN FROM_UNIXTIME({f}) AND FROM_UNIXTIME({t})", sql)
    sql = re.sub(r"\$__unixEpochFilter\(([^)]+)\)", rf"\1 >= {f} AND \1 <= {t}", sql)
    sql = sql.replace("$__timeFrom()", f"FROM_UNIXTIME({f})").replace("$__timeTo()", f"FROM_UNIXTIME({t})")
    sql = sql.replace("$__unixEpochFrom()", str(f)).replace("$__unixEpochTo()", str(t))
    # Multi-value variables: quoted and comma-joined (the default for SQL datasources, and :sqlstring).
    value = dashboard()["templating"]["list"][0]["allValue"] if symbols is ALL else _sqlstring(symbols)
    for form in ("${symbol:sqlstring}", "${symbol}", "$symbol"):
        sql = sql.replace(form, value)
    assert "$" not in sql, f"unexpanded macro or variable: {sql}"
    return sql


@pytest.fixture(scope="module")
def mongo_db(mongo: Any) -> Iterator[Any]:
    client: MongoClient = MongoClient(mongo.uri, tz_aware=True)
    name = f"grafana_{uuid.uuid4().hex[:8]}"
    yield client[name]
    client.drop_database(name)
    client.close()


@pytest.fixture
def backfilled(mysql_db: str, mongo_db: Any) -> str:
    """The test database after batch/backfill.py: 60 simulated trading days of three symbols."""
    settings = Settings(_env_file=None, stock_symbols=SYMBOLS, backfill_days=60, simulation_seed=7,  # type: ignore[call-arg]
                        log_to_elasticsearch=False, alpha_vantage_api_key="")
    conn = pymysql.connect(**MYSQL, database=mysql_db, autocommit=True, cursorclass=pymysql.cursors.DictCursor)
    try:
        summary = backfill(settings, db=mongo_db, conn=conn, today=utc_now().astimezone(settings.tz).date())
        assert sorted(summary.symbols) == SYMBOLS
    finally:
        conn.close()
    return mysql_db


def run_as_grafana(database: str, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    # grafana_reader (SELECT only) as the datasource connects; session in UTC like its timezone setting.
    conn = pymysql.connect(host=MYSQL["host"], port=MYSQL["port"], user="grafana_reader",
                           password="grafana_dev_password", database=database, connect_timeout=5)
    try:
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.execute(sql)
            return [d[0] for d in cur.description], list(cur.fetchall())
    finally:
        conn.close()


@pytest.mark.parametrize("picked", [ALL, SYMBOLS, ["MSFT"]], ids=["all", "every-symbol-ticked", "one-symbol"])
def test_every_panel_query_returns_the_columns_its_panel_expects(backfilled: str, picked: list[str] | None) -> None:
    now = utc_now()
    start = now - dt.timedelta(days=30)  # the panels' timeFrom "30d" (also the dashboard's range)
    selected = SYMBOLS if picked is ALL else picked
    for panel in panels():
        kind, expected = PANELS[panel["title"]]
        (target,) = panel["targets"]
        assert target["rawQuery"] and target["editorMode"] == "code"
        columns, rows = run_as_grafana(backfilled, expand(target["rawSql"], start, now, picked))
        assert columns == expected, panel["title"]
        assert rows, f"{panel['title']}: no rows"
        if target["format"] == "time_series":
            times = [r[0] for r in rows]
            assert all(isinstance(t, dt.datetime) for t in times), panel["title"]
            assert times == sorted(times), f"{panel['title']}: Grafana needs rows sorted by time"
            assert {r[1] for r in rows} == set(selected), panel["title"]
            assert all(isinstance(r[2], (int, float, Decimal)) for r in rows), panel["title"]
            first, last = start.replace(tzinfo=None) - dt.timedelta(days=1), now.replace(tzinfo=None)
            assert all(first <= t <= last for t in times) or kind == "gauge", f"{panel['title']}: outside the 30 days"
        else:
            assert target["format"] == "table"
            assert [r[0] for r in rows] == sorted(selected)
        if panel["title"] == "Daily Change %":
            assert len(rows) == len(selected), "one gauge per symbol: its latest day"
        if panel["title"] == "RSI Indicator (30 days)":
            assert all(0 <= float(r[2]) <= 100 for r in rows)
        if panel["title"] == "Stock Price Trends (30 days)":
            assert len(rows) >= 15 * len(selected), "about 20 trading days per symbol in 30 days"


def test_symbol_variable_query_lists_the_symbols(backfilled: str) -> None:
    var = dashboard()["templating"]["list"][0]
    columns, rows = run_as_grafana(backfilled, var["query"])
    assert [r[0] for r in rows] == sorted(SYMBOLS)


def test_a_fresh_stack_with_no_daily_aggregates_renders_empty_panels_not_errors(mysql_db: str) -> None:
    """First start: daily_aggregates is empty, so the variable has no options and "All"
    is its custom allValue. Every panel's SQL still runs (no `IN ()`) and finds nothing."""
    var = dashboard()["templating"]["list"][0]
    assert var["includeAll"] and var.get("allValue"), "includeAll without allValue renders IN () when empty"
    assert run_as_grafana(mysql_db, var["query"])[1] == []
    now = utc_now()
    for panel in panels():
        (target,) = panel["targets"]
        sql = expand(target["rawSql"], now - dt.timedelta(days=30), now, ALL)
        assert not re.search(r"IN\s*\(\s*\)", sql), sql
        columns, rows = run_as_grafana(mysql_db, sql)
        assert columns == PANELS[panel["title"]][1], panel["title"]
        assert rows == [], panel["title"]
