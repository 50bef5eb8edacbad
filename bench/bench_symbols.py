"""Benchmark: 500 registered symbols through the pipeline, on recorded Yahoo answers.

    python bench/bench_symbols.py [--minutes 10] [--symbols 500] [--requests 200]
    python bench/bench_symbols.py --minutes 2          # a short run

Starts Tansu (Kafka), SecantusDB (MongoDB) and a local Yahoo quote server (scripts/yahoo_server.py,
answering every symbol from the recorded AAPL entry of tests/fixtures/yahoo_quote_open.json, read as
data), uses the machine's MariaDB (TEST_MYSQL_* like the tests), registers STOCK_SYMBOLS plus
enough user-added tickers (50 per user, MAX_SYMBOLS_PER_USER) to reach --symbols, then runs the
producer (QUOTE_SOURCES=yahoo,simulated, the default YAHOO_REFRESH_SECONDS and POLL_INTERVAL_SECONDS)
and the consumer (REJECT_UNKNOWN_SYMBOLS on: every symbol accepted through the registry) as their
containers run them, for --minutes. Printed:

- Yahoo quote requests per minute (at most 99 symbols a request), and the expected
  ceil(symbols / 99) x 60 / YAHOO_REFRESH_SECONDS
- Kafka messages/s (quotes stored by the consumer over the window; every quote goes through Kafka)
- consumer lag sampled every 10 s: quotes the producer queued (its "tick: N quotes queued" lines)
  minus quotes stored; max and at the end, and how long the consumer took to reach 0 after the stop
- the daily job (batch/daily_aggregation.run for today) on all symbols against the same job on
  the 7 defaults alone (their quotes copied to a database where only they are registered)
- p50/p95 of `/` and `/api/quotes/latest` for a signed-in user following 50 symbols, against a
  signed-out visitor (the 7 defaults), under gunicorn as in the container

Not part of the test suite; a bench prints figures, it asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import re
import signal
import statistics
import string
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from anywhere

import pymysql  # noqa: E402
import requests  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from common.clock import utc_now  # noqa: E402
from config.settings import Settings  # noqa: E402
from database.mongo import REALTIME_PRICES, SYMBOLS  # noqa: E402
from database.mongo.symbols import add_follower, seed_symbols  # noqa: E402
from database.mongo.users import confirm_email, create_user  # noqa: E402
from database.mysql import apply_schema, connect  # noqa: E402
from scripts.processes import ServiceProcess  # noqa: E402
from scripts.servers import LOG_DIR, SecantusMongo, TansuBroker  # noqa: E402
from scripts.waiting import free_port, wait_for  # noqa: E402
from scripts.yahoo_server import QUOTE, LocalYahoo  # noqa: E402

DEFAULTS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
PER_USER = 50
RECORDED = ROOT / "tests" / "fixtures" / "yahoo_quote_open.json"  # data, not an import of tests/
MYSQL = {"host": os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"), "port": int(os.environ.get("TEST_MYSQL_PORT", "3306")),
         "user": os.environ.get("TEST_MYSQL_USER", "root"), "password": os.environ.get("TEST_MYSQL_PASSWORD", "")}
PASSWORD = "Bench-password-58"
_QUEUED = re.compile(r"tick: (\d+) quotes queued")


def added_tickers(count: int) -> list[str]:
    """Well-formed tickers that are none of the defaults: BAAA, BAAB, ..."""
    letters = string.ascii_uppercase
    return ["B" + "".join(t) for t in itertools.islice(itertools.product(letters, repeat=3), count)]


def register(db: Any, total: int) -> tuple[list[str], list[str]]:
    """The defaults plus user-added tickers up to `total`; returns (added tickers, user ids)."""
    seed_symbols(db, DEFAULTS, utc_now())
    tickers = added_tickers(max(0, total - len(DEFAULTS)))
    users = [f"bench-user-{i}" for i in range(math.ceil(len(tickers) / PER_USER))]
    for i, symbol in enumerate(tickers):
        outcome = add_follower(db, symbol, users[i // PER_USER], name=f"{symbol} Bench Inc.", simulated=False,
                               now=utc_now(), max_symbols=total, max_per_user=PER_USER)
        assert outcome == "added", (symbol, outcome)
    return tickers, users


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


def queued(output: str) -> int:
    return sum(int(n) for n in _QUEUED.findall(output))


def stream(env: dict[str, str], db: Any, yahoo: LocalYahoo, minutes: float) -> dict[str, Any]:
    """Producer and consumer for `minutes`: Yahoo requests, messages/s, consumer lag."""
    prices = db[REALTIME_PRICES]
    consumer = ServiceProcess("streaming/consumer.py", env, name="bench-symbols-consumer").start()
    producer = ServiceProcess("streaming/producer.py", env, name="bench-symbols-producer").start()
    try:
        wait_for(lambda: prices.count_documents({}) > 0, timeout=180, what="quotes in MongoDB")
        t0, requests0, stored0 = time.monotonic(), yahoo.count(QUOTE), prices.count_documents({})
        lags: list[int] = []
        while time.monotonic() - t0 < minutes * 60:
            time.sleep(10)  # a bench samples on a clock; not a test
            lags.append(queued(producer.output()) - prices.count_documents({}))
            print(f"  {time.monotonic() - t0:6.0f} s: {prices.count_documents({}):,} stored, lag {lags[-1]}",
                  flush=True)
        window = time.monotonic() - t0
        asked, stored = yahoo.count(QUOTE) - requests0, prices.count_documents({}) - stored0
    finally:
        producer.stop()
    out = producer.output()
    found = re.search(r"producer stopped: (\d+) delivered", out)
    delivered = int(found.group(1)) if found else queued(out)
    stopped = time.monotonic()
    wait_for(lambda: prices.count_documents({}) >= delivered, timeout=600, what="the consumer catching up")
    catch_up = time.monotonic() - stopped
    consumer.stop()
    quoted = len(set(prices.distinct("symbol")))
    return {"window": window, "yahoo_per_min": asked / window * 60, "msgs_per_s": stored / window,
            "lag_max": max(lags, default=0), "lag_end": lags[-1] if lags else 0, "catch_up": catch_up,
            "quoted": quoted, "delivered": delivered}


def daily_job(settings: Settings, db: Any) -> float:
    from batch.daily_aggregation import run

    conn = connect(settings)
    try:
        summary = run(settings, [utc_now().astimezone(settings.tz).date()], db=db, conn=conn)
    finally:
        conn.close()
    return summary.seconds


def copy_defaults(client: Any, source: str, target: str) -> Any:
    """A database where only the 7 defaults are registered, with their quotes."""
    db = client[target]
    seed_symbols(db, DEFAULTS, utc_now())
    docs = list(client[source][REALTIME_PRICES].find({"symbol": {"$in": DEFAULTS}}, {"_id": 0}))
    if docs:
        db[REALTIME_PRICES].insert_many(docs)
    return db


def signed_in(base: str, email: str) -> requests.Session:
    session = requests.Session()
    html = session.get(base + "/login", timeout=30).text
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html)
    assert token, "no CSRF token on /login"
    resp = session.post(base + "/login", data={"csrf_token": token.group(1), "email": email, "password": PASSWORD,
                                                "next": "/"}, timeout=30)
    if not resp.ok or 'id="my-symbols"' not in resp.text:  # the signed-in page's own tickers
        raise RuntimeError(f"sign-in failed: HTTP {resp.status_code}")
    return session


def latency(base: str, session: requests.Session, path: str, n: int, clients: int = 4) -> list[float]:
    def worker(count: int) -> list[float]:
        s = requests.Session()
        s.cookies.update(session.cookies)
        out = []
        for _ in range(count):
            t0 = time.perf_counter()
            r = s.get(base + path, timeout=60)
            out.append((time.perf_counter() - t0) * 1000)
            if r.status_code != 200:
                raise RuntimeError(f"{path}: HTTP {r.status_code}")
        return out

    worker(2)  # warm-up
    with ThreadPoolExecutor(clients) as pool:
        return [ms for part in pool.map(worker, [max(1, n // clients)] * clients) for ms in part]


def web(env: dict[str, str], db: Any, tickers: list[str], n: int) -> dict[str, dict[str, list[float]]]:
    """p50/p95 of / and /api/quotes/latest: a user following 50 symbols, and a signed-out visitor."""
    from flask_web_app.validation import hash_password

    email = "bench.fifty@example.com"
    user_id = create_user(db, email=email, name="Fifty", password_hash=hash_password(PASSWORD), watchlist=[],
                          digest_opt_in=False, alert_opt_in=False, created_at=utc_now())
    assert confirm_email(db, user_id, email, utc_now())
    for symbol in tickers[:PER_USER]:
        add_follower(db, symbol, user_id, name=f"{symbol} Bench Inc.", simulated=False, now=utc_now(),
                     max_symbols=len(tickers) + len(DEFAULTS), max_per_user=PER_USER)
    port = free_port()
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / f"bench-symbols-gunicorn-{port}.log", "ab")  # noqa: SIM115 - closed below
    gunicorn = str(Path(sys.executable).parent / "gunicorn")
    proc = subprocess.Popen([gunicorn, "--config", "flask_web_app/gunicorn.conf.py",
                             "flask_web_app.app:create_app()"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            env={**os.environ, **env, "PYTHONPATH": str(ROOT), "GUNICORN_BIND": f"127.0.0.1:{port}",
                                 "GUNICORN_WORKERS": "2", "FLASK_SECRET_KEY": uuid.uuid4().hex})
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: requests.get(base + "/healthz", timeout=5).status_code == 200, timeout=60,
                 what="gunicorn /healthz")
        user, visitor = signed_in(base, email), requests.Session()
        shown = user.get(base + "/", timeout=60).text.count('<tr data-symbol="')
        print(f"  / for the user lists {shown} symbols", flush=True)
        return {who: {path: latency(base, session, path, n) for path in ("/", "/api/quotes/latest")}
                for who, session in (("user following 50", user), ("signed-out (7 defaults)", visitor))}
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
        log.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="length of the streaming window")
    parser.add_argument("--symbols", type=int, default=500, help="registered symbols (MAX_SYMBOLS)")
    parser.add_argument("--requests", type=int, default=200, help="requests per page and client kind")
    args = parser.parse_args()
    tag = uuid.uuid4().hex[:8]
    kafka, mongo = TansuBroker().start(), SecantusMongo().start()
    client: Any = MongoClient(mongo.uri, tz_aware=True)
    root = pymysql.connect(**MYSQL, autocommit=True)
    all_db, seven_db = f"bench_symbols_{tag}", f"bench_symbols7_{tag}"
    template = json.loads(RECORDED.read_text())["quoteResponse"]["result"][0]
    try:
        for name in (all_db, seven_db):
            apply_schema(root, name)
        db = client[all_db]
        t0 = time.monotonic()
        tickers, _users = register(db, args.symbols)
        print(f"{db[SYMBOLS].count_documents({})} symbols registered in {time.monotonic() - t0:.0f} s", flush=True)
        with LocalYahoo(template) as yahoo:
            env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "MONGO_URI": mongo.uri, "MONGO_DB": all_db,
                   "KAFKA_TOPIC": f"bench-symbols-{tag}", "KAFKA_DLQ_TOPIC": f"bench-symbols-{tag}.dlq",
                   "KAFKA_CONSUMER_GROUP": f"bench-symbols-{tag}", "STOCK_SYMBOLS": ",".join(DEFAULTS),
                   "MAX_SYMBOLS": str(args.symbols), "QUOTE_SOURCES": "yahoo,simulated", **yahoo.env(),
                   "REJECT_UNKNOWN_SYMBOLS": "true", "MARKET_CALENDAR": "24/7", "LOG_TO_ELASTICSEARCH": "false",
                   "LOG_LEVEL": "INFO", "ALPHA_VANTAGE_API_KEY": "", "SIMULATION_SEED": "1",
                   "MYSQL_HOST": MYSQL["host"], "MYSQL_PORT": str(MYSQL["port"]), "MYSQL_USER": MYSQL["user"],
                   "MYSQL_PASSWORD": MYSQL["password"], "MYSQL_DATABASE": all_db}
            settings = Settings(_env_file=None, **{k.lower(): v for k, v in env.items()})  # type: ignore[arg-type]
            print(f"streaming {args.minutes:g} min: YAHOO_REFRESH_SECONDS={settings.yahoo_refresh_seconds:g}, "
                  f"POLL_INTERVAL_SECONDS={settings.poll_interval_seconds:g}", flush=True)
            s = stream(env, db, yahoo, args.minutes)
            batches = math.ceil(args.symbols / 99)
            expected = batches * 60 / settings.yahoo_refresh_seconds
        seven = copy_defaults(client, all_db, seven_db)
        job_all = daily_job(settings, db)
        job_seven = daily_job(settings.model_copy(update={"mongo_db": seven_db, "mysql_database": seven_db}), seven)
        pages = web({k: v for k, v in env.items() if not k.startswith("KAFKA")}, db, tickers, args.requests)
    finally:
        client.drop_database(all_db)
        client.drop_database(seven_db)
        client.close()
        with root.cursor() as cur:
            for name in (all_db, seven_db):
                cur.execute(f"DROP DATABASE IF EXISTS `{name}`")
        root.close()
        kafka.stop()
        mongo.stop()

    print(f"\n{args.symbols} registered symbols, {s['window'] / 60:.1f} min window, {s['quoted']} symbols quoted")
    print(f"Yahoo quote requests/min   {s['yahoo_per_min']:8.2f}   (expected {expected:.2f}: {batches} batches of "
          f"<=99 every {settings.yahoo_refresh_seconds:g} s)")
    print(f"Kafka messages/s           {s['msgs_per_s']:8.2f}")
    print(f"consumer lag (quotes)      max {s['lag_max']}, at the end {s['lag_end']}, "
          f"0 again {s['catch_up']:.1f} s after the producer stopped ({s['delivered']} delivered)")
    print(f"daily job                  {job_all:8.2f} s for {args.symbols} symbols, {job_seven:.2f} s for 7 "
          f"(x{job_all / job_seven:.1f}; {args.symbols / 7:.0f}x the symbols)")
    for who, paths in pages.items():
        for path, ms in paths.items():
            print(f"{who:24s} {path:20s} p50 {statistics.median(ms):7.1f} ms   p95 {pct(ms, 95):7.1f} ms "
                  f"({len(ms)} requests)")
    for path in ("/", "/api/quotes/latest"):
        ratio = pct(pages["user following 50"][path], 95) / pct(pages["signed-out (7 defaults)"][path], 95)
        print(f"p95 ratio user-following-50 / signed-out  {path:20s} {ratio:5.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
