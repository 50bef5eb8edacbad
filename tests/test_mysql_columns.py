"""database/mysql/columns.py: column limits (pure) and as read from the real schema."""

from __future__ import annotations

from decimal import Decimal

import pytest

from database.mysql.columns import ColumnLimit, column_limits, row_problems
from tests.conftest import mysql_root

PRICE = ColumnLimit.of("open_price", "decimal", "decimal(14,4)", 14, 4, None)
VOLUME = ColumnLimit.of("total_volume", "bigint", "bigint(20) unsigned", 20, 0, None)
WEEK = ColumnLimit.of("iso_week", "tinyint", "tinyint(4)", 3, 0, None)
SYMBOL = ColumnLimit.of("symbol", "varchar", "varchar(16)", None, None, 16)


@pytest.mark.parametrize(("limit", "value"), [
    (PRICE, 9999999999.9999), (PRICE, -9999999999.9999), (PRICE, 0.00004), (PRICE, Decimal("261.05")),
    (PRICE, None), (VOLUME, 0), (VOLUME, 2**64 - 1), (WEEK, 127), (WEEK, -128), (SYMBOL, "A" * 16),
])
def test_values_that_fit(limit: ColumnLimit, value: object) -> None:
    assert limit.problem(value) is None


@pytest.mark.parametrize(("limit", "value", "reason"), [
    (PRICE, 1e10, "open_price 10000000000.0 does not fit the column (range -9999999999.9999 .. 9999999999.9999)"),
    (PRICE, 9999999999.99995, "does not fit"),  # rounds up past the top
    (PRICE, 1e300, "open_price 1e+300 does not fit the column"),
    (PRICE, float("nan"), "open_price is not a finite number: nan"),
    (PRICE, float("-inf"), "not a finite number"),
    (VOLUME, -1, "total_volume -1 does not fit the column (range 0 .. 18446744073709551615)"),
    (VOLUME, 2**64, "does not fit"),
    (WEEK, 128, "iso_week 128 does not fit"),
    (SYMBOL, "A" * 17, "symbol is longer than 16 characters"),
])
def test_values_that_do_not_fit_are_named(limit: ColumnLimit, value: object, reason: str) -> None:
    assert reason in (limit.problem(value) or "")


def test_limits_come_from_the_schema(mysql_db: str) -> None:
    conn = mysql_root(mysql_db)
    try:
        limits = column_limits(conn, "daily_aggregates")
    finally:
        conn.close()
    assert limits["open_price"] == PRICE
    assert limits["total_volume"].high == 2**64 - 1 and limits["tick_count"].high == 2**32 - 1
    assert limits["symbol"].max_chars == 16
    assert row_problems({"open_price": 1e12, "total_volume": 5, "symbol": "AAPL", "date": None}, limits) == [
        "open_price 1000000000000.0 does not fit the column (range -9999999999.9999 .. 9999999999.9999)"]
