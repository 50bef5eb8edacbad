"""The pipeline follows the symbol registry without a restart: a ticker added after the producer,
consumer and alerts started is quoted, stored (REJECT_UNKNOWN_SYMBOLS on) and alerted on within
about 30 s, the daily job aggregates it, and once its last follower leaves its quotes stop while
its stored history stays. Processes on the test servers (tests/support/pipeline.py)."""

from __future__ import annotations

import time
from typing import Any

from common.clock import utc_now
from database.mongo.symbols import add_follower, remove_follower
from database.mysql import connect
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import wait_for
from tests.test_faults_streaming import spike

PICK_UP_LIMIT = 30.0  # seconds: the registry is re-read every 15 s, the producer ticks every 0.5 s


def test_a_symbol_added_while_running_is_quoted_stored_alerted_aggregated_then_stopped(
        kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch, smtp: SmtpServer,
        mysql_server: dict[str, Any], mysql_db: str) -> None:
    from batch.daily_aggregation import run as run_batch
    from tests.support.pipeline import pipeline

    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp,
                  env={"REJECT_UNKNOWN_SYMBOLS": "true"}) as (stack, probe):
        prices = probe.db.realtime_prices
        assert prices.count_documents({"symbol": "IBM"}) == 0
        added_at = time.monotonic()
        assert add_follower(probe.db, "IBM", "user-1", name="International Business Machines Corporation",
                            simulated=True, now=utc_now(), max_symbols=500, max_per_user=50) == "added"
        wait_for(lambda: prices.count_documents({"symbol": "IBM"}) >= 3, timeout=60, interval=0.5,
                 what="IBM quotes stored by the running consumer")
        picked_up = time.monotonic() - added_at
        print(f"\nIBM: first quotes stored {picked_up:.1f} s after it was added")
        assert picked_up < PICK_UP_LIMIT
        assert "now quoting IBM" in stack.processes["producer"].output()
        assert "unknown symbol 'IBM'" not in stack.processes["consumer"].output()

        # The alerts service accepts it too: an injected spike raises an IBM alert.
        spike(probe, "IBM")
        wait_for(lambda: any(a["symbol"] == "IBM" for a in probe.alert_history()), timeout=60,
                 what="an IBM alert from the running alerts service")

        # The daily job aggregates every registered symbol.
        settings = stack.settings()
        conn = connect(settings)
        try:
            summary = run_batch(settings, [utc_now().astimezone(settings.tz).date()], db=probe.db, conn=conn)
            assert summary.symbols == 8
            with conn.cursor() as cur:
                cur.execute("SELECT symbol FROM daily_aggregates WHERE symbol = 'IBM'")
                assert len(cur.fetchall()) == 1
        finally:
            conn.close()

        # The last follower leaves: the producer stops sending IBM, the stored quotes stay.
        assert remove_follower(probe.db, "IBM", "user-1") is True
        producer = stack.processes["producer"]
        wait_for(lambda: "no longer quoting IBM" in producer.output(), timeout=PICK_UP_LIMIT, interval=0.5,
                 what="the producer stopping IBM")
        stopped_at = utc_now()
        kept = prices.count_documents({"symbol": "IBM"})
        # Other symbols keep flowing for a while; IBM gets nothing stamped after the stop.
        others = prices.count_documents({"symbol": "AAPL"})
        wait_for(lambda: prices.count_documents({"symbol": "AAPL"}) >= others + 5, timeout=60,
                 what="five more AAPL quotes after IBM stopped")
        assert prices.count_documents({"symbol": "IBM", "timestamp": {"$gt": stopped_at}}) == 0
        assert prices.count_documents({"symbol": "IBM"}) >= kept >= 3


def test_quote_source_starts_a_new_symbol_at_once_and_forgets_a_stopped_one() -> None:
    import logging
    from datetime import UTC, datetime, timedelta

    from config import Settings
    from market_data.market_hours import MarketHours
    from market_data.simulator import MarketSimulator
    from streaming.producer import QuoteSource

    settings = Settings(_env_file=None, quote_sources="simulated", stock_symbols="AAPL,MSFT",  # type: ignore[call-arg]
                        poll_interval_seconds=15, market_calendar="24/7")
    hours = MarketHours("24/7")
    source = QuoteSource(settings, MarketSimulator(settings.stock_symbols, hours, 15, seed=1),
                         logging.getLogger("test.symbols"), hours=hours)
    now = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)
    assert {q.symbol for q in source.tick(now)} == {"AAPL", "MSFT"}
    assert source.follow(["AAPL", "MSFT", "IBM"]) == (["IBM"], [])
    later = now + timedelta(seconds=1)  # AAPL and MSFT are not due again yet; IBM is due at once
    assert [q.symbol for q in source.tick(later)] == ["IBM"]
    assert source.follow(["AAPL", "IBM"]) == ([], ["MSFT"])
    assert "MSFT" not in source.next_due
    assert {q.symbol for q in source.tick(now + timedelta(seconds=30))} == {"AAPL", "IBM"}


def test_a_symbol_added_after_start_gets_its_daily_history_within_a_minute_once(
        kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch, smtp: SmtpServer,
        mysql_server: dict[str, Any], mysql_db: str) -> None:
    """The batch container's backfill watcher: IBM, added while the batch scheduler runs, gets
    BACKFILL_DAYS daily rows within a minute, the registry records it, and a restarted batch
    does not backfill it again."""
    from database.mongo.symbols import find_symbol
    from tests.support.pipeline import pipeline

    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp,
                  roles=["producer", "consumer", "batch"], env={"BACKFILL_DAYS": "30"}) as (stack, probe):
        batch = stack.processes["batch"]
        wait_for(lambda: "every registered symbol is backfilled already" in batch.output(), timeout=120,
                 what="the start-up backfill of the seven defaults, then the watcher's first pass")
        assert find_symbol(probe.db, "AAPL")["backfilled_at"] is not None  # the start-up backfill recorded

        def ibm_days() -> int:
            return int(probe.mysql_rows("SELECT COUNT(*) AS n FROM daily_aggregates WHERE symbol = 'IBM'")[0]["n"])

        assert ibm_days() == 0
        added_at = time.monotonic()
        assert add_follower(probe.db, "IBM", "user-1", name="International Business Machines Corporation",
                            simulated=True, now=utc_now(), max_symbols=500, max_per_user=50) == "added"
        wait_for(lambda: ibm_days() >= 30, timeout=60, interval=0.5, what="30 daily rows of IBM within a minute")
        print(f"\nIBM: daily history stored {time.monotonic() - added_at:.1f} s after it was added")
        assert "IBM: backfilled 30 days" in batch.output()
        wait_for(lambda: find_symbol(probe.db, "IBM").get("backfilled_at") is not None, timeout=30,
                 what="IBM recorded as backfilled in the registry")
        [row] = probe.mysql_rows("SELECT source, tick_count FROM daily_aggregates WHERE symbol = 'IBM'"
                                 " ORDER BY date LIMIT 1")
        assert row == {"source": "simulated", "tick_count": 0}  # only the simulator in the chain: labelled so

        restarted = stack.restart_role("batch")
        wait_for(lambda: "backfill watcher: every registered symbol is backfilled already" in restarted.output(),
                 timeout=120, what="the restarted batch's first watcher pass")
        assert "IBM: backfilled" not in restarted.output()
        assert ibm_days() == 30
