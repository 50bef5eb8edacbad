"""Every benchmark in one run, one table: figure, value, baseline, ratio.

    python bench/run_all.py                      # modest sizes: about 10-15 minutes on 2 cores
    python bench/run_all.py --full               # the sizes the issues name (takes far longer)
    python bench/run_all.py --only streaming,batch --batch-symbols 200

Runs the existing scripts as subprocesses (each starts its own stand-in servers), shows
their output as it comes, then parses their figures:

- streaming (bench/bench_streaming.py): the consumer as built vs insert_one + a commit per
  message, messages/s and p50/p99 latency (quote timestamp → stored);
- batch (bench/bench_batch.py): one day aggregated by the MongoDB pipeline vs the whole
  day loaded into pandas;
- web (bench/bench_web.py): p95 of every page and endpoint at the largest quote count vs
  at the smallest (the baseline), under concurrent load from a second process.

ratio = value / baseline. For throughputs higher is better; for times and latencies lower
is better (a ratio below 1 means faster than the baseline). The absolute figures are
bounded by the stand-in servers (SecantusDB is pure Python, Tansu a small broker) and by
this machine; ratios measured in the same run are what matter. Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Row:
    figure: str
    value: float
    baseline: float
    unit: str
    better: str  # "higher" or "lower"

    @property
    def ratio(self) -> float:
        return self.value / self.baseline if self.baseline else float("nan")


@dataclass
class BenchRun:
    name: str
    returncode: int | None
    seconds: float
    output: str
    load_before: float
    load_after: float


def run_script(name: str, args: list[str], timeout: float) -> BenchRun:
    """Run one bench script from the repository root, echoing its output live."""
    cmd = [sys.executable, *args]
    print(f"\n=== {name}: {' '.join(args)}", flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT), PYTHONUNBUFFERED="1")
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    lines: list[str] = []
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line)
            print(f"  [{name}] {line}", end="", flush=True)
            if time.monotonic() - started > timeout:
                raise TimeoutError
        proc.wait()
    except (TimeoutError, KeyboardInterrupt):
        print(f"  [{name}] stopped after {time.monotonic() - started:.0f}s (timeout {timeout:.0f}s)", flush=True)
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return BenchRun(name, proc.returncode, time.monotonic() - started, "".join(lines), load_before,
                    os.getloadavg()[0])


# ------------------------------------------------------------------ parsers (one per script)

def parse_streaming(out: str) -> list[Row]:
    start = out.find("\n{")
    if start < 0:
        return []
    try:
        results, _ = json.JSONDecoder().raw_decode(out[start + 1:])
    except json.JSONDecodeError:
        return []
    built, base = results.get("built"), results.get("baseline")
    if not built or not base:
        return []
    return [
        Row("streaming: consumer throughput (built vs insert_one+commit/msg)", built["msgs_per_s"],
            base["msgs_per_s"], "msgs/s", "higher"),
        Row("streaming: latency p50, quote → stored", built["p50_ms"], base["p50_ms"], "ms", "lower"),
        Row("streaming: latency p99, quote → stored", built["p99_ms"], base["p99_ms"], "ms", "lower"),
    ]


def parse_batch(out: str) -> list[Row]:
    ours = re.search(r"^batch: aggregation pipeline per symbol\s+([\d.]+)\s+([\d,]+)", out, re.M)
    base = re.search(r"^baseline: whole day into pandas, groupby\s+([\d.]+)\s+([\d,]+)", out, re.M)
    loaded = re.search(r"loaded ([\d,]+) in", out)
    if not ours or not base:
        return []
    docs = f" ({loaded.group(1)} docs)" if loaded else ""
    return [
        Row(f"batch: one day aggregated{docs} vs pandas, time", float(ours.group(1)), float(base.group(1)),
            "s", "lower"),
        Row("batch: documents per second (pipeline vs pandas)", float(ours.group(2).replace(",", "")),
            float(base.group(2).replace(",", "")), "docs/s", "higher"),
    ]


def parse_web(out: str) -> list[Row]:
    sizes: list[tuple[int, dict[str, float]]] = []
    for line in out.splitlines():
        size = re.match(r"size [\d,]+: ([\d,]+) quotes stored", line)
        if size:
            sizes.append((int(size.group(1).replace(",", "")), {}))
            continue
        point = re.match(r"\s+(\S+)\s+p50\s+([\d.]+) ms\s+p95\s+([\d.]+) ms", line)
        if point and sizes:
            sizes[-1][1][point.group(1)] = float(point.group(3))
    if len(sizes) < 2:
        return []
    (small, small_p95), (big, big_p95) = min(sizes), max(sizes)
    rows = [Row(f"web p95 {path} ({big:,} vs {small:,} quotes)", big_p95[path], small_p95[path], "ms", "lower")
            for path in big_p95 if path in small_p95]
    if rows:
        worst = max(rows, key=lambda r: r.ratio)
        rows.append(Row(f"web p95 worst endpoint ratio ({worst.figure.split()[2]})", worst.value, worst.baseline,
                        "ms", "lower"))
    return rows


PARSERS = {"streaming": parse_streaming, "batch": parse_batch, "web": parse_web}


def table(rows: list[Row]) -> str:
    width = max([len(r.figure) for r in rows] + [6])
    lines = [f"{'figure':<{width}}  {'value':>16}  {'baseline':>16}  {'ratio':>7}", "-" * (width + 45)]
    for r in rows:
        lines.append(f"{r.figure:<{width}}  {f'{r.value:,.1f} {r.unit}':>16}  {f'{r.baseline:,.1f} {r.unit}':>16}  "
                     f"{r.ratio:>6.2f}x")
    return "\n".join(lines)


def markdown_table(rows: list[Row]) -> str:
    lines = ["| figure | value | baseline | ratio |", "| --- | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r.figure} ({r.better} is better) | {r.value:,.1f} {r.unit} | {r.baseline:,.1f} {r.unit} | "
                     f"{r.ratio:.2f}x |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="streaming,batch,web", help="comma list of streaming, batch, web")
    parser.add_argument("--full", action="store_true",
                        help="issue sizes: 500 symbols (780k docs) for batch, 10k and 1M quotes for web "
                             "(streaming already uses 50,000/5,000)")
    parser.add_argument("--stream-messages", type=int, default=50_000)
    parser.add_argument("--stream-baseline-messages", type=int, default=5_000)
    parser.add_argument("--batch-symbols", type=int, default=60)
    parser.add_argument("--batch-quotes-per-symbol", type=int, default=1560)
    parser.add_argument("--web-sizes", default="10000,100000")
    parser.add_argument("--web-requests", type=int, default=40, help="requests per endpoint and size")
    parser.add_argument("--web-fill-budget", type=float, default=240, help="seconds to fill one size")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds allowed per benchmark")
    parser.add_argument("--markdown", action="store_true", help="also print the table as Markdown (for the README)")
    args = parser.parse_args()
    if args.full:
        args.stream_messages, args.stream_baseline_messages = 50_000, 5_000
        args.batch_symbols, args.batch_quotes_per_symbol = 500, 1560
        args.web_sizes, args.web_requests, args.web_fill_budget = "10000,1000000", 80, 3600
        args.timeout = max(args.timeout, 4 * 3600)

    scripts = {
        "streaming": ["bench/bench_streaming.py", "--messages", str(args.stream_messages),
                      "--baseline-messages", str(args.stream_baseline_messages)],
        "batch": ["bench/bench_batch.py", "--symbols", str(args.batch_symbols),
                  "--quotes-per-symbol", str(args.batch_quotes_per_symbol)],
        "web": ["bench/bench_web.py", "--sizes", args.web_sizes, "--requests", str(args.web_requests),
                "--fill-budget", str(args.web_fill_budget)],
    }
    wanted = [name for name in args.only.split(",") if name]
    started = datetime.now(UTC)
    print(f"benchmarks {', '.join(wanted)} on {platform.node()} ({os.cpu_count()} cores, Python "
          f"{platform.python_version()}), {started:%Y-%m-%d %H:%M} UTC; load average "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}", flush=True)

    rows: list[Row] = []
    runs: list[BenchRun] = []
    for name in wanted:
        if name not in scripts:
            print(f"unknown benchmark {name!r}; choose from {', '.join(scripts)}", file=sys.stderr)
            return 2
        if not (ROOT / scripts[name][0]).exists():
            print(f"\n=== {name}: {scripts[name][0]} is missing; skipped", flush=True)
            continue
        run = run_script(name, scripts[name], args.timeout)
        runs.append(run)
        parsed = PARSERS[name](run.output)
        if not parsed:
            print(f"  [{name}] no figures found in its output (exit status {run.returncode})", flush=True)
        rows.extend(parsed)

    print("\n=== summary")
    for run in runs:
        print(f"{run.name:>9}: {run.seconds:6.0f}s, exit status {run.returncode}, load average "
              f"{run.load_before:.2f} → {run.load_after:.2f}")
    if rows:
        print()
        print(table(rows))
        if args.markdown:
            print()
            print(markdown_table(rows))
    print(f"\nratio = value / baseline. Stand-in servers (SecantusDB in pure Python, Tansu) bound the absolute "
          f"numbers; {os.cpu_count()} cores, load average at the end "
          f"{' '.join(f'{x:.2f}' for x in os.getloadavg())}.")
    return 0 if runs and all(r.returncode == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
