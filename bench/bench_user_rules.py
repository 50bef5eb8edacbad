"""Benchmark: users' own alert rules at scale, against the system's rules alone in the same run.

    python bench/bench_user_rules.py                   # 1,000 users x 50 rules, 500 symbols, 10 minutes
    python bench/bench_user_rules.py --minutes 2

Starts Tansu (Kafka), SecantusDB (MongoDB) and a throw-away database on the local MariaDB
(TEST_MYSQL_*, as the tests). It stores --users confirmed users, each with an own price
threshold (7 %, watching 10 symbols) and --rules price-level rules (above / below, one-shot
or re-arming, 1-10 % away from the symbol's simulated start price so that some fire), then
starts the real consumer and two alerts services on the same topic in two groups: one with
the users' rules (USER_RULES_ENABLED=true) and one with the system's rules alone (false),
and then the real producer: simulated quotes for --symbols symbols, one per symbol every
--interval seconds (the live stream's rate: one quote per symbol per
STREAM_MIN_INTERVAL_SECONDS = 1 s). Email is off: what is measured is evaluation and storage.

Every --sample seconds: each alerts group's lag (high-water mark minus committed offset)
and, over the load window, each alerts process's CPU share. Prints figures and a verdict
on lag (bounded or growing); asserts nothing. Not part of the test suite. SecantusDB (pure
Python) and a shared 2-core machine bound the numbers.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymysql  # noqa: E402
from bson import ObjectId  # noqa: E402
from pymongo import MongoClient  # noqa: E402
from pymongo.database import Database  # noqa: E402

from bench.sustained_load import MYSQL, OffsetProbe, Sample, cpu_seconds, judge_lag, tickers  # noqa: E402
from config.symbols import seed_price  # noqa: E402
from database.mongo import PRICE_LEVEL_RULES, USER_ALERTS, USERS  # noqa: E402
from database.mongo import user_rules as rules_db  # noqa: E402
from database.mysql import apply_schema  # noqa: E402
from scripts.processes import ServiceProcess  # noqa: E402
from scripts.servers import SecantusMongo, TansuBroker  # noqa: E402
from scripts.waiting import wait_for  # noqa: E402
from streaming.alert_rules import BandState, step_band  # noqa: E402
from streaming.user_alert_rules import (  # noqa: E402
    ABOVE,
    BELOW,
    ONCE,
    REARM,
    LevelRule,
    RuleIndex,
    UserThresholds,
    step_level,
)

GROUPS = ("users", "system")  # the alerts service with the users' rules, and with the system's alone


def seed_rules(db: Database, symbols: list[str], users: int, per_user: int, seed: int) -> int:
    """Users with an own threshold and `per_user` level rules near each symbol's last price."""
    rnd = random.Random(seed)
    prices = {s: seed_price(s) for s in symbols}  # where the simulator starts each symbol
    now = datetime.now(UTC)
    user_docs, rule_docs = [], []
    for n in range(users):
        uid = ObjectId()
        user_docs.append({"_id": uid, "email": f"user{n}@example.test", "name": f"user {n}", "password_hash": "x",
                          "watchlist": rnd.sample(symbols, 10), "digest_opt_in": False, "alert_opt_in": True,
                          "alert_price_threshold": 7.0, "created_at": now, "email_confirmed": True})
        for _ in range(per_user):
            symbol = rnd.choice(symbols)
            direction = rnd.choice(("above", "below"))
            step = rnd.uniform(0.01, 0.10)  # 1-10 % away: some fire in a run, most wait
            level = prices[symbol] * (1 + step if direction == "above" else 1 - step)
            rule_docs.append({"user_id": str(uid), "symbol": symbol, "direction": direction,
                              "level": round(level, 4), "mode": rnd.choice(("once", "rearm")), "created_at": now,
                              "armed": True, "as_of": None, "fired_at": None, "fired_price": None})
    db[USERS].insert_many(user_docs)
    for i in range(0, len(rule_docs), 5000):
        db[PRICE_LEVEL_RULES].insert_many(rule_docs[i:i + 5000])
    rules_db.bump_version(db)
    return len(rule_docs)


def pure_cost(symbols: list[str], users: int, per_user: int, quotes: int = 20_000) -> None:
    """Evaluation alone, in this process (no servers): microseconds per quote over the index."""
    rnd = random.Random(7)
    thresholds = [UserThresholds(str(n), tuple(rnd.sample(symbols, 10)), 7.0, None) for n in range(users)]
    levels = []
    for n in range(users * per_user):
        symbol = symbols[n % len(symbols)]
        price = seed_price(symbol)
        direction = rnd.choice((ABOVE, BELOW))
        step = rnd.uniform(0.01, 0.10)
        levels.append(LevelRule(str(n), str(n % users), symbol, direction,
                                price * (1 + step if direction == ABOVE else 1 - step), rnd.choice((ONCE, REARM))))
    index = RuleIndex(thresholds, levels)
    day = datetime.now(UTC).date()
    bands: dict[tuple[str, str], BandState] = {}
    start = time.perf_counter()
    fired = 0
    for i in range(quotes):
        symbol = symbols[i % len(symbols)]
        ts = datetime.fromtimestamp(1_767_000_000 + i, UTC)
        price = seed_price(symbol) * (1 + rnd.uniform(-0.05, 0.05))
        move = rnd.uniform(-9.0, 9.0)
        for t in index.thresholds(symbol):
            state, band = step_band(bands.get((t.user_id, symbol), BandState()), move, ts, day, 7.0, 1.0)
            bands[(t.user_id, symbol)] = state
            fired += band is not None
        for rule in index.levels(symbol):
            state, fires = step_level(rule, price, ts, 1.0)
            if state != rule.state:
                index.update_level(rule, state)
            fired += fires
    took = time.perf_counter() - start
    print(f"evaluation alone: {index.size():,} rules, {took / quotes * 1e6:.0f} us per quote "
          f"({quotes:,} quotes, {fired:,} fired; the index gives a quote only its symbol's rules)", flush=True)


def run(args: argparse.Namespace) -> int:
    tag = uuid.uuid4().hex[:8]
    symbols = tickers(args.symbols)
    pure_cost(symbols, args.users, args.rules)
    if args.pure_only:
        return 0
    kafka = TansuBroker().start()
    mongo = SecantusMongo().start()
    mysql_db = f"sas_bench_rules_{tag}"
    conn = pymysql.connect(**MYSQL, autocommit=True, connect_timeout=5)
    apply_schema(conn, mysql_db)
    topic = f"rules-{tag}"
    groups = {g: f"rules-alerts-{g}-{tag}" for g in GROUPS}
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "KAFKA_TOPIC": topic, "KAFKA_DLQ_TOPIC": f"{topic}.dlq",
        "KAFKA_CONSUMER_GROUP": f"rules-consumer-{tag}",
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "MONGO_URI": mongo.uri, "MONGO_DB": f"rules_{tag}",
        "MYSQL_HOST": MYSQL["host"], "MYSQL_PORT": str(MYSQL["port"]), "MYSQL_USER": MYSQL["user"],
        "MYSQL_PASSWORD": MYSQL["password"], "MYSQL_DATABASE": mysql_db,
        "STOCK_SYMBOLS": ",".join(symbols), "MAX_SYMBOLS": str(max(500, args.symbols)),
        "POLL_INTERVAL_SECONDS": str(args.interval), "QUOTE_SOURCES": "simulated", "SIMULATION_SEED": "7",
        "SIMULATION_EVENT_RATE": "2", "ALPHA_VANTAGE_API_KEY": "", "SMTP_SERVER": "", "EMAIL_SENDER": "",
        "LOG_TO_ELASTICSEARCH": "false", "LOG_LEVEL": "INFO",
    }
    procs: dict[str, ServiceProcess] = {}
    probe: OffsetProbe | None = None
    client: MongoClient = MongoClient(mongo.uri, tz_aware=True)
    db = client[env["MONGO_DB"]]
    try:
        print(f"user rules: {args.users} users x {args.rules} level rules (+ an own 7 % threshold each) on "
              f"{len(symbols)} symbols, a quote per symbol every {args.interval:g}s, {args.minutes:g} min; "
              f"load average {os.getloadavg()[0]:.2f}", flush=True)
        started = time.monotonic()
        count = seed_rules(db, symbols, args.users, args.rules, seed=7)
        print(f"stored {args.users} users and {count:,} rules in {time.monotonic() - started:.0f}s", flush=True)
        procs["consumer"] = ServiceProcess("streaming/consumer.py", env, name="rules-consumer").start()
        for g in GROUPS:
            procs[g] = ServiceProcess("streaming/alerts.py", {
                **env, "KAFKA_ALERTS_GROUP": groups[g], "USER_RULES_ENABLED": str(g == "users").lower()},
                name=f"rules-alerts-{g}").start()
        wait_for(lambda: "consuming" in procs["consumer"].output(), timeout=120, what="consumer started")
        time.sleep(args.warmup)  # the groups join (Tansu: about half the session timeout)
        procs["producer"] = ServiceProcess("streaming/producer.py", env, name="rules-producer").start()
        wait_for(lambda: "users' alert rules:" in procs["users"].output(), timeout=600,
                 what="the users' rules read by the alerts service")
        probe = OffsetProbe(kafka.bootstrap, topic, groups)
        pids = {g: procs[g].proc.pid for g in GROUPS if procs[g].proc}  # type: ignore[union-attr]
        pids["secantus"] = mongo.proc.pid  # type: ignore[union-attr]
        t0 = time.time()
        cpu0 = {n: cpu_seconds(pid) for n, pid in pids.items()}
        samples: list[Sample] = []
        print(f"{'t (s)':>6} {'produced':>9} {'lag users':>10} {'lag system':>11}  load avg", flush=True)
        while time.time() - t0 < args.minutes * 60:
            time.sleep(args.sample)
            hw, committed = probe.sample()
            sample = Sample(round(time.time() - t0, 1), "load", hw, committed)
            samples.append(sample)
            print(f"{sample.t:>6.0f} {hw:>9} {sample.lag('users'):>10} {sample.lag('system'):>11}  "
                  f"{os.getloadavg()[0]:8.2f}", flush=True)
            for name, proc in procs.items():
                if not proc.running:
                    print(f"!! {name} exited; see {proc.log_path}")
        span = time.time() - t0
        cpu1 = {n: cpu_seconds(pid) for n, pid in pids.items()}
        produced = samples[-1].high_water - samples[0].high_water if len(samples) > 1 else 0
        rate = produced / max(samples[-1].t - samples[0].t, 1e-9) if len(samples) > 1 else 0.0
        print()
        print(f"input {rate:.0f} quotes/s over the window (asked for {len(symbols) / args.interval:.0f}/s)")
        for g in GROUPS:
            lags = [s.lag(g) for s in samples]
            before, after = cpu0.get(g), cpu1.get(g)
            cpu = f"{(after - before) / span * 100:.0f}%" if before is not None and after is not None else "?"
            print(f"alerts ({g:>6} rules): CPU {cpu} of one core; lag mean {sum(lags) / len(lags):.0f}, "
                  f"max {max(lags)}, end {lags[-1]}; {judge_lag(samples, g, rate)}")
        before, after = cpu0.get("secantus"), cpu1.get("secantus")
        if before is not None and after is not None:
            print(f"SecantusDB (MongoDB stand-in, shared by all): CPU {(after - before) / span * 100:.0f}%")
        print(f"users' alerts stored: {db[USER_ALERTS].count_documents({})}; "
              f"level rules fired at least once: {db[PRICE_LEVEL_RULES].count_documents({'fired_at': {'$ne': None}})}")
    finally:
        for proc in procs.values():
            proc.stop()
        if probe is not None:
            probe.close()
        client.close()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{mysql_db}`")
        conn.close()
        mongo.stop()
        kafka.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--rules", type=int, default=50, help="level rules per user")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between a symbol's quotes")
    parser.add_argument("--minutes", type=float, default=10.0, help="minutes of load measured")
    parser.add_argument("--sample", type=float, default=10.0, help="seconds between lag samples")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds for the groups to join")
    parser.add_argument("--pure-only", action="store_true", help="only the evaluation cost, without servers")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
