"""What a value must be to fit a MySQL column, read from information_schema so the
limits are the schema's own (database/mysql_schema.sql), never a second copy of it.

A value that does not fit is refused before the INSERT with the column and the value
named: in strict mode MySQL would fail the statement ("Out of range value"), and a
NaN is not even valid SQL.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any

import pymysql

# Signed ranges of the integer types by byte size (unsigned: 0 .. 2 * high + 1).
_INT_BYTES = {"tinyint": 1, "smallint": 2, "mediumint": 3, "int": 4, "integer": 4, "bigint": 8}


@dataclass(frozen=True)
class ColumnLimit:
    """The values one column holds: numbers in [low, high] (DECIMAL: after rounding to
    `scale` places) or text of at most `max_chars` characters. None: not checked."""

    column: str
    low: Decimal | None = None
    high: Decimal | None = None
    scale: int | None = None
    max_chars: int | None = None

    @classmethod
    def of(cls, column: str, data_type: str, column_type: str, precision: int | None, scale: int | None,
           max_chars: int | None) -> ColumnLimit:
        data_type = data_type.lower()
        unsigned = "unsigned" in column_type.lower()
        if data_type == "decimal" and precision is not None:
            top = Decimal(10) ** (precision - (scale or 0)) - Decimal(1).scaleb(-(scale or 0))
            return cls(column, Decimal(0) if unsigned else -top, top, scale or 0)
        if data_type in _INT_BYTES:
            bits = 8 * _INT_BYTES[data_type]
            if unsigned:
                return cls(column, Decimal(0), Decimal(2**bits - 1), 0)
            return cls(column, Decimal(-(2 ** (bits - 1))), Decimal(2 ** (bits - 1) - 1), 0)
        if data_type in ("varchar", "char") and max_chars is not None:
            return cls(column, max_chars=max_chars)
        return cls(column)

    def problem(self, value: Any) -> str | None:
        """Why `value` does not fit, or None (NULL is the NOT NULL constraint's business)."""
        if value is None:
            return None
        if isinstance(value, str):
            if self.max_chars is not None and len(value) > self.max_chars:
                return f"{self.column} is longer than {self.max_chars} characters: {value[:40]!r}"
            return None
        if self.high is None or not isinstance(value, (int, float, Decimal)) or isinstance(value, bool):
            return None
        if isinstance(value, float) and not math.isfinite(value):
            return f"{self.column} is not a finite number: {value!r}"
        try:
            number = Decimal(value) if isinstance(value, (int, Decimal)) else Decimal(repr(value))
            if self.scale is not None:
                number = number.quantize(Decimal(1).scaleb(-self.scale), rounding=ROUND_HALF_UP)
        except InvalidOperation:  # beyond the context's precision: far beyond any column
            return f"{self.column} {value!r} does not fit the column"
        if self.low is not None and not self.low <= number <= self.high:
            return f"{self.column} {value!r} does not fit the column (range {self.low} .. {self.high})"
        return None


def row_problems(row: Mapping[str, Any], limits: Mapping[str, ColumnLimit]) -> list[str]:
    """Why the values of `row` do not fit their columns (empty: the row fits)."""
    found = (limits[name].problem(value) for name, value in row.items() if name in limits)
    return [p for p in found if p is not None]


def column_limits(conn: pymysql.Connection, table: str) -> dict[str, ColumnLimit]:
    """The limits of every column of `table` in the connection's database."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT COLUMN_NAME AS name, DATA_TYPE AS data_type, COLUMN_TYPE AS column_type, "
            "NUMERIC_PRECISION AS p, NUMERIC_SCALE AS s, CHARACTER_MAXIMUM_LENGTH AS n "
            "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s",
            (table,),
        )
        found = list(cur.fetchall())
    return {r["name"]: ColumnLimit.of(r["name"], r["data_type"], r["column_type"], r["p"], r["s"], r["n"])
            for r in found}
