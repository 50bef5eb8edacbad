"""Latency of the web app as realtime_prices grows: p50/p95 of /, /dashboard and
the JSON endpoints at each size, and the ratio of p95 at the largest size to p95
at the smallest (near 1 when every query walks its index).

    PYTHONPATH=. .venv/bin/python bench/bench_web.py --sizes 10000,1000000

Needs the machine's MariaDB (TEST_MYSQL_* like the tests) and starts its own
SecantusDB unless --mongo-uri points at a MongoDB. The app runs under gunicorn
exactly as in the container; the load comes from a second process. SecantusDB
is pure Python, so filling 1,000,000 quotes may take long: --fill-budget caps
the fill time per size and the report says which size was really reached.
"""

from __future__ import annotations

import argparse
import math
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import pymysql  # noqa: E402
import requests  # noqa: E402

from bench.webdata import seed_alert_log, seed_daily  # noqa: E402
from config.settings import Settings  # noqa: E402
from database.mongo import REALTIME_PRICES, get_db, make_client  # noqa: E402
from database.mysql import apply_schema  # noqa: E402
from database.setup_mongodb import ensure_indexes  # noqa: E402

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
STEP = timedelta(seconds=15)
ENDPOINTS = [
    "/",
    "/dashboard?symbol=AAPL&days=90",
    "/api/quotes/latest",
    "/api/quotes/AAPL/intraday?minutes=60",
    "/api/quotes/AAPL/recent?limit=60",
    "/api/daily/AAPL?days=90",
    "/api/performance",
    "/api/alerts?symbol=AAPL",
    "/api/news/AAPL",
]
MYSQL = {
    "host": os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("TEST_MYSQL_USER", "root"),
    "password": os.environ.get("TEST_MYSQL_PASSWORD", ""),
}


def quote_doc(symbol: str, ts: datetime, i: int) -> dict[str, Any]:
    price = round(100 * (1 + 0.02 * math.sin(i / 50)), 4)
    return {"symbol": symbol, "timestamp": ts, "price": price, "volume": 1000 + i % 500, "open": 100.0,
            "high": price, "low": price, "previous_close": 99.0, "change_percent": round(price - 99.0, 4),
            "price_change_pct": 0.0, "source": "simulated", "processed_at": ts}


def fill_quotes(db: Any, have: int, want: int, end: datetime, budget: float) -> int:
    """Top realtime_prices up to `want` quotes (spread over the symbols, 15 s apart,
    ending at `end`, going back in time); stops at the time budget. Returns the count."""
    coll = db[REALTIME_PRICES]
    started = time.monotonic()
    per_symbol_have = have // len(SYMBOLS)
    per_symbol_want = want // len(SYMBOLS)
    batch = 5000
    for lo in range(per_symbol_have, per_symbol_want, batch // len(SYMBOLS)):
        hi = min(lo + batch // len(SYMBOLS), per_symbol_want)
        docs = [quote_doc(s, end - STEP * i, i) for i in range(lo, hi) for s in SYMBOLS]
        coll.insert_many(docs, ordered=False)
        have = hi * len(SYMBOLS)
        if time.monotonic() - started > budget:
            print(f"  fill budget of {budget:.0f}s spent at {have:,} quotes", flush=True)
            break
    return have


def fill_mysql(settings: Settings) -> None:
    """90 trading days x the symbols in daily_aggregates and stock_performance, plus 50 alerts
    a symbol: the same seed data the web tests use."""
    now = datetime.now(UTC)
    seed_daily(settings, SYMBOLS, 90, now.date())
    for symbol in SYMBOLS:
        seed_alert_log(settings, symbol, now, n=50)


def plan_stages(db: Any, end: datetime) -> dict[str, str]:
    """The winning plan's stages of the two hot queries, as the server explains them."""
    queries = {
        "latest quote": {"find": REALTIME_PRICES, "filter": {"symbol": "AAPL"}, "sort": {"timestamp": -1}, "limit": 1},
        "intraday 1 h": {"find": REALTIME_PRICES,
                         "filter": {"symbol": "AAPL", "timestamp": {"$gte": end - timedelta(hours=1), "$lt": end}},
                         "sort": {"timestamp": 1}},
    }
    out = {}
    for name, cmd in queries.items():
        try:
            plan = db.command("explain", cmd)["queryPlanner"]["winningPlan"]
        except Exception as exc:  # a server without explain
            out[name] = f"explain unavailable: {exc}"
            continue
        stages = []
        while plan:
            stages.append(plan.get("stage", "?") + (f"({plan['indexName']})" if "indexName" in plan else ""))
            plan = plan.get("inputStage")
        out[name] = " <- ".join(stages)
    return out


def _worker(base: str, path: str, n: int) -> list[float]:
    session = requests.Session()
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        r = session.get(base + path, timeout=60)
        out.append((time.perf_counter() - t0) * 1000)
        if r.status_code != 200:
            raise RuntimeError(f"{path}: HTTP {r.status_code}")
    return out


def load(base: str, requests_per_endpoint: int, concurrency: int, queue: Any) -> None:
    """Runs in a second process: each endpoint hit by `concurrency` clients at once."""
    results: dict[str, list[float]] = {}
    with ThreadPoolExecutor(concurrency) as pool:
        for path in ENDPOINTS:
            _worker(base, path, 2)  # warm-up (connections, first plotly/template use)
            share = max(1, requests_per_endpoint // concurrency)
            futures = [pool.submit(_worker, base, path, share) for _ in range(concurrency)]
            results[path] = [ms for f in futures for ms in f.result()]
    queue.put(results)


def pct(values: list[float], p: float) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[int(p) - 1] if len(values) > 1 else values[0]


def run_load(base: str, n: int, concurrency: int) -> dict[str, list[float]]:
    queue: Any = mp.get_context("spawn").Queue()
    proc = mp.get_context("spawn").Process(target=load, args=(base, n, concurrency, queue))
    proc.start()
    results = queue.get(timeout=3600)
    proc.join()
    return results


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,1000000", help="comma list of realtime_prices sizes")
    ap.add_argument("--requests", type=int, default=80, help="requests per endpoint and size")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    ap.add_argument("--fill-budget", type=float, default=300, help="seconds allowed to fill one size")
    ap.add_argument("--mongo-uri", default="", help="use this MongoDB instead of starting SecantusDB")
    args = ap.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))

    mongo_server = None
    mongo_uri = args.mongo_uri
    if not mongo_uri:
        from scripts.servers import SecantusMongo
        mongo_server = SecantusMongo().start()
        mongo_uri = mongo_server.uri
    tag = uuid.uuid4().hex[:8]
    mysql_db = f"sas_bench_{tag}"
    root = pymysql.connect(**MYSQL, autocommit=True)
    apply_schema(root, mysql_db)
    settings = Settings(_env_file=None, mongo_uri=mongo_uri, mongo_db=f"bench_{tag}", mysql_host=MYSQL["host"],  # type: ignore[call-arg]
                        mysql_port=MYSQL["port"], mysql_user=MYSQL["user"], mysql_password=MYSQL["password"],
                        mysql_database=mysql_db)
    fill_mysql(settings)
    client = make_client(settings)
    db = get_db(client, settings)
    ensure_indexes(db)

    from scripts.waiting import free_port
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT), MONGO_URI=mongo_uri, MONGO_DB=settings.mongo_db,
               MYSQL_HOST=MYSQL["host"], MYSQL_PORT=str(MYSQL["port"]), MYSQL_USER=MYSQL["user"],
               MYSQL_PASSWORD=MYSQL["password"], MYSQL_DATABASE=mysql_db, FLASK_SECRET_KEY="bench-" + tag * 4,
               LOG_TO_ELASTICSEARCH="false", LOG_LEVEL="WARNING", GUNICORN_BIND=f"127.0.0.1:{port}",
               GUNICORN_WORKERS=str(args.workers))
    gunicorn = subprocess.Popen(
        [str(Path(sys.executable).parent / "gunicorn"), "--config", "flask_web_app/gunicorn.conf.py",
         "--access-logfile", "/dev/null", "flask_web_app.app:create_app()"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if requests.get(base + "/healthz", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise SystemExit("gunicorn did not come up")
            time.sleep(0.2)

        end = datetime.now(UTC).replace(microsecond=0)
        have = 0
        table: dict[int, dict[str, list[float]]] = {}
        for size in sizes:
            t0 = time.monotonic()
            have = fill_quotes(db, have, size, end, args.fill_budget)
            stored = db[REALTIME_PRICES].estimated_document_count()
            print(f"size {size:,}: {stored:,} quotes stored (fill {time.monotonic() - t0:.0f}s); "
                  f"load {args.requests} req/endpoint, {args.concurrency} clients", flush=True)
            for name, stages in plan_stages(db, end).items():
                print(f"  plan {name}: {stages}", flush=True)
            results = run_load(base, args.requests, args.concurrency)
            table[stored] = results
            for path, ms in results.items():
                print(f"  {path:42s} p50 {statistics.median(ms):8.1f} ms   p95 {pct(ms, 95):8.1f} ms", flush=True)

        if len(table) >= 2:
            small, big = min(table), max(table)
            print(f"\np95 ratio {big:,} / {small:,} quotes:")
            for path in ENDPOINTS:
                ratio = pct(table[big][path], 95) / pct(table[small][path], 95)
                print(f"  {path:42s} {ratio:5.2f}")
    finally:
        gunicorn.send_signal(signal.SIGTERM)
        gunicorn.wait(timeout=30)
        client.drop_database(settings.mongo_db)
        client.close()
        with root.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{mysql_db}`")
        root.close()
        if mongo_server is not None:
            mongo_server.stop()


if __name__ == "__main__":
    main()
