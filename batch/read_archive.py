"""Read the S3 archive back: proof that the Parquet files are usable.

    python batch/read_archive.py --list                          # every archived symbol-day
    python batch/read_archive.py --list --symbol AAPL            # the days of one symbol
    python batch/read_archive.py --symbol AAPL --date 2026-01-13 # one day: summary + quotes
    python batch/read_archive.py --symbol AAPL --date 2026-01-13 --jsonl  # quotes as JSON lines

Uses the same ARCHIVE_S3_* settings as the daily job (inside compose:
`docker exec batch python batch/read_archive.py ...`). Exit status 1 when the
requested day is not in the archive or the store cannot be read.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from datetime import date
from typing import Any, TextIO

from batch.archive import ObjectStore, list_partitions, make_store, partition_key, read_partition

PREVIEW_ROWS = 5


def summarize(symbol: str, day: date, rows: list[dict[str, Any]]) -> str:
    """Pure: one paragraph about a day's archived quotes."""
    if not rows:
        return f"{symbol} {day}: archived file is empty"
    prices = [r["price"] for r in rows if r.get("price") is not None]
    sources = sorted({str(r.get("source")) for r in rows})
    lines = [
        f"{symbol} {day}: {len(rows)} quotes from {rows[0]['timestamp'].isoformat()} "
        f"to {rows[-1]['timestamp'].isoformat()}",
        f"  open {prices[0]:.4f}  close {prices[-1]:.4f}  high {max(prices):.4f}  low {min(prices):.4f}"
        if prices else "  no prices",
        f"  volume {sum(r.get('volume') or 0 for r in rows)}  source {', '.join(sources)}",
    ]
    return "\n".join(lines)


def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v.isoformat() if hasattr(v, "isoformat") else v for k, v in row.items()}


def run(args: argparse.Namespace, store: ObjectStore, prefix: str, out: TextIO) -> int:
    if args.list:
        parts = list_partitions(store, prefix, args.symbol)
        for symbol, day in parts:
            print(f"{symbol} {day} {store.url(partition_key(prefix, symbol, day))}", file=out)
        print(f"{len(parts)} archived symbol-day(s)", file=out)
        return 0
    rows = read_partition(store, prefix, args.symbol, args.date)
    if rows is None:
        print(f"not archived: {store.url(partition_key(prefix, args.symbol, args.date))}", file=sys.stderr)
        return 1
    if args.jsonl:
        for row in rows:
            print(json.dumps(_jsonable(row)), file=out)
        return 0
    print(store.url(partition_key(prefix, args.symbol, args.date)), file=out)
    print(summarize(args.symbol, args.date, rows), file=out)
    for row in rows[:PREVIEW_ROWS]:
        print("  " + json.dumps(_jsonable(row)), file=out)
    if len(rows) > PREVIEW_ROWS:
        print(f"  ... {len(rows) - PREVIEW_ROWS} more (--jsonl prints all)", file=out)
    return 0


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="batch/read_archive.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--symbol", type=str.upper, help="ticker, e.g. AAPL")
    parser.add_argument("--date", type=date.fromisoformat, help="market day, YYYY-MM-DD")
    parser.add_argument("--list", action="store_true", help="list archived symbol-days")
    parser.add_argument("--jsonl", action="store_true", help="print every quote of the day as a JSON line")
    args = parser.parse_args(argv)
    if not args.list and not (args.symbol and args.date):
        parser.error("give --symbol and --date, or --list")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    from config import get_settings

    settings = get_settings()
    args = parse_args(argv)
    try:
        return run(args, make_store(settings), settings.archive_s3_prefix, sys.stdout)
    except Exception as exc:  # botocore errors: one clear line, not a traceback
        print(f"cannot read the archive s3://{settings.archive_s3_bucket}/{settings.archive_s3_prefix}: "
              f"{type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # pyarrow 26 (with boto3 loaded) sometimes aborts in its C++ destructors at
    # interpreter exit ("terminate called without an active exception", about 1 run
    # in 10 here). Everything is printed by now, so leave without running them.
    os._exit(code)
