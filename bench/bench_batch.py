"""Benchmark: aggregate one market day of 15-second quotes, the batch way vs pandas.

    python bench/bench_batch.py                       # 500 symbols x 1560 quotes = 780,000 documents
    python bench/bench_batch.py --symbols 50          # smaller, when the server is slow
    python bench/bench_batch.py --mongo-uri mongodb://localhost:27017

Without --mongo-uri it starts a throw-away SecantusDB (the test server, pure
Python and far slower than mongod; its figures are not production figures).

Measured in the same run on the same data:
- batch:    database/mongo/price_stats.day_stats — one aggregation pipeline per symbol
            over the (symbol, timestamp) index; only one small document per symbol
            reaches Python.
- baseline: load every document of the day (projected to the needed fields) into a
            pandas DataFrame and group it by symbol.
Both results are checked against each other before the figures are printed.
Not part of the test suite (pandas is a dev dependency only).
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pymongo import MongoClient  # noqa: E402

from database.mongo import REALTIME_PRICES  # noqa: E402
from database.mongo.price_stats import day_bounds, day_stats  # noqa: E402
from database.setup_mongodb import ensure_indexes  # noqa: E402

TZ = ZoneInfo("America/New_York")
DAY = date(2026, 1, 13)


def symbols_for(count: int) -> list[str]:
    return [f"S{i:04d}" for i in range(count)]


def generate(symbols: list[str], per_symbol: int, interval: int, rng: random.Random):  # type: ignore[no-untyped-def]
    open_at = datetime(DAY.year, DAY.month, DAY.day, 9, 30, tzinfo=TZ)
    for symbol in symbols:
        price = rng.uniform(20, 500)
        for i in range(per_symbol):
            price *= math.exp(rng.gauss(0, 0.0008))
            yield {"symbol": symbol, "timestamp": open_at + timedelta(seconds=i * interval),
                   "price": round(price, 4), "volume": rng.randint(100, 5000),
                   "source": "simulated", "open": 0.0, "high": 0.0, "low": 0.0, "previous_close": 0.0,
                   "change_percent": 0.0}


def load(coll, docs, batch: int = 5000) -> int:  # type: ignore[no-untyped-def]
    n, chunk = 0, []
    for doc in docs:
        chunk.append(doc)
        if len(chunk) == batch:
            coll.insert_many(chunk, ordered=False)
            n += len(chunk)
            chunk = []
    if chunk:
        coll.insert_many(chunk, ordered=False)
        n += len(chunk)
    return n


def pandas_baseline(coll, start: datetime, end: datetime):  # type: ignore[no-untyped-def]
    import pandas as pd

    cursor = coll.find({"timestamp": {"$gte": start, "$lt": end}},
                       {"_id": 0, "symbol": 1, "timestamp": 1, "price": 1, "volume": 1, "source": 1})
    frame = pd.DataFrame(list(cursor)).sort_values(["symbol", "timestamp"])
    grouped = frame.groupby("symbol")
    return grouped.agg(open=("price", "first"), close=("price", "last"), high=("price", "max"), low=("price", "min"),
                       avg_price=("price", "mean"), volatility=("price", lambda s: s.std(ddof=0)),
                       total_volume=("volume", "sum"), tick_count=("price", "size"))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--quotes-per-symbol", type=int, default=1560, help="6.5 market hours of 15 s quotes = 1560")
    parser.add_argument("--interval", type=int, default=15, help="seconds between quotes")
    parser.add_argument("--mongo-uri", default="", help="an existing MongoDB; default: start a SecantusDB")
    args = parser.parse_args()

    server = None
    uri = args.mongo_uri
    if not uri:
        from scripts.servers import SecantusMongo

        server = SecantusMongo().start()
        uri = server.uri
    client: MongoClient = MongoClient(uri, tz_aware=True)
    db = client[f"bench_batch_{uuid.uuid4().hex[:8]}"]
    try:
        ensure_indexes(db)
        coll = db[REALTIME_PRICES]
        symbols = symbols_for(args.symbols)
        total = args.symbols * args.quotes_per_symbol
        print(f"server: {'SecantusDB (started for this run)' if server else uri}")
        print(f"loading {total:,} quotes: {args.symbols} symbols x {args.quotes_per_symbol} every {args.interval}s ...")
        t0 = time.perf_counter()
        loaded = load(coll, generate(symbols, args.quotes_per_symbol, args.interval, random.Random(1)))
        print(f"  loaded {loaded:,} in {time.perf_counter() - t0:.1f}s")
        start, end = day_bounds(DAY, TZ)

        t0 = time.perf_counter()
        ours = day_stats(db, symbols, start, end)
        ours_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        base = pandas_baseline(coll, start, end)
        base_s = time.perf_counter() - t0

        # Same answers, or the timing means nothing.
        for symbol in symbols:
            mine, theirs = ours[symbol], base.loc[symbol]
            assert mine is not None and mine["tick_count"] == theirs["tick_count"], symbol
            for key in ("open", "close", "high", "low", "avg_price", "volatility", "total_volume"):
                assert math.isclose(float(mine[key]), float(theirs[key]), rel_tol=1e-9, abs_tol=1e-9), (symbol, key)

        print(f"{'method':<44}{'seconds':>10}{'docs/s':>14}")
        print(f"{'batch: aggregation pipeline per symbol':<44}{ours_s:>10.2f}{loaded / ours_s:>14,.0f}")
        print(f"{'baseline: whole day into pandas, groupby':<44}{base_s:>10.2f}{loaded / base_s:>14,.0f}")
        print(f"speed-up vs baseline: {base_s / ours_s:.2f}x; results identical for {len(symbols)} symbols")
    finally:
        client.drop_database(db.name)
        client.close()
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
