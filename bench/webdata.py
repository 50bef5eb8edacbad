"""Data for the web app's tests and benchmark: quotes, daily rows, alerts, news.

Shapes follow docs/CONTRIBUTING.md; every write goes through the database/
query modules where one exists (quotes), else plain inserts of test rows.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pymysql

from batch.indicators import daily_indicators
from config.settings import Settings
from database.mongo import ALERT_HISTORY, NEWS_ARTICLES, get_db, make_client
from database.mongo.prices import insert_quotes

BASE = {"AAPL": 260.0, "GOOGL": 190.0, "MSFT": 430.0, "AMZN": 220.0, "TSLA": 400.0, "META": 610.0, "NVDA": 140.0}


def web_settings(mongo_uri: str, mysql: dict[str, Any], mysql_db: str, tag: str, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "mongo_uri": mongo_uri, "mongo_db": f"stock_market_{tag}",
        "mysql_host": mysql["host"], "mysql_port": mysql["port"], "mysql_user": mysql["user"],
        "mysql_password": mysql["password"], "mysql_database": mysql_db,
        "flask_secret_key": f"test-secret-{tag}-0123456789abcdef", "log_to_elasticsearch": False,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def quote(symbol: str, ts: datetime, i: int = 0, source: str = "simulated") -> dict[str, Any]:
    base = BASE.get(symbol, 100.0)
    price = round(base * (1 + 0.01 * math.sin(i / 7)), 4)
    prev = round(base * 0.99, 4)
    return {
        "symbol": symbol, "timestamp": ts, "price": price, "volume": 1000 + 37 * i,
        "open": base, "high": max(base, price), "low": min(base, price), "previous_close": prev,
        "change_percent": round((price - prev) / prev * 100, 4), "price_change_pct": 0.0,
        "source": source, "processed_at": ts,
    }


def seed_quotes(settings: Settings, symbols: list[str], per_symbol: int, end: datetime,
                step: timedelta = timedelta(seconds=15), source: str = "simulated", batch: int = 2000) -> int:
    client = make_client(settings)
    try:
        db = get_db(client, settings)
        docs: list[dict[str, Any]] = []
        total = 0
        for symbol in symbols:
            for i in range(per_symbol):
                docs.append(quote(symbol, end - step * (per_symbol - 1 - i), i, source))
                if len(docs) >= batch:
                    total += insert_quotes(db, docs)[0]
                    docs = []
        if docs:
            total += insert_quotes(db, docs)[0]
        return total
    finally:
        client.close()


def seed_mongo_extras(settings: Settings, symbol: str, now: datetime) -> None:
    client = make_client(settings)
    try:
        db = get_db(client, settings)
        db[NEWS_ARTICLES].insert_many([
            {"url": f"https://news.example/{symbol}/{i}", "title": f"{symbol} headline {i} <b>not bold</b>",
             "summary": "summary", "source": "Example News", "published_at": now - timedelta(hours=i),
             "published_date": (now - timedelta(hours=i)).date().isoformat(), "symbols": [symbol],
             "sentiment": {"label": "positive", "score": 0.8}, "fetched_at": now}
            for i in range(3)
        ])
        db[ALERT_HISTORY].insert_one({
            "alert_key": f"{symbol}|price_change|{now.isoformat()}", "symbol": symbol, "rule": "price_change",
            "value": 6.1, "threshold": 5.0, "price": 280.0, "quote_timestamp": now,
            "message": f"{symbol} moved +6.10%", "source": "simulated", "email_status": "disabled",
            "email_error": None, "created_at": now,
        })
    finally:
        client.close()


def mysql_conn(settings: Settings) -> pymysql.Connection:
    return pymysql.connect(host=settings.mysql_host, port=settings.mysql_port, user=settings.mysql_user,
                           password=settings.mysql_password, database=settings.mysql_database, autocommit=True)


def seed_daily(settings: Settings, symbols: list[str], days: int, last: date) -> None:
    """`days` weekday rows per symbol ending at `last`, with SMA-20 / RSI-14 once defined."""
    rows = []
    perf = []
    for symbol in symbols:
        base = BASE.get(symbol, 100.0)
        d = last
        dates: list[date] = []
        while len(dates) < days:
            if d.weekday() < 5:
                dates.append(d)
            d -= timedelta(days=1)
        dates.reverse()
        closes: list[float] = []
        for i, day in enumerate(dates):
            close = round(base * (1 + 0.05 * math.sin(i / 9)), 4)
            open_ = round(close * 0.995, 4)
            closes.append(close)
            sma = round(sum(closes[-20:]) / 20, 4) if len(closes) >= 20 else None
            rsi = round(50 + 30 * math.sin(i / 5), 3) if len(closes) >= 15 else None
            rows.append((symbol, day, open_, close, close * 1.01, open_ * 0.99, (open_ + close) / 2,
                         1_000_000 + 1000 * i, 1000.0, 0.5, round((close - open_) / open_ * 100, 4), sma, rsi,
                         100, "simulated"))
        # EMA-20, Bollinger and MACD as the batch computes them (rounded like their columns).
        for k, found in enumerate(daily_indicators(closes)):
            extra = [None if v is None else round(v, 6) for v in (found.ema_20, found.bb_middle, found.bb_upper,
                                                                   found.bb_lower, found.macd, found.macd_signal,
                                                                   found.macd_hist)]
            rows[len(rows) - len(closes) + k] += tuple(extra)
        perf.append((symbol, dates[-1], closes[-1], 1.5, -2.25, 4.0, 22.5, -8.0, 55.0, closes[-1] * 0.98,
                     "above_sma", "simulated"))
    conn = mysql_conn(settings)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO daily_aggregates (symbol, date, open_price, close_price, high_price, low_price, "
                "avg_price, total_volume, avg_volume, volatility, daily_change_pct, sma_20, rsi_14, tick_count, "
                "source, ema_20, bb_middle, bb_upper, bb_lower, macd, macd_signal, macd_hist) "
                f"VALUES ({', '.join(['%s'] * 22)})", rows)
            cur.executemany(
                "INSERT INTO stock_performance (symbol, as_of_date, latest_close, return_7d_pct, return_30d_pct, "
                "return_90d_pct, annualized_volatility_pct, max_drawdown_90d_pct, rsi_14, sma_20, trend, source) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", perf)
    finally:
        conn.close()


def seed_alert_log(settings: Settings, symbol: str, now: datetime, n: int = 2) -> None:
    conn = mysql_conn(settings)
    try:
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO alert_log (alert_key, symbol, rule, value, threshold, price, quote_timestamp, message, "
                "source, email_status, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)",
                [(f"{symbol}|volume_spike|{i}", symbol, "volume_spike", 3.2, 2.0, 261.5,
                  (now - timedelta(minutes=i)).replace(tzinfo=None), f"{symbol} volume 3.2x average <script>x</script>",
                  "simulated", "disabled", (now - timedelta(minutes=i)).replace(tzinfo=None)) for i in range(n)])
    finally:
        conn.close()


def utcnow() -> datetime:
    # Millisecond precision: what MongoDB stores.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


def csrf_token(client: Any, url: str) -> str:
    """The CSRF token a form page hands out (the test client posts it back like a browser)."""
    html = client.get(url).get_data(as_text=True)
    m = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert m, f"no CSRF token on {url}"
    return m.group(1)
