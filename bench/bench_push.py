"""The push channel's figures (issue 23), measured on the local stand-in servers.

    PYTHONPATH=. .venv/bin/python bench/bench_push.py [--quotes 500] [--rate 10] [--streams 200]

(a) Latency, producer's send -> browser: the bench sends quotes to Kafka (the quote's
    timestamp is its send time), the real consumer stores them, and two Chromium pages
    show them: `/` on a server that pushes (/api/stream) and `/` on a server that refuses
    streams (STREAM_MAX_PER_PROCESS=0: the page polls every FLASK_REFRESH_SECONDS, as before
    this issue). Each page records, for every row update, its receive time minus the quote's
    timestamp (same machine, same clock). A polling page shows only each symbol's latest
    quote per poll, so it records fewer.
(b) 200 open streams: p50/p95 of `/`, `/dashboard` and `/api/quotes/latest` without streams,
    then with `--streams` streams open on the pushing server (2 workers), quotes still flowing.

Needs the machine's MariaDB (TEST_MYSQL_* as the tests) and Chromium at /usr/bin/chromium.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import selectors
import socket
import statistics
import sys
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from kafka import KafkaProducer  # noqa: E402

from bench.bench_web import MYSQL, _worker, pct  # noqa: E402
from bench.webdata import seed_daily, seed_quotes  # noqa: E402
from common.quote import Quote, Source  # noqa: E402
from scripts.local_stack import ROLES, LocalStack  # noqa: E402
from scripts.processes import ServiceProcess  # noqa: E402
from scripts.waiting import free_port, wait_for  # noqa: E402
from streaming.kafka_io import ensure_topics  # noqa: E402
from streaming.schema import to_message  # noqa: E402

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
BASE = {"AAPL": 260.0, "GOOGL": 190.0, "MSFT": 430.0, "AMZN": 220.0, "TSLA": 400.0, "META": 610.0, "NVDA": 140.0}
ENDPOINTS = ["/", "/dashboard?symbol=AAPL&days=30", "/api/quotes/latest"]
CHROMIUM = "/usr/bin/chromium"
# Runs in each page: every time a row's data-timestamp changes, receive time - quote time.
RECORDER = """
window.__lat = [];
document.addEventListener("DOMContentLoaded", function () {
  new MutationObserver(function (records) {
    var now = Date.now();
    records.forEach(function (r) {
      var ts = r.target.dataset.timestamp;
      if (ts) window.__lat.push([r.target.dataset.symbol, Date.parse(ts), now]);
    });
  }).observe(document.getElementById("quotes"), {subtree: true, attributes: true, attributeFilter: ["data-timestamp"]});
});
"""


class Sender:
    """The producer's part: quotes to Kafka at `rate` a second, timestamp = send time."""

    def __init__(self, bootstrap: str, topic: str) -> None:
        self.producer = KafkaProducer(bootstrap_servers=bootstrap, acks=1, linger_ms=0)
        self.topic = topic
        self.sent = 0
        self.log: list[tuple[str, float]] = []  # (symbol, timestamp in ms) of each quote sent
        self.stop = threading.Event()

    def send_one(self) -> None:
        symbol = SYMBOLS[self.sent % len(SYMBOLS)]
        base = BASE[symbol]
        price = round(base * (1 + 0.001 * (self.sent % 7)), 4)
        now = datetime.now(UTC)
        now = now.replace(microsecond=now.microsecond // 1000 * 1000)
        q = Quote(symbol=symbol, timestamp=now, price=price, volume=1000 + self.sent, open=base,
                  high=max(base, price) * 1.01, low=min(base, price) * 0.99, change_percent=0.1,
                  previous_close=base * 0.999, source=Source.SIMULATED, market_open=True)
        self.producer.send(self.topic, key=symbol.encode(), value=to_message(q))
        self.log.append((symbol, now.timestamp() * 1000))
        self.sent += 1

    def run(self, count: int, rate: float) -> None:
        """`count` quotes (0: until stopped), paced from this call's start."""
        start, done = time.monotonic(), 0
        while not self.stop.is_set() and (count <= 0 or done < count):
            self.send_one()
            self.producer.flush()
            done += 1
            delay = start + done / rate - time.monotonic()
            if delay > 0:
                self.stop.wait(delay)

    def close(self) -> None:
        self.producer.close()


def summary(values: list[float]) -> str:
    if not values:
        return "no values"
    return (f"n={len(values)}  p50 {statistics.median(values):7.0f} ms  p95 {pct(values, 95):7.0f} ms  "
            f"p99 {pct(values, 99):7.0f} ms  max {max(values):7.0f} ms")


def latency_bench(push_url: str, poll_url: str, sender: Sender, quotes: int, rate: float) -> None:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox", "--disable-gpu"])
        try:
            pages = {}
            for name, url in (("push", push_url), ("poll", poll_url)):
                page = browser.new_page()
                page.add_init_script(RECORDER)
                page.goto(url + "/")
                page.wait_for_function("document.getElementById('live-status').dataset.mode", timeout=60_000)
                pages[name] = page
            modes = {n: p.evaluate("document.getElementById('live-status').dataset.mode") for n, p in pages.items()}
            print(f"(a) page modes: {modes}; sending {quotes} quotes at {rate}/s", flush=True)
            for page in pages.values():
                page.evaluate("window.__lat = []")
            t0 = time.monotonic()
            sender.run(quotes, rate)
            print(f"    sent {sender.sent} in {time.monotonic() - t0:.0f} s", flush=True)
            wait_for(lambda: len(pages["push"].evaluate("window.__lat")) >= quotes, timeout=120,
                     what="every quote on the push page")
            time.sleep(6)  # the polling page polls again after the last send (refresh 5 s)
            shown = {n: p.evaluate("window.__lat") for n, p in pages.items()}
        finally:
            browser.close()
    sent = sender.log[-quotes:]
    print("(a) producer send -> browser, the quotes each page showed (receive time - quote timestamp):", flush=True)
    for name in ("push", "poll"):
        print(f"    {name:5s} {summary([recv - ts for _, ts, recv in shown[name]])}", flush=True)
    # A polling page skips the quotes overwritten between two polls: for every quote sent, the
    # time until the page showed it or a newer one of its symbol (how old the screen is).
    print("    every quote sent -> the page showing it or a newer one of its symbol:", flush=True)
    stale: dict[str, list[float]] = {}
    for name in ("push", "poll"):
        firsts = [min((recv for sym, ts2, recv in shown[name] if sym == symbol and ts2 >= ts), default=None)
                  for symbol, ts in sent]
        stale[name] = [first - ts for first, (_, ts) in zip(firsts, sent, strict=True) if first is not None]
        missing = sum(1 for first in firsts if first is None)
        print(f"    {name:5s} {summary(stale[name])}  never shown: {missing}", flush=True)
    print(f"    p95 poll / push: {pct(stale['poll'], 95) / pct(stale['push'], 95):.1f}x", flush=True)


class StreamHolders:
    """`n` open streams held from one thread with raw sockets, read and discarded (counting
    quote events): the viewers' side costs next to nothing here, as browsers on other
    machines would, so the figure is the server's cost of holding and feeding the streams."""

    def __init__(self, url: str, n: int) -> None:
        parts = urlsplit(url)
        self.addr = (parts.hostname or "127.0.0.1", parts.port or 80)
        self.n = n
        self.selector = selectors.DefaultSelector()
        self.accepted = 0
        self.refused = 0
        self.quote_events = 0
        self.ended = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def open(self) -> None:
        for _ in range(self.n):
            sock = socket.create_connection(self.addr, timeout=60)
            sock.sendall(b"GET /api/stream HTTP/1.1\r\nHost: bench\r\nAccept: text/event-stream\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                head += chunk
            if head.startswith(b"HTTP/1.1 200"):
                self.accepted += 1
                sock.setblocking(False)
                self.selector.register(sock, selectors.EVENT_READ, [head.partition(b"\r\n\r\n")[2]])
            else:
                self.refused += 1
                sock.close()
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            for key, _ in self.selector.select(timeout=0.5):
                try:
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                except BlockingIOError:
                    continue
                if not data:
                    self.ended += 1
                    self.selector.unregister(key.fileobj)
                    continue
                buf = key.data[0] + data
                self.quote_events += buf.count(b"event: quote\n")
                key.data[0] = buf[-16:]  # a marker split across two reads is counted once
                self.quote_events -= key.data[0].count(b"event: quote\n")

    def close(self) -> None:
        self.stop.set()
        self.thread.join(10)
        for key in list(self.selector.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        self.selector.close()


def hold_streams(url: str, n: int, conn: Any) -> None:
    """Runs in its own process (its reads must not take the load's GIL): opens the streams,
    sends (accepted, refused), then on each message the quote events so far; None closes."""
    holders = StreamHolders(url, n)
    holders.open()
    conn.send((holders.accepted, holders.refused))
    while conn.recv() is not None:
        conn.send((holders.quote_events, holders.accepted - holders.ended))
    holders.close()


class HeldStreams:
    def __init__(self, url: str, n: int) -> None:
        ctx = mp.get_context("spawn")
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=hold_streams, args=(url, n, child), daemon=True)
        self.proc.start()
        self.accepted, self.refused = self.conn.recv()

    def counts(self) -> tuple[int, int]:
        """(quote events received so far, streams still open)."""
        self.conn.send("count")
        return self.conn.recv()

    def close(self) -> None:
        self.conn.send(None)
        self.proc.join(30)


def load(base: str, n: int, concurrency: int) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    with ThreadPoolExecutor(concurrency) as pool:
        for path in ENDPOINTS:
            _worker(base, path, 2)
            futures = [pool.submit(_worker, base, path, max(1, n // concurrency)) for _ in range(concurrency)]
            out[path] = [ms for f in futures for ms in f.result()]
    return out


def cpu_seconds(master_pid: int) -> float:
    """User + system CPU seconds of gunicorn's workers so far (/proc; Linux)."""
    total = 0.0
    tick = os.sysconf("SC_CLK_TCK")
    children = Path(f"/proc/{master_pid}/task/{master_pid}/children").read_text().split()
    for pid in children:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        total += (int(fields[11]) + int(fields[12])) / tick
    return total


def streams_bench(push_url: str, master_pid: int, sender: Sender, streams: int, n: int, concurrency: int,
                  rate: float, rounds: int) -> None:
    """No stream, one stream (the reader's fixed cost: it queries MongoDB only while a stream
    is open) and `streams` streams, in alternating rounds so that the machine's load drifting
    during the run weighs on all three alike."""
    feeder = threading.Thread(target=sender.run, args=(0, rate), daemon=True)
    feeder.start()  # quotes keep flowing in every phase: the streams have events to fan out
    phases = {"none": 0, "one": 1, "all": streams}
    times: dict[str, dict[str, list[float]]] = {ph: {p: [] for p in ENDPOINTS} for ph in phases}
    cpu: dict[str, list[float]] = {ph: [] for ph in phases}
    accepted = refused = during = still_open = 0
    try:
        for _ in range(rounds):
            for phase, count in phases.items():
                holders = HeldStreams(push_url, count)
                try:
                    if count:
                        wait_for(lambda h=holders: h.counts()[0], timeout=60, what="quote events on the streams")
                    before, t0, c0 = holders.counts()[0], time.monotonic(), cpu_seconds(master_pid)
                    for path, ms in load(push_url, n // rounds, concurrency).items():
                        times[phase][path] += ms
                    cpu[phase].append((cpu_seconds(master_pid) - c0) / (time.monotonic() - t0))
                    if phase == "all":
                        events, open_now = holders.counts()
                        during += events - before
                        still_open += open_now
                        accepted += holders.accepted
                        refused += holders.refused
                finally:
                    holders.close()
                # The server frees a slot when its next write fails: wait until they are free.
                wait_for(lambda: requests.get(push_url + "/api/stream", timeout=30, stream=True).status_code == 200,
                         timeout=60, what="stream slots free again")
    finally:
        sender.stop.set()
        feeder.join(30)
    print(f"(b) {rounds} rounds; {streams} streams: {accepted} accepted, {refused} refused, {still_open} still open "
          f"after each load; {during} quote events delivered to them during the loads", flush=True)
    print(f"    {'endpoint':34s} {'p50/p95 none':>16s} {'p50/p95 1 stream':>18s} {'p50/p95 ' + str(streams):>16s}"
          f" {'p95 all/none':>12s} {'p95 all/one':>11s}")
    for path in ENDPOINTS:
        a, o, b = times["none"][path], times["one"][path], times["all"][path]
        print(f"    {path:34s} {statistics.median(a):6.0f} /{pct(a, 95):6.0f} ms {statistics.median(o):6.0f} /"
              f"{pct(o, 95):6.0f} ms {statistics.median(b):6.0f} /{pct(b, 95):6.0f} ms "
              f"{pct(b, 95) / pct(a, 95):11.2f}x {pct(b, 95) / pct(o, 95):10.2f}x", flush=True)
    print("    gunicorn workers' CPU (cores busy, mean of rounds, load included): "
          + ", ".join(f"{ph} {statistics.mean(v):.2f}" for ph, v in cpu.items()), flush=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quotes", type=int, default=500, help="quotes sent for the latency figure")
    ap.add_argument("--rate", type=float, default=10, help="quotes per second sent")
    ap.add_argument("--streams", type=int, default=200)
    ap.add_argument("--requests", type=int, default=80, help="requests per endpoint and phase, over all rounds")
    ap.add_argument("--rounds", type=int, default=4, help="alternating rounds without / with the streams")
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--skip", default="", help="latency or streams: leave that part out")
    args = ap.parse_args()

    tag = uuid.uuid4().hex[:8]
    stack = LocalStack(roles=["consumer"], tag=tag, flask_port=free_port(), mysql_host=MYSQL["host"],
                       mysql_port=MYSQL["port"], mysql_user=MYSQL["user"], mysql_password=MYSQL["password"],
                       mysql_database=f"sas_bench_{tag}", drop_mysql_database=True,
                       extra_env={"LOG_TO_ELASTICSEARCH": "false", "LOG_LEVEL": "WARNING"})
    stack.start_servers()
    settings = stack.settings()
    assert ensure_topics(settings, [settings.kafka_topic, settings.kafka_dlq_topic], threading.Event())
    seed_quotes(settings, SYMBOLS, 60, datetime.now(UTC))
    seed_daily(settings, SYMBOLS, 40, datetime.now(UTC).date())
    stack.start_role("consumer")
    web_env = {**stack.env, "GUNICORN_WORKERS": "2", "STREAM_MAX_PER_PROCESS": str(max(150, args.streams))}
    poll_port = free_port()
    poll_env = {**stack.env, "GUNICORN_BIND": f"127.0.0.1:{poll_port}", "GUNICORN_WORKERS": "2",
                "STREAM_MAX_PER_PROCESS": "0"}
    script, gargs = ROLES["flask"]
    webs = [ServiceProcess(script, web_env, args=[*gargs[:-1], "--access-logfile", "/dev/null", gargs[-1]],
                           name="flask-push").start(),
            ServiceProcess(script, poll_env, args=[*gargs[:-1], "--access-logfile", "/dev/null", gargs[-1]],
                           name="flask-poll").start()]
    push_url, poll_url = stack.flask_url, f"http://127.0.0.1:{poll_port}"
    sender = Sender(settings.kafka_bootstrap_servers, settings.kafka_topic)
    try:
        for url in (push_url, poll_url):
            wait_for(lambda u=url: requests.get(u + "/healthz", timeout=5).status_code == 200, timeout=90,
                     what=f"{url}/healthz")
        print(f"load average at start: {os.getloadavg()[0]:.1f}", flush=True)
        if args.skip != "latency":
            latency_bench(push_url, poll_url, sender, args.quotes, args.rate)
        if args.skip != "streams":
            sender.stop.clear()
            assert webs[0].proc is not None
            streams_bench(push_url, webs[0].proc.pid, sender, args.streams, args.requests, args.concurrency,
                          args.rate, args.rounds)
        print(f"load average at end: {os.getloadavg()[0]:.1f}", flush=True)
    finally:
        sender.close()
        for w in webs:
            w.stop()
        stack.stop()


if __name__ == "__main__":
    main()
