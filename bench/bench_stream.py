"""Benchmark: Yahoo's live stream through the producer, against polling only, in one run.

    python bench/bench_stream.py [--symbols 50] [--rate 20] [--seconds 20] [--min-interval 1]
    python bench/bench_stream.py --symbols 50 --rate 20 --seconds 600      # the issue's 50 x 20 for 10 min

Starts Tansu (Kafka) and SecantusDB (MongoDB) on free ports, then for each mode the producer
and the consumer as their containers run them (processes, ES logging off):

- stream:   QUOTE_SOURCES=yahoo_stream,simulated; a local websocket streamer (scripts/
            yahoo_streamer.py, yfinance's own PricingData) sends SYMBOLS x RATE prints a second
- baseline: QUOTE_SOURCES=simulated at POLL_INTERVAL_SECONDS=1 (polling only, one quote per
            symbol per second, what polling at its fastest costs)

Printed per mode: prints sent, Kafka messages/s (the producer's own "N delivered" over the
window; the coalescing bound is SYMBOLS / STREAM_MIN_INTERVAL_SECONDS), consumer lag when the
window ends (delivered but not yet in MongoDB) and how long it took to reach 0, the producer's
CPU (% of one core) and peak RSS (from /proc). Not part of the test suite.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere

from pymongo import MongoClient  # noqa: E402

from common.clock import utc_now  # noqa: E402
from scripts.processes import ServiceProcess  # noqa: E402
from scripts.servers import SecantusMongo, TansuBroker  # noqa: E402
from scripts.waiting import wait_for  # noqa: E402
from scripts.yahoo_streamer import LocalStreamer  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return int(match.group(1)) / 1024 if match else 0.0


def feed(streamer: LocalStreamer, symbols: list[str], rate: float, stop: threading.Event) -> None:
    """RATE prints a second for every symbol, each with its own time and a growing day volume."""
    volume = dict.fromkeys(symbols, 1_000_000)
    next_at = time.monotonic()
    step = 0
    while not stop.is_set():
        now = utc_now()
        for i, symbol in enumerate(symbols):
            volume[symbol] += 100
            streamer.push(symbol, round(100 + i + (step % 100) / 100, 2), now, day_volume=volume[symbol])
        step += 1
        next_at += 1 / rate
        stop.wait(max(0.0, next_at - time.monotonic()))


def run_mode(name: str, base_env: dict[str, str], extra: dict[str, str], args: argparse.Namespace,
             mongo_uri: str, streamer: LocalStreamer | None, symbols: list[str]) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    env = {**base_env, **extra, "KAFKA_TOPIC": f"bench-stream-{tag}", "KAFKA_DLQ_TOPIC": f"bench-stream-{tag}.dlq",
           "KAFKA_CONSUMER_GROUP": f"bench-stream-{tag}", "MONGO_DB": f"bench_stream_{tag}"}
    client: Any = MongoClient(mongo_uri)
    prices = client[env["MONGO_DB"]].realtime_prices
    consumer = ServiceProcess("streaming/consumer.py", env, name=f"bench-consumer-{name}").start()
    producer = ServiceProcess("streaming/producer.py", env, name=f"bench-producer-{name}").start()
    stop = threading.Event()
    try:
        wait_for(lambda: prices.count_documents({}) > 0, timeout=120, what=f"{name}: quotes in MongoDB")
        if streamer is not None:
            wait_for(lambda: streamer.subscribers(symbols[-1]) > 0, timeout=60, what="the producer subscribed")
        sent_before = streamer.sent if streamer is not None else 0
        feeder = threading.Thread(target=feed, args=(streamer, symbols, args.rate, stop), daemon=True) \
            if streamer is not None else None
        pid = producer.proc.pid  # type: ignore[union-attr]
        stored_before = prices.count_documents({})
        cpu0, t0, peak = cpu_seconds(pid), time.monotonic(), rss_mb(pid)
        if feeder is not None:
            feeder.start()
        while time.monotonic() - t0 < args.seconds:
            time.sleep(1)  # a bench samples on a clock; not a test
            peak = max(peak, rss_mb(pid))
        stop.set()
        cpu = (cpu_seconds(pid) - cpu0) / (time.monotonic() - t0) * 100
        window = time.monotonic() - t0
    finally:
        stop.set()
        code = producer.stop()
    out = producer.output()
    found = re.search(r"producer stopped: (\d+) delivered", out)
    delivered = int(found.group(1)) if found else -1
    lag = delivered - prices.count_documents({})
    caught = time.monotonic()
    wait_for(lambda: prices.count_documents({}) >= delivered, timeout=300, what=f"{name}: consumer catching up")
    catch_up = time.monotonic() - caught
    consumer.stop()
    stored_in_window = prices.count_documents({}) - stored_before
    client.drop_database(env["MONGO_DB"])
    client.close()
    return {"mode": name, "exit": code, "prints": (streamer.sent - sent_before) if streamer else 0,
            "msgs/s": stored_in_window / window, "lag": lag, "catch-up s": catch_up, "cpu %": cpu,
            "peak rss MB": peak}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--symbols", type=int, default=50)
    parser.add_argument("--rate", type=float, default=20.0, help="prints per second per symbol")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of each mode's window")
    parser.add_argument("--min-interval", type=float, default=1.0, help="STREAM_MIN_INTERVAL_SECONDS")
    args = parser.parse_args()
    symbols = [f"S{i:03d}" for i in range(args.symbols)]
    kafka, mongo = TansuBroker().start(), SecantusMongo().start()
    base_env = {"KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "MONGO_URI": mongo.uri, "STOCK_SYMBOLS": ",".join(symbols),
                "MARKET_CALENDAR": "24/7", "LOG_TO_ELASTICSEARCH": "false", "LOG_LEVEL": "INFO",
                "ALPHA_VANTAGE_API_KEY": "", "SIMULATION_SEED": "1"}
    results = []
    try:
        with LocalStreamer() as streamer:
            results.append(run_mode("stream", base_env, {
                "QUOTE_SOURCES": "yahoo_stream,simulated", "YAHOO_STREAM_URL": streamer.url,
                "STREAM_MIN_INTERVAL_SECONDS": str(args.min_interval), "POLL_INTERVAL_SECONDS": "15"},
                args, mongo.uri, streamer, symbols))
        results.append(run_mode("baseline", base_env, {"QUOTE_SOURCES": "simulated", "POLL_INTERVAL_SECONDS": "1"},
                                args, mongo.uri, None, symbols))
    finally:
        kafka.stop()
        mongo.stop()
    bound = args.symbols / args.min_interval
    print(f"\n{args.symbols} symbols x {args.rate:g} prints/s for {args.seconds:g}s each "
          f"(coalescing bound {bound:g} msgs/s at STREAM_MIN_INTERVAL_SECONDS={args.min_interval:g})")
    print(f"{'mode':10} {'prints':>8} {'msgs/s':>8} {'lag':>6} {'catch-up s':>10} {'cpu %':>7} {'peak rss MB':>12}")
    for r in results:
        print(f"{r['mode']:10} {r['prints']:>8} {r['msgs/s']:>8.1f} {r['lag']:>6} {r['catch-up s']:>10.1f} "
              f"{r['cpu %']:>7.1f} {r['peak rss MB']:>12.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
