"""Sustained load: 1,000 simulated symbols every second through producer, consumer and alerts.

    python bench/sustained_load.py                     # 1,000 symbols, 1 s interval, 120 s
    python bench/sustained_load.py --symbols 200 --duration 60

Starts Tansu (Kafka), SecantusDB (MongoDB) and a throw-away database on the local
MariaDB (TEST_MYSQL_HOST/PORT/USER/PASSWORD, as the tests), then the three real role
processes exactly as their containers run them (`python streaming/<role>.py`) with
STOCK_SYMBOLS set to generated tickers and POLL_INTERVAL_SECONDS=1. Email is off and
logs go to stdout only (files under test-artifacts/servers/).

While the producer runs it samples every --sample seconds:
- the topic's high-water mark (from a fetch response: Tansu's ListOffsets-based
  end_offsets is wrong) and the committed offsets of the consumer and alerts groups
  (OffsetFetch) → lag of each group;
- VmRSS of every role process from /proc/<pid>/status, and the load average;
and it reports each process's CPU share over the load window (roles and servers).
Afterwards the producer is stopped, the groups get --drain seconds to catch up, and
the end-to-end latency (quote timestamp → processed_at stored by the consumer) is
read back from MongoDB: p50/p99 overall and per 30 s of the run.

Prints figures and a verdict on lag (bounded or growing); asserts nothing. Not part
of the test suite. The stand-in servers (SecantusDB is pure Python) bound the numbers.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import pymysql  # noqa: E402
from kafka import KafkaConsumer, TopicPartition  # noqa: E402
from kafka.admin import KafkaAdminClient  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from database.mongo import ALERT_HISTORY, REALTIME_PRICES  # noqa: E402
from database.mysql import apply_schema  # noqa: E402
from scripts.processes import ServiceProcess  # noqa: E402
from scripts.servers import SecantusMongo, TansuBroker  # noqa: E402
from scripts.waiting import wait_for  # noqa: E402

MYSQL = {
    "host": os.environ.get("TEST_MYSQL_HOST", "127.0.0.1"),
    "port": int(os.environ.get("TEST_MYSQL_PORT", "3306")),
    "user": os.environ.get("TEST_MYSQL_USER", "root"),
    "password": os.environ.get("TEST_MYSQL_PASSWORD", ""),
}
ROLES = ("consumer", "alerts", "producer")


def tickers(n: int) -> list[str]:
    """n distinct ticker-shaped symbols (A000 ... ) that the settings accept."""
    return [f"{chr(65 + i // 1000 % 26)}{i % 1000:03d}" for i in range(n)]


def rss_kib(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process, from /proc/<pid>/stat."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(sorted_values: list[float], q: float) -> float:
    if not sorted_values:
        return float("nan")
    index = min(len(sorted_values) - 1, max(0, round(q * (len(sorted_values) - 1))))
    return sorted_values[index]


@dataclass
class Sample:
    t: float  # seconds since the producer started
    phase: str
    high_water: int
    committed: dict[str, int]
    rss: dict[str, int | None] = field(default_factory=dict)

    def lag(self, group: str) -> int:
        return self.high_water - self.committed[group]


class OffsetProbe:
    """High-water mark from fetch responses; committed offsets via OffsetFetch."""

    def __init__(self, bootstrap: str, topic: str, groups: dict[str, str]) -> None:
        self.topic = topic
        self.fetcher = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, group_id=None,
                                     max_partition_fetch_bytes=4096, fetch_max_wait_ms=50)
        wait_for(lambda: self.fetcher.partitions_for_topic(topic), timeout=60, what=f"topic {topic}")
        self.tps = [TopicPartition(topic, p) for p in sorted(self.fetcher.partitions_for_topic(topic) or [])]
        self.fetcher.assign(self.tps)
        # One non-subscribing consumer per group: committed() asks the coordinator each time
        # and never joins or commits, so it does not disturb the group.
        self.readers = {name: KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
                        for name, group in groups.items()}
        self.admin = KafkaAdminClient(bootstrap_servers=bootstrap)
        self.groups = groups

    def committed(self) -> dict[str, dict[TopicPartition, int]]:
        out: dict[str, dict[TopicPartition, int]] = {}
        for name, reader in self.readers.items():
            try:
                out[name] = {tp: reader.committed(tp) or 0 for tp in self.tps}
            except Exception:  # noqa: BLE001 - fall back to the admin API
                offsets = self.admin.list_consumer_group_offsets(self.groups[name])
                out[name] = {tp: offsets[tp].offset if tp in offsets else 0 for tp in self.tps}
        return out

    def high_water(self, near: dict[TopicPartition, int]) -> dict[TopicPartition, int]:
        """Fetch one small chunk per partition from `near` (close to the end) and read the
        high-water mark the broker put in the fetch response."""
        state = self.fetcher._subscription.assignment  # noqa: SLF001 - to clear the last known value
        for tp in self.tps:
            self.fetcher.seek(tp, near.get(tp, 0))
            state[tp].highwater = None
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(self.fetcher.highwater(tp) is None for tp in self.tps):
            self.fetcher.poll(timeout_ms=200, max_records=1)
        return {tp: self.fetcher.highwater(tp) or 0 for tp in self.tps}

    def sample(self) -> tuple[int, dict[str, int]]:
        committed = self.committed()
        near = {tp: max(c[tp] for c in committed.values()) for tp in self.tps}
        hw = self.high_water(near)
        return sum(hw.values()), {name: sum(c.values()) for name, c in committed.items()}

    def close(self) -> None:
        self.fetcher.close(autocommit=False)
        for reader in self.readers.values():
            reader.close(autocommit=False)
        self.admin.close()


def slope(points: list[tuple[float, float]]) -> float:
    """Least-squares slope (units per second)."""
    if len(points) < 2:
        return 0.0
    mx = statistics.fmean(p[0] for p in points)
    my = statistics.fmean(p[1] for p in points)
    den = sum((x - mx) ** 2 for x, _ in points)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else 0.0


def judge_lag(samples: list[Sample], group: str, rate: float) -> str:
    load = [s for s in samples if s.phase == "load"]
    if len(load) < 4:
        return "too few samples to judge"
    half = load[len(load) // 2:]
    growth = slope([(s.t, s.lag(group)) for s in half])
    peak = max(s.lag(group) for s in load)
    last = load[-1].lag(group)
    # Bounded: over the second half of the run lag grows by less than 5% of the input rate
    # (noise from batch boundaries), i.e. the group keeps up with what is produced.
    verdict = "BOUNDED" if growth < 0.05 * max(rate, 1.0) else "GROWING"
    return (f"{verdict}: lag slope over the second half {growth:+.1f} msgs/s "
            f"(input {rate:.0f} msgs/s), peak {peak}, at end of load {last}")


def run(args: argparse.Namespace) -> int:
    tag = uuid.uuid4().hex[:8]
    symbols = tickers(args.symbols)
    kafka = TansuBroker().start()
    mongo = SecantusMongo().start()
    mysql_db = f"sas_bench_load_{tag}"
    conn = pymysql.connect(**MYSQL, autocommit=True, connect_timeout=5)
    apply_schema(conn, mysql_db)
    topic = f"load-{tag}"
    groups = {"consumer": f"load-consumer-{tag}", "alerts": f"load-alerts-{tag}"}
    env = {
        "KAFKA_BOOTSTRAP_SERVERS": kafka.bootstrap, "KAFKA_TOPIC": topic, "KAFKA_DLQ_TOPIC": f"{topic}.dlq",
        "KAFKA_CONSUMER_GROUP": groups["consumer"], "KAFKA_ALERTS_GROUP": groups["alerts"],
        "KAFKA_SESSION_TIMEOUT_MS": "6000", "KAFKA_HEARTBEAT_INTERVAL_MS": "1000",
        "MONGO_URI": mongo.uri, "MONGO_DB": f"load_{tag}",
        "MYSQL_HOST": MYSQL["host"], "MYSQL_PORT": str(MYSQL["port"]), "MYSQL_USER": MYSQL["user"],
        "MYSQL_PASSWORD": MYSQL["password"], "MYSQL_DATABASE": mysql_db,
        "STOCK_SYMBOLS": ",".join(symbols), "POLL_INTERVAL_SECONDS": str(args.interval),
        "SIMULATION_SEED": "7", "ALPHA_VANTAGE_API_KEY": "",
        "SMTP_SERVER": "", "EMAIL_SENDER": "", "LOG_TO_ELASTICSEARCH": "false", "LOG_LEVEL": "INFO",
    }
    procs: dict[str, ServiceProcess] = {}
    probe: OffsetProbe | None = None
    samples: list[Sample] = []
    rss_start: dict[str, int | None] = {}
    rss_end: dict[str, int | None] = {}
    cpu_start: tuple[float, dict[str, float | None]] = (0.0, {})
    cpu_end: tuple[float, dict[str, float | None]] = (0.0, {})
    try:
        print(f"sustained load: {len(symbols)} symbols every {args.interval:g}s for {args.duration:g}s "
              f"(producer, consumer, alerts as processes); load average {os.getloadavg()[0]:.2f}", flush=True)
        for role in ("consumer", "alerts"):
            procs[role] = ServiceProcess(f"streaming/{role}.py", env, name=f"load-{role}").start()
        client: MongoClient = MongoClient(mongo.uri, tz_aware=True)
        db = client[env["MONGO_DB"]]
        wait_for(lambda: "consuming" in procs["consumer"].output(), timeout=60, what="consumer started")
        probe = OffsetProbe(kafka.bootstrap, topic, groups)
        # Let both groups finish joining (Tansu: about half the session timeout) so the
        # first latencies measure the pipeline, not the join.
        time.sleep(args.warmup)
        procs["producer"] = ServiceProcess("streaming/producer.py", env, name="load-producer").start()
        t0 = time.time()
        pids = {r: p.proc.pid for r, p in procs.items() if p.proc}
        pids.update({"tansu": kafka.proc.pid, "secantus": mongo.proc.pid})  # type: ignore[union-attr]
        print(f"{'t (s)':>6} {'phase':>6} {'produced':>9} {'rate/s':>7} {'lag consumer':>13} "
              f"{'lag alerts':>11} " + " ".join(f"{'RSS ' + r + ' MiB':>18}" for r in ROLES) + "  load avg",
              flush=True)
        prev: Sample | None = None
        phase = "load"
        next_at = t0 + args.sample
        drain_deadline = None
        while True:
            time.sleep(max(0.0, next_at - time.time()))
            next_at += args.sample
            now = time.time() - t0
            rss = {r: rss_kib(p.proc.pid) for r, p in procs.items() if p.proc and p.running}
            hw, committed = probe.sample()
            sample = Sample(round(now, 1), phase, hw, committed, rss)
            samples.append(sample)
            if not rss_start:
                rss_start = dict(rss)  # first sample: every role has started and warmed up
                cpu_start = (time.time(), {n: cpu_seconds(pid) for n, pid in pids.items()})
            if phase == "load" and now >= args.duration - 0.5:
                rss_end = dict(rss)
                cpu_end = (time.time(), {n: cpu_seconds(pid) for n, pid in pids.items()})
                procs["producer"].stop()
                phase = "drain"
                drain_deadline = time.time() + args.drain
            rate = (hw - prev.high_water) / (sample.t - prev.t) if prev else hw / max(sample.t, 1e-9)
            prev = sample
            rss_cols = " ".join(f"{sample.rss[r] / 1024:>18.1f}" if sample.rss.get(r) else f"{'-':>18}"
                                for r in ROLES)
            print(f"{sample.t:>6.0f} {sample.phase:>6} {hw:>9} {rate:>7.0f} {sample.lag('consumer'):>13} "
                  f"{sample.lag('alerts'):>11} {rss_cols}  {os.getloadavg()[0]:8.2f}", flush=True)
            for role, proc in procs.items():
                if role != "producer" and not proc.running:
                    print(f"!! {role} exited ({proc.proc.returncode if proc.proc else '?'}); see {proc.log_path}")
            if phase == "drain" and (
                (sample.lag("consumer") == 0 and sample.lag("alerts") == 0) or time.time() > (drain_deadline or 0)
            ):
                break

        load = [s for s in samples if s.phase == "load"]
        produced_in_load = load[-1].high_water if load else 0
        produced = samples[-1].high_water
        in_rate = produced_in_load / load[-1].t if load else 0.0
        print()
        print(f"produced {produced:,} quotes ({produced_in_load:,} in the {args.duration:g}s load window: "
              f"{in_rate:.0f}/s against {len(symbols) / args.interval:.0f}/s asked for)")
        for group in ("consumer", "alerts"):
            print(f"lag {group:>8}: {judge_lag(samples, group, in_rate)}; "
                  f"after {samples[-1].t - args.duration:.0f}s drain: {samples[-1].lag(group)}")

        # End-to-end latency: quote timestamp → processed_at written by the consumer.
        lat: list[tuple[float, float]] = []
        for doc in db[REALTIME_PRICES].find({}, {"_id": 0, "timestamp": 1, "processed_at": 1}):
            lat.append((doc["timestamp"].timestamp() - t0, (doc["processed_at"] - doc["timestamp"]).total_seconds()))
        values = sorted(v for _, v in lat)
        print(f"stored {len(lat):,} quotes; end-to-end latency p50 {percentile(values, 0.5) * 1000:.0f} ms, "
              f"p99 {percentile(values, 0.99) * 1000:.0f} ms, max {values[-1] * 1000 if values else 0:.0f} ms")
        window = 30.0
        buckets: dict[int, list[float]] = {}
        for t, v in lat:
            buckets.setdefault(int(t // window), []).append(v)
        for b in sorted(buckets):
            vals = sorted(buckets[b])
            print(f"  quotes of t={b * window:>4.0f}-{(b + 1) * window:<4.0f}s: {len(vals):>7,}  "
                  f"p50 {percentile(vals, 0.5) * 1000:>7.0f} ms  p99 {percentile(vals, 0.99) * 1000:>7.0f} ms")
        alerts_mongo = db[ALERT_HISTORY].count_documents({})
        with conn.cursor() as cur:
            cur.execute(f"SELECT COUNT(*) FROM `{mysql_db}`.alert_log")
            alerts_mysql = cur.fetchone()[0]
        print(f"alerts raised: {alerts_mongo} in alert_history, {alerts_mysql} in alert_log")
        print(f"memory (VmRSS) at the first sample (t={samples[0].t:.0f}s) → end of the load window:")
        for role in ROLES:
            a, b = rss_start.get(role), rss_end.get(role)
            if a and b:
                print(f"  {role:>8}: {a / 1024:7.1f} MiB → {b / 1024:7.1f} MiB ({(b - a) / 1024:+.1f} MiB)")
        span = cpu_end[0] - cpu_start[0]
        if span > 0:
            shares = []
            for name, before in cpu_start[1].items():
                after = cpu_end[1].get(name)
                if before is not None and after is not None:
                    shares.append(f"{name} {(after - before) / span * 100:.0f}%")
            print(f"CPU during the load window (100% = one core of 2): {', '.join(shares)}")
        print(f"load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (2 cores)")
        client.close()
    finally:
        for proc in procs.values():
            proc.stop()
        if probe is not None:
            probe.close()
        with conn.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{mysql_db}`")
        conn.close()
        mongo.stop()
        kafka.stop()
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbols", type=int, default=1000)
    parser.add_argument("--interval", type=float, default=1.0, help="POLL_INTERVAL_SECONDS")
    parser.add_argument("--duration", type=float, default=120.0, help="seconds of load")
    parser.add_argument("--sample", type=float, default=5.0, help="seconds between lag/memory samples")
    parser.add_argument("--drain", type=float, default=120.0, help="max seconds to wait for the lag to clear")
    parser.add_argument("--warmup", type=float, default=8.0, help="seconds for the groups to join before producing")
    return run(parser.parse_args())


if __name__ == "__main__":
    sys.exit(main())
