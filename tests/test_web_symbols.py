"""Adding and removing tickers from the dashboard (POST /symbols, /symbols/<s>/remove) through the
test client against SecantusDB: Yahoo's search (recorded answers in Yahoo's format) or, with only
the simulator, a simulated label; bad input, limits, CSRF and sessions; the API follows the registry."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench.webdata import csrf_token, quote, utcnow, web_settings
from database.mongo import SYMBOLS, get_db, make_client
from flask_web_app.app import create_app
from market_data.refusal import Refusal
from scripts.servers import SecantusMongo
from tests.support.http_fixture import RecordedApi, Request, Response
from tests.support.yahoo_api import COOKIE, CRUMB, answer, has_cookie, serve_yahoo
from tests.test_web_auth import errors_of, login, register, sign_up

SEARCH = "/v1/finance/search"
SEVEN = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]


def yahoo_search(req: Request) -> Response:
    """/v1/finance/search as Yahoo answers: IBM's matches for "IBM", none for anything else."""
    if req.query.get("crumb") != CRUMB or not has_cookie(req):
        return answer("yahoo_invalid_crumb.json", 401)
    return answer("yahoo_search_IBM.json" if req.query.get("q", "").upper() == "IBM" else "yahoo_search_none.json")


@pytest.fixture
def make_web(mongo: SecantusMongo, mysql_server: dict[str, Any], mysql_db: str,
             tmp_path: Path) -> Iterator[Callable[..., SimpleNamespace]]:
    made: list[tuple[Any, Any]] = []

    def make(**overrides: Any) -> SimpleNamespace:
        overrides.setdefault("quote_sources", "simulated")
        settings = web_settings(mongo.uri, mysql_server, mysql_db, uuid.uuid4().hex[:10],
                                news_outbox_dir=str(tmp_path / "outbox"), **overrides)
        app = create_app(settings, instance_path=str(tmp_path))
        app.config["TESTING"] = True
        client = make_client(settings)
        made.append((app, client))
        return SimpleNamespace(app=app, client=app.test_client(), settings=settings, tmp=tmp_path,
                               db=get_db(client, settings), outbox=tmp_path / "outbox")
    yield make
    for app, client in made:
        client.close()
        app.extensions["stores"].close()


def add(client: FlaskClient, symbol: str, **extra: str) -> TestResponse:
    data = {"symbol": symbol, "csrf_token": csrf_token(client, "/"), **extra}
    return client.post("/symbols", data={k: v for k, v in data.items() if v is not None})


def remove(client: FlaskClient, symbol: str) -> TestResponse:
    return client.post(f"/symbols/{symbol}/remove", data={"csrf_token": csrf_token(client, "/")})


def stored(web: SimpleNamespace) -> dict[str, dict]:
    return {d["_id"]: d for d in web.db[SYMBOLS].find()}


def user_id(web: SimpleNamespace, email: str = "ann@example.com") -> str:
    return str(web.db.users.find_one({"email": email})["_id"])


def test_only_the_simulator_accepts_a_ticker_labelled_simulated_and_the_api_follows(make_web) -> None:  # type: ignore[no-untyped-def]
    web = make_web()
    client = sign_up(web)
    assert client.get("/api/quotes/IBM/recent").status_code == 404  # not followed yet
    resp = add(client, "ibm")
    assert resp.status_code == 302
    page = client.get("/").get_data(as_text=True)
    assert "Now following IBM" in page and "simulated" in page
    assert re.search(r'<li data-symbol="IBM">', page)
    doc = stored(web)["IBM"]
    assert doc["followers"] == [user_id(web)] and doc["simulated"] is True and doc["seeded"] is False
    assert doc["added_at"] is not None and doc["name"] == "IBM"
    assert client.get("/api/quotes/IBM/recent").status_code == 200  # a registered symbol: no 404
    assert 'name="watchlist" type="checkbox" value="IBM"' in client.get("/account").get_data(as_text=True)
    assert set(stored(web)) == {*SEVEN, "IBM"}  # seeded at start, plus the addition

    assert remove(client, "IBM").status_code == 302
    assert "IBM" not in stored(web) and client.get("/api/quotes/IBM/recent").status_code == 404
    assert remove(client, "IBM").status_code == 404  # not followed any more


@pytest.mark.parametrize(("typed", "expect"), [
    ("<script>", "starts with a letter"),
    ("A" * 200, "at most 10 characters"),
    ("../x", "path characters"),
    ("IB M", "no spaces"),
    ("   ", "Enter a ticker"),
])
def test_malformed_tickers_get_a_clear_error_and_store_nothing(make_web, typed: str, expect: str) -> None:  # type: ignore[no-untyped-def]
    web = make_web()
    client = sign_up(web)
    before = stored(web)
    resp = add(client, typed)
    assert resp.status_code == 400
    assert expect in html.unescape(errors_of(resp, "symbol"))
    assert "<script>" not in resp.get_data(as_text=True).split('id="my-symbols"')[1].split("</section>")[0]
    assert stored(web) == before


def test_duplicates_defaults_and_limits_are_refused_with_their_reason(make_web) -> None:  # type: ignore[no-untyped-def]
    web = make_web(max_symbols_per_user=2, max_symbols=10)
    client = sign_up(web)
    assert add(client, "IBM").status_code == 302
    resp = add(client, "IBM")
    assert resp.status_code == 409 and "You already follow IBM" in errors_of(resp, "symbol")
    resp = add(client, "AAPL")
    assert resp.status_code == 409 and "default symbols" in errors_of(resp, "symbol")
    assert add(client, "ORCL").status_code == 302
    resp = add(client, "SAP")
    assert resp.status_code == 409 and "MAX_SYMBOLS_PER_USER" in errors_of(resp, "symbol")
    other = sign_up(web, web.app.test_client(), email="bob@example.com", name="Bob")
    assert add(other, "SAP").status_code == 302  # 7 + IBM + ORCL + SAP = 10
    resp = add(other, "CSCO")
    assert resp.status_code == 409 and "MAX_SYMBOLS" in errors_of(resp, "symbol")
    assert set(stored(web)) == {*SEVEN, "IBM", "ORCL", "SAP"}


def test_no_add_without_csrf_session_or_confirmed_address(make_web) -> None:  # type: ignore[no-untyped-def]
    web = make_web()
    anonymous = web.app.test_client()
    resp = anonymous.post("/symbols", data={"symbol": "IBM"})
    assert resp.status_code in (302, 400)
    client = sign_up(web)
    resp = client.post("/symbols", data={"symbol": "IBM"})  # no CSRF token
    assert resp.status_code == 400
    resp = client.post("/symbols", data={"symbol": "IBM", "csrf_token": "forged"})
    assert resp.status_code == 400
    assert client.post("/symbols/AAPL/remove", data={}).status_code == 400
    # Registered and logged in but not confirmed.
    fresh = web.app.test_client()
    assert register(fresh, email="cy@example.com", name="Cy").status_code == 200
    assert login(fresh, email="cy@example.com").status_code == 302
    resp = add(fresh, "IBM")
    assert resp.status_code == 403 and "Confirm your email" in errors_of(resp, "symbol")
    assert "IBM" not in stored(web)


def test_yahoo_decides_and_names_the_ticker(make_web, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    serve_yahoo(recorded_api)
    recorded_api.route(SEARCH, yahoo_search)
    web = make_web(quote_sources="yahoo,simulated", yahoo_finance_url=recorded_api.url,
                   yahoo_cookie_url=recorded_api.url + COOKIE, http_timeout_seconds=2)
    client = sign_up(web)
    resp = add(client, "NOPEX")
    assert resp.status_code == 400 and "Yahoo Finance does not know the ticker NOPEX" in errors_of(resp, "symbol")
    assert add(client, "IBM").status_code == 302
    doc = stored(web)["IBM"]
    assert doc["name"] == "International Business Machines Corporation" and doc["simulated"] is False
    searches = recorded_api.calls(SEARCH)
    assert [c.query["q"] for c in searches] == ["NOPEX", "IBM"] and all(c.query["crumb"] == CRUMB for c in searches)
    suggestions = client.get("/symbols/suggest?q=IBM").get_json()["suggestions"]
    assert [s["symbol"] for s in suggestions] == ["IBM", "IBM.MX", "IBM.DE"]  # the option's symbol is no ticker


def test_yahoo_refusing_is_said_and_stores_nothing(make_web, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    serve_yahoo(recorded_api)
    recorded_api.route(SEARCH, answer("yahoo_429.txt", 429))
    web = make_web(quote_sources="yahoo,simulated", yahoo_finance_url=recorded_api.url,
                   yahoo_cookie_url=recorded_api.url + COOKIE, http_timeout_seconds=2)
    client = sign_up(web)
    resp = add(client, "IBM")
    assert resp.status_code == 400 and "could not be asked about IBM right now" in errors_of(resp, "symbol")
    assert "IBM" not in stored(web)
    # Seen on the local stack: the message ended "(backing_off)", the log's word, not the user's.
    again = errors_of(add(client, "IBM"), "symbol")
    assert "left alone for a while; try again in a minute" in again, again
    assert not any(str(kind) in again for kind in Refusal), again


def test_each_visitor_sees_their_own_symbols_not_everyone_s(make_web) -> None:  # type: ignore[no-untyped-def]
    """Ann added IBM: her / and /api/quotes/latest list the defaults and IBM; Bob and a signed-out
    visitor get the defaults only, yet IBM's dashboard and its API answer for anyone (registered)."""
    from database.mongo.prices import insert_quotes

    web = make_web()
    ann = sign_up(web)
    assert add(ann, "IBM").status_code == 302
    insert_quotes(web.db, [quote(s, utcnow(), 1) for s in [*SEVEN, "IBM"]])

    def listed(client: FlaskClient) -> set[str]:
        """The page's rows; the live page's poll (the API without ?symbols=) asks for the same, in order."""
        rows = re.findall(r'<tr data-symbol="([^"]+)"', client.get("/").get_data(as_text=True))
        assert [q["symbol"] for q in client.get("/api/quotes/latest").get_json()["quotes"]] == rows
        return set(rows)

    assert listed(ann) == {*SEVEN, "IBM"}
    bob = sign_up(web, web.app.test_client(), email="bob@example.com")
    assert listed(bob) == set(SEVEN)
    visitor = web.app.test_client()
    assert listed(visitor) == set(SEVEN)
    assert visitor.get("/api/quotes/latest?symbols=IBM").get_json()["quotes"][0]["symbol"] == "IBM"
    dashboard = visitor.get("/dashboard?symbol=IBM")
    assert dashboard.status_code == 200 and '<option value="IBM" selected' in dashboard.get_data(as_text=True)
