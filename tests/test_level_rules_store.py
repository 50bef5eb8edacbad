"""price_level_rules on SecantusDB: the per-account limit holds when one account posts many rules at once."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest
from pymongo.database import Database

from config import Settings
from database.mongo import PRICE_LEVEL_RULES, make_client
from database.mongo.user_rules import Added, add_level_rule, delete_level_rule
from scripts.servers import SecantusMongo

T0 = datetime(2026, 3, 2, 15, 0, tzinfo=UTC)


@pytest.fixture
def db(mongo: SecantusMongo) -> Iterator[Database]:
    client = make_client(Settings(_env_file=None, mongo_uri=mongo.uri))  # type: ignore[call-arg]
    yield client[f"stock_market_{uuid.uuid4().hex[:10]}"]
    client.close()


def test_parallel_posts_never_pass_the_per_account_limit(db: Database) -> None:
    """Eight rules posted at once (two web workers, a double click) against a limit of three:
    at most three are stored, every other post is refused, and each refusal stored nothing."""
    start = threading.Barrier(8)

    def post(level: float) -> tuple[Added, str | None]:
        start.wait()
        return add_level_rule(db, "u1", symbol="AAPL", direction="above", level=level, mode="once", now=T0,
                              max_per_user=3)

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(post, [300.0 + i for i in range(8)]))
    added = [rule_id for outcome, rule_id in outcomes if outcome is Added.ADDED]
    stored = sorted(str(d["_id"]) for d in db[PRICE_LEVEL_RULES].find({"user_id": "u1"}))
    assert 1 <= len(added) <= 3, outcomes
    assert stored == sorted(added), (stored, outcomes)
    assert all(rule_id is None for outcome, rule_id in outcomes if outcome is Added.USER_FULL)

    # Below the limit again, a post is stored; another user's rules never count against u1.
    assert delete_level_rule(db, "u1", added[0])
    add_level_rule(db, "u2", symbol="AAPL", direction="below", level=250.0, mode="once", now=T0, max_per_user=3)
    outcome, rule_id = add_level_rule(db, "u1", symbol="AAPL", direction="below", level=250.0, mode="rearm",
                                      now=T0, max_per_user=3)
    assert outcome is Added.ADDED and rule_id is not None
