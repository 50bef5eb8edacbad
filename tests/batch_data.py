"""Quote and row helpers of the batch tests (data only; fixtures are in tests/batch_support.py)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql
from pymongo.database import Database

from database.mongo.prices import insert_quotes


def quote(symbol: str, ts: datetime, price: float, volume: int = 100, source: str = "simulated") -> dict[str, Any]:
    return {"symbol": symbol, "timestamp": ts.astimezone(UTC), "price": price, "volume": volume,
            "source": source, "processed_at": ts.astimezone(UTC)}


def day_quotes(symbol: str, day: date, prices: list[float], tz: Any, *, start_hour: int = 10,
               step_seconds: int = 900, volume: int = 100, source: str = "simulated") -> list[dict[str, Any]]:
    """Quotes of one market day at `start_hour` local time, `step_seconds` apart."""
    start = datetime(day.year, day.month, day.day, start_hour, tzinfo=tz)
    return [quote(symbol, start + timedelta(seconds=i * step_seconds), p, volume + i, source)
            for i, p in enumerate(prices)]


def load(db: Database, docs: list[dict[str, Any]]) -> None:
    inserted, _ = insert_quotes(db, docs)
    assert inserted == len(docs)


def rows(conn: pymysql.Connection, sql: str, params: tuple = ()) -> list[dict[str, Any]]:
    with conn.cursor() as cur:
        cur.execute(sql, params)
        return list(cur.fetchall())
