"""market_data/alpha_vantage.py: parsing, every refusal kind over real HTTP, and the call budgets."""

from __future__ import annotations

import json
import threading
import uuid

import pytest
from pymongo import MongoClient

from database.mongo.api_budget import MongoCallBudget
from database.setup_mongodb import ensure_indexes
from market_data.alpha_vantage import AlphaVantageClient, AlphaVantageRefused, parse_daily_series
from scripts.servers import SecantusMongo
from tests.conftest import Stack
from tests.support.call_budget import LocalCallBudget
from tests.support.http_fixture import RecordedApi, Response

QUOTE = {"Global Quote": {
    "01. symbol": "AAPL", "02. open": "260.2200", "03. high": "261.3500", "04. low": "260.1900",
    "05. price": "261.0500", "06. volume": "287051", "07. latest trading day": "2026-01-13",
    "08. previous close": "260.2100", "09. change": "0.8400", "10. change percent": "0.3228%",
}}
NOTE = {"Note": "Thank you for using Alpha Vantage! Our standard API call frequency is 5 calls per minute "
                "and 500 calls per day."}
INFO = {"Information": "We have detected your API key as DEMO and our standard API rate limit is 25 requests per day."}
ERROR = {"Error Message": "Invalid API call. Please retry or visit the documentation "
                          "(https://www.alphavantage.co/documentation/) for GLOBAL_QUOTE."}


def _json(payload: object, status: int = 200, delay: float = 0.0) -> Response:
    return Response(status, json.dumps(payload).encode(), "application/json", delay)


@pytest.fixture
def client_for(recorded_api: RecordedApi, stack: Stack):  # type: ignore[no-untyped-def]
    def make(response: Response, key: str = "demo-key", budget: object | None = None) -> AlphaVantageClient:
        recorded_api.route("/query", response)
        settings = stack.settings(alpha_vantage_url=recorded_api.url + "/query", alpha_vantage_api_key=key,
                                  http_timeout_seconds=0.5)
        return AlphaVantageClient(settings, budget or LocalCallBudget(100, 100))  # type: ignore[arg-type]
    return make


def test_real_quote_is_parsed(client_for, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    quote = client_for(_json(QUOTE)).global_quote("AAPL")
    assert quote == {"symbol": "AAPL", "open": 260.22, "high": 261.35, "low": 260.19, "price": 261.05, "volume": 287051,
                     "latest_trading_day": "2026-01-13", "previous_close": 260.21, "change_percent": 0.3228}
    call = recorded_api.calls("/query")[0]
    assert call.query == {"function": "GLOBAL_QUOTE", "symbol": "AAPL", "apikey": "demo-key"}
    assert "stock-analysis-system" in call.headers["User-Agent"]


@pytest.mark.parametrize(("response", "kind"), [
    (_json({"Global Quote": {}}), "empty_quote"),
    (_json(NOTE), "rate_limit_note"),
    (_json(INFO), "rate_limit_information"),
    (_json(ERROR), "error_message"),
    (_json({"oops": True}, status=503), "http_error"),
    (Response(200, b"<html>maintenance</html>", "text/html"), "bad_payload"),
    (_json({"Global Quote": {"01. symbol": "AAPL", "05. price": "n/a"}}), "bad_payload"),
    (_json(QUOTE, delay=1.5), "timeout"),
])
def test_every_refusal_has_its_kind(client_for, response: Response, kind: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AlphaVantageRefused) as err:
        client_for(response).global_quote("AAPL")
    assert err.value.kind == kind


def test_no_key_and_exhausted_budget_make_no_call(client_for, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(AlphaVantageRefused) as err:
        client_for(_json(QUOTE), key="").global_quote("AAPL")
    assert err.value.kind == "no_key"
    with pytest.raises(AlphaVantageRefused) as err:
        client_for(_json(QUOTE), budget=LocalCallBudget(0, 10)).global_quote("AAPL")
    assert err.value.kind == "budget_exhausted"
    assert recorded_api.calls() == []


def test_daily_series_oldest_first() -> None:
    payload = {"Meta Data": {}, "Time Series (Daily)": {
        "2026-01-13": {"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1.5", "5. volume": "100"},
        "2026-01-12": {"1. open": "1", "2. high": "2", "3. low": "0.5", "4. close": "1.2", "5. volume": "90"},
    }}
    rows = parse_daily_series(payload)
    assert [str(r["date"]) for r in rows] == ["2026-01-12", "2026-01-13"] and rows[1]["close"] == 1.5


def test_local_budget_per_minute_and_per_day() -> None:
    now = [0.0]
    budget = LocalCallBudget(per_minute=5, per_day=7, clock=lambda: now[0])
    assert [budget.try_spend() for _ in range(6)] == [True] * 5 + [False]
    now[0] = 61
    assert [budget.try_spend() for _ in range(3)] == [True, True, False]  # the day's 7 are spent
    now[0] = 86400 + 1
    assert budget.try_spend()


def test_shared_budget_holds_across_concurrent_spenders(mongo: SecantusMongo) -> None:
    client = MongoClient(mongo.uri)
    db = client[f"budget_{uuid.uuid4().hex[:8]}"]
    ensure_indexes(db)
    now = 1_800_000_000.0
    spenders = [MongoCallBudget(db, per_minute=5, per_day=25, clock=lambda: now) for _ in range(4)]
    results: list[bool] = []
    lock = threading.Lock()

    def spend(b: MongoCallBudget) -> None:
        for _ in range(4):
            ok = b.try_spend()
            with lock:
                results.append(ok)

    threads = [threading.Thread(target=spend, args=(b,)) for b in spenders]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 5  # 16 attempts in one minute, 5 allowed
    client.close()
