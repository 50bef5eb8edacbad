"""database/mysql_schema.sql on the real MariaDB."""

from __future__ import annotations

import datetime as dt

import pymysql
import pytest

from database.mysql import apply_schema
from tests.conftest import MYSQL, mysql_root


def test_schema_loads_twice_and_design_queries_run(mysql_db: str) -> None:
    conn = mysql_root()
    apply_schema(conn, mysql_db)  # second time (the fixture ran it once)
    conn.select_db(mysql_db)
    with conn.cursor() as cur:
        today = dt.date.today()
        for day, sym in [(today, "AAPL"), (today - dt.timedelta(days=1), "AAPL"), (today, "MSFT")]:
            cur.execute(
                "INSERT INTO daily_aggregates (symbol, date, open_price, close_price, high_price, low_price, avg_price,"
                " total_volume, avg_volume, volatility, daily_change_pct, tick_count, source)"
                " VALUES (%s, %s, 100, 101, 102, 99, 100.5, 1000, 10, 0.5, 1.0, 100, 'simulated')",
                (sym, day),
            )
        cur.execute("SELECT * FROM daily_aggregates ORDER BY date DESC LIMIT 10;")
        rows = cur.fetchall()
        assert len(rows) == 3 and rows[0]["date"] == dt.date.today()
        cur.execute("SELECT symbol, avg_price, daily_change_pct FROM daily_aggregates WHERE date = CURDATE();")
        assert sorted(r["symbol"] for r in cur.fetchall()) == ["AAPL", "MSFT"]
        with pytest.raises(pymysql.err.IntegrityError):
            cur.execute(
                "INSERT INTO daily_aggregates (symbol, date, open_price, close_price, high_price, low_price, avg_price,"
                " source)"
                " VALUES ('AAPL', CURDATE(), 1, 1, 1, 1, 1, 'real')"
            )
        cur.execute(
            "SELECT DATA_TYPE FROM information_schema.COLUMNS WHERE TABLE_SCHEMA=%s AND TABLE_NAME='daily_aggregates'"
            " AND COLUMN_NAME IN ('open_price','close_price','avg_price')", (mysql_db,))
        assert {r["DATA_TYPE"] for r in cur.fetchall()} == {"decimal"}
    conn.close()


def _connect_as(user: str, password: str, db: str) -> pymysql.Connection:
    return pymysql.connect(host=MYSQL["host"], port=MYSQL["port"], user=user, password=password, database=db,
                           autocommit=True)


def test_grafana_user_reads_but_cannot_write(mysql_db: str) -> None:
    conn = _connect_as("grafana_reader", "grafana_dev_password", mysql_db)
    with conn.cursor() as cur:
        cur.execute("SELECT COUNT(*) FROM daily_aggregates")
        assert cur.fetchone() == (0,)
        for stmt in (
            "INSERT INTO alert_log (alert_key, symbol, rule, value, threshold, price, quote_timestamp, message)"
            " VALUES ('k', 'AAPL', 'price_change', 6, 5, 100, NOW(), 'x')",
            "DELETE FROM daily_aggregates",
            "DROP TABLE alert_log",
        ):
            with pytest.raises(pymysql.err.OperationalError) as err:
                cur.execute(stmt)
            assert err.value.args[0] in (1142, 1044)  # command denied
    conn.close()


def test_app_user_writes_rows_but_cannot_change_schema(mysql_db: str) -> None:
    conn = _connect_as("stock_app", "stock_app_dev_password", mysql_db)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO alert_log (alert_key, symbol, rule, value, threshold, price, quote_timestamp, message)"
            " VALUES ('k1', 'AAPL', 'price_change', 6, 5, 100, NOW(), 'x')"
        )
        with pytest.raises(pymysql.err.OperationalError):
            cur.execute("DROP TABLE alert_log")
    conn.close()
