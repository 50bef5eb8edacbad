"""The symbol registry: the pure check of a typed ticker, and the `symbols` collection on SecantusDB
(seeding, following, limits, the last follower's removal)."""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from config import Settings
from config.symbols import ticker_problem
from database.mongo import SYMBOLS, make_client
from database.mongo.symbols import (
    Added,
    RegistryReader,
    add_follower,
    followed_by,
    registered_symbols,
    remove_follower,
    seed_symbols,
)
from market_data.yahoo_finance import YahooListing, YahooRefused, parse_search
from scripts.servers import SecantusMongo
from tests.support.http_fixture import FIXTURES

SEVEN = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(("raw", "expect"), [
    ("<script>", "starts with a letter"),
    ("A" * 200, "at most 10 characters"),
    ("../x", "path characters"),
    ("IB M", "no spaces"),
    ("IBM\t", "no spaces"),
    ("", "Enter a ticker"),
    (None, "Enter a ticker"),
    ("1BM", "starts with a letter"),
    ("A..B", "path characters"),
])
def test_malformed_tickers_are_refused_with_a_reason(raw: object, expect: str) -> None:
    problem = ticker_problem(raw)
    assert problem is not None and expect in problem


@pytest.mark.parametrize("raw", ["IBM", "ibm", "BRK.B", "RDS-A", "X"])
def test_well_formed_tickers_pass(raw: str) -> None:
    assert ticker_problem(raw) is None


@pytest.fixture
def db(mongo: SecantusMongo) -> Iterator[Database]:
    client = make_client(Settings(_env_file=None, mongo_uri=mongo.uri))  # type: ignore[call-arg]
    yield client[f"stock_market_{uuid.uuid4().hex[:10]}"]
    client.close()


def _add(db: Database, symbol: str, user: str, **limits: int) -> Added:
    return add_follower(db, symbol, user, name=f"{symbol} Corp", simulated=False, now=T0,
                        max_symbols=limits.get("max_symbols", 500), max_per_user=limits.get("max_per_user", 50))


def test_seeding_is_idempotent_and_safe_from_several_starters(db: Database) -> None:
    threads = [threading.Thread(target=seed_symbols, args=(db, SEVEN, T0)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    seed_symbols(db, SEVEN, T0 + timedelta(hours=1))
    assert db[SYMBOLS].count_documents({}) == 7
    assert registered_symbols(db, SEVEN) == SEVEN
    assert db[SYMBOLS].find_one({"_id": "AAPL"})["added_at"] == T0  # the first start's, kept


def test_a_symbol_taken_out_of_stock_symbols_stays_only_while_followed(db: Database) -> None:
    seed_symbols(db, SEVEN, T0)
    assert _add(db, "IBM", "u1") is Added.ADDED
    seed_symbols(db, ["AAPL", "MSFT"], T0)
    assert registered_symbols(db, ["AAPL", "MSFT"]) == ["AAPL", "MSFT", "IBM"]
    assert db[SYMBOLS].count_documents({}) == 3


def test_a_user_follows_a_symbol_and_the_last_removal_unregisters_it(db: Database) -> None:
    seed_symbols(db, SEVEN, T0)
    assert _add(db, "IBM", "u1") is Added.ADDED
    assert _add(db, "IBM", "u1") is Added.DUPLICATE
    assert _add(db, "IBM", "u2") is Added.ADDED
    assert _add(db, "AAPL", "u1") is Added.DEFAULT
    doc = db[SYMBOLS].find_one({"_id": "IBM"})
    assert doc["followers"] == ["u1", "u2"] and doc["name"] == "IBM Corp" and doc["added_at"] == T0
    assert registered_symbols(db, SEVEN) == [*SEVEN, "IBM"]
    assert [d["_id"] for d in followed_by(db, "u1")] == ["IBM"]
    assert remove_follower(db, "IBM", "u1") is True
    assert remove_follower(db, "IBM", "u1") is False  # not followed any more
    assert "IBM" in registered_symbols(db, SEVEN)  # u2 still follows it
    assert remove_follower(db, "IBM", "u2") is True
    assert registered_symbols(db, SEVEN) == SEVEN and db[SYMBOLS].find_one({"_id": "IBM"}) is None
    assert remove_follower(db, "AAPL", "u1") is False  # a default is nobody's to remove


def test_limits_of_the_registry_and_of_each_user(db: Database) -> None:
    seed_symbols(db, SEVEN, T0)
    assert _add(db, "IBM", "u1", max_per_user=2) is Added.ADDED
    assert _add(db, "ORCL", "u1", max_per_user=2) is Added.ADDED
    assert _add(db, "SAP", "u1", max_per_user=2) is Added.USER_FULL
    assert _add(db, "SAP", "u2", max_symbols=9) is Added.REGISTRY_FULL
    assert _add(db, "IBM", "u2", max_symbols=9) is Added.ADDED  # already registered: no new slot taken
    assert db[SYMBOLS].find_one({"_id": "SAP"}) is None


def test_the_per_user_limit_holds_under_parallel_adds(db: Database) -> None:
    """Eight adds of one user at once (two web workers, a double click) against a limit of three:
    exactly three are followed; eight adds of one symbol at once follow it once. Removing frees a slot."""
    from concurrent.futures import ThreadPoolExecutor

    from database.mongo import SYMBOL_QUOTAS

    seed_symbols(db, SEVEN, T0)
    tickers = ["IBM", "ORCL", "SAP", "INTC", "AMD", "CSCO", "ADBE", "CRM"]
    start = threading.Barrier(len(tickers))

    def add(symbol: str, user: str, limit: int = 3) -> Added:
        start.wait()
        return _add(db, symbol, user, max_per_user=limit)

    with ThreadPoolExecutor(len(tickers)) as pool:
        outcomes = list(pool.map(add, tickers, ["u1"] * len(tickers)))
    assert sorted(outcomes) == sorted([Added.ADDED] * 3 + [Added.USER_FULL] * 5), outcomes
    followed = [d["_id"] for d in followed_by(db, "u1")]
    assert len(followed) == 3 and set(followed) == {t for t, o in zip(tickers, outcomes, strict=True) if o == "added"}
    assert db[SYMBOL_QUOTAS].find_one({"_id": "u1"})["count"] == 3

    with ThreadPoolExecutor(len(tickers)) as pool:
        same = list(pool.map(add, ["NFLX"] * len(tickers), ["u2"] * len(tickers), [50] * len(tickers)))
    assert same.count(Added.ADDED) == 1 and set(same) == {Added.ADDED, Added.DUPLICATE}, same
    assert db[SYMBOLS].find_one({"_id": "NFLX"})["followers"] == ["u2"]
    assert db[SYMBOL_QUOTAS].find_one({"_id": "u2"})["count"] == 1

    assert remove_follower(db, followed[0], "u1") is True
    assert _add(db, "NFLX", "u1", max_per_user=3) is Added.ADDED  # the freed slot
    assert _add(db, "TXN", "u1", max_per_user=3) is Added.USER_FULL


def test_names_come_from_the_source_once_and_backfill_is_recorded(db: Database) -> None:
    from database.mongo.symbols import awaiting_backfill, mark_backfilled, name_unnamed, registry_entries

    seed_symbols(db, SEVEN, T0)
    assert {e["_id"]: e["name"] for e in registry_entries(db)}["AAPL"] == "AAPL"  # no hand-written name
    assert name_unnamed(db, {"AAPL": "Apple Inc.", "ZZZZ": "Not registered", "MSFT": "MSFT"}) == 1
    assert name_unnamed(db, {"AAPL": "Apple Computer"}) == 0  # the first real name stays
    assert db[SYMBOLS].find_one({"_id": "AAPL"})["name"] == "Apple Inc."
    assert db[SYMBOLS].find_one({"_id": "ZZZZ"}) is None
    assert sorted(awaiting_backfill(db)) == sorted(SEVEN)
    mark_backfilled(db, SEVEN[:3], T0)
    assert _add(db, "IBM", "u1") is Added.ADDED
    assert sorted(awaiting_backfill(db)) == sorted([*SEVEN[3:], "IBM"])
    assert remove_follower(db, "IBM", "u1") and sorted(awaiting_backfill(db)) == sorted(SEVEN[3:])


def test_yahoo_search_answer_parses_to_its_listings() -> None:
    found = parse_search(json.loads((FIXTURES / "yahoo_search_IBM.json").read_text()))
    assert found[0] == YahooListing("IBM", "International Business Machines Corporation", "NYSE", "EQUITY")
    assert [f.symbol for f in found] == ["IBM", "IBM.MX", "IBM.DE", "IBM270115C00250000"]
    assert parse_search(json.loads((FIXTURES / "yahoo_search_none.json").read_text())) == []
    with pytest.raises(YahooRefused):
        parse_search({"finance": {"result": None, "error": {"code": "Bad Request", "description": "Invalid query"}}})


def test_reader_caches_rereads_after_its_period_and_keeps_the_last_list_while_mongo_is_down(db: Database) -> None:
    clock = [0.0]
    reader = RegistryReader(lambda: db, SEVEN, ttl=15.0, now=lambda: T0, monotonic=lambda: clock[0])
    assert reader.symbols() == SEVEN and db[SYMBOLS].count_documents({}) == 7  # the first read seeds
    _add(db, "IBM", "u1")
    clock[0] = 14.9
    assert reader.symbols() == SEVEN  # cached
    clock[0] = 15.0
    assert reader.symbols() == [*SEVEN, "IBM"]
    remove_follower(db, "IBM", "u1")
    reader.forget()
    assert reader.symbols() == SEVEN

    _add(db, "IBM", "u1")
    clock[0] = 30.0
    assert reader.symbols() == [*SEVEN, "IBM"]
    down = MongoClient("mongodb://127.0.0.1:9", serverSelectionTimeoutMS=200)  # nothing listens on port 9
    try:
        stale = RegistryReader(lambda: down["x"], SEVEN, ttl=0.0, now=lambda: T0)
        assert stale.symbols() == SEVEN and stale.error is not None  # before any read: the defaults
        reader._db = lambda: down["x"]  # noqa: SLF001 - the same reader, its store gone
        clock[0] = 45.0
        assert reader.symbols() == [*SEVEN, "IBM"] and reader.error is not None  # the last read stands
    finally:
        down.close()


def test_the_registry_limit_holds_under_parallel_adds_of_different_symbols(db: Database) -> None:
    """Twelve users add twelve different new symbols at once against MAX_SYMBOLS = 7 defaults + 4:
    exactly four are registered, and the counter says eleven. Removing one frees its slot."""
    from concurrent.futures import ThreadPoolExecutor

    from database.mongo.symbols import registry_count

    seed_symbols(db, SEVEN, T0)
    tickers = ["IBM", "ORCL", "SAP", "INTC", "AMD", "CSCO", "ADBE", "CRM", "NFLX", "TXN", "QCOM", "AVGO"]
    start = threading.Barrier(len(tickers))

    def add(symbol: str) -> Added:
        start.wait()
        return _add(db, symbol, f"user-{symbol}", max_symbols=11)

    with ThreadPoolExecutor(len(tickers)) as pool:
        outcomes = list(pool.map(add, tickers))
    assert sorted(outcomes) == sorted([Added.ADDED] * 4 + [Added.REGISTRY_FULL] * 8), outcomes
    assert db[SYMBOLS].count_documents({}) == 11 == registry_count(db, T0)
    assert len(registered_symbols(db, SEVEN)) == 11
    refused = [t for t, o in zip(tickers, outcomes, strict=True) if o == Added.REGISTRY_FULL]
    assert all(db[SYMBOLS].find_one({"_id": t}) is None for t in refused)
    assert all(followed_by(db, f"user-{t}") == [] for t in refused)  # their user slots went back too

    added = [t for t, o in zip(tickers, outcomes, strict=True) if o == Added.ADDED]
    assert remove_follower(db, added[0], f"user-{added[0]}", T0) is True
    assert registry_count(db, T0) == 10
    assert _add(db, refused[0], "late", max_symbols=11) is Added.ADDED
    assert _add(db, refused[1], "late", max_symbols=11) is Added.REGISTRY_FULL


def test_seeding_and_removals_keep_the_registry_count_and_a_drifted_one_is_rebuilt(db: Database) -> None:
    from database.mongo import SYMBOL_QUOTAS
    from database.mongo.symbols import REGISTRY_QUOTA, SETTLE_SECONDS, rebuild_registry_count, registry_count

    threads = [threading.Thread(target=seed_symbols, args=(db, SEVEN, T0)) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert registry_count(db, T0) == 7  # four starters at once: each default counted once
    assert _add(db, "IBM", "u1") is Added.ADDED and _add(db, "IBM", "u2") is Added.ADDED
    assert _add(db, "ORCL", "u1") is Added.ADDED
    assert registry_count(db, T0) == 9  # a second follower takes no registry slot
    seed_symbols(db, ["AAPL", "MSFT", "IBM"], T0)  # five defaults dropped, IBM becomes one
    assert registry_count(db, T0) == 4 == db[SYMBOLS].count_documents({})
    assert remove_follower(db, "IBM", "u1", T0) and remove_follower(db, "IBM", "u2", T0)
    assert registry_count(db, T0) == 4  # IBM is a default now: it stays
    assert remove_follower(db, "ORCL", "u1", T0) and registry_count(db, T0) == 3
    seed_symbols(db, SEVEN, T0)
    assert registry_count(db, T0) == 7 == db[SYMBOLS].count_documents({})  # IBM left with its last follower

    # A web worker that died between its slot and its insert leaves the counter one high: at the limit
    # it refuses, until the counter has settled; then it is rebuilt from the collection.
    db[SYMBOL_QUOTAS].update_one({"_id": REGISTRY_QUOTA}, {"$inc": {"count": 1}})
    assert _add(db, "SAP", "u1", max_symbols=8) is Added.REGISTRY_FULL
    later = T0 + timedelta(seconds=SETTLE_SECONDS + 1)
    assert add_follower(db, "SAP", "u1", name="SAP SE", simulated=False, now=later, max_symbols=8,
                        max_per_user=50) is Added.ADDED
    assert registry_count(db, later) == 8 == db[SYMBOLS].count_documents({})

    # One low (a document written behind its back) is mended when a service next seeds; a missing
    # counter is built from the collection.
    db[SYMBOL_QUOTAS].update_one({"_id": REGISTRY_QUOTA}, {"$inc": {"count": -2}})
    assert rebuild_registry_count(db, later) is False  # just changed: a change may be in flight
    much_later = later + timedelta(seconds=SETTLE_SECONDS + 1)
    seed_symbols(db, SEVEN, much_later)
    assert registry_count(db, much_later) == 8
    db[SYMBOL_QUOTAS].delete_one({"_id": REGISTRY_QUOTA})
    assert registry_count(db, much_later) == 8
    assert _add(db, "TXN", "u1", max_symbols=8) is Added.REGISTRY_FULL
