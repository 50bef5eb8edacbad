"""Visible source health: the producer's source_status document (common/source_status.py), in
words on /healthz and the index page. Pure lines first; then the Flask app through its test
client on real SecantusDB and MariaDB; then the real producer process against the
recorded-answer server answering 429, with the web app as in its container."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import requests
from pymongo import MongoClient

from common.clock import utc_now
from common.source_status import SourceState, configured_sources, describe, describe_all, status_document
from database.mongo import source_status
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import wait_for
from tests.support.http_fixture import RecordedApi
from tests.support.pipeline import pipeline
from tests.support.yahoo_api import COOKIE, CRUMB_PATH, QUOTE, answer, serve_yahoo, yahoo_env
from tests.test_web_app import make_web

NOW = datetime(2026, 1, 13, 14, 0, 30, tzinfo=UTC)


def test_each_source_in_one_line() -> None:
    yahoo = SourceState("yahoo", ["AAPL", "MSFT"], last_answer=NOW - timedelta(seconds=12))
    assert describe(vars(yahoo), NOW) == "yahoo: 2 symbols, last answer 12 s ago"
    backing = SourceState("yahoo", [], NOW - timedelta(minutes=3), backing_off_until=NOW + timedelta(minutes=5),
                          refusal="rate_limited", detail="HTTP 429 Too Many Requests")
    assert describe(vars(backing), NOW) == "yahoo: backing off until 14:05 UTC after 429"
    # Once the backoff has ended (the document is older than the page), the refusal still shows.
    assert describe(vars(backing), NOW + timedelta(minutes=6)) == "yahoo: refused (429), last answer 9 min ago"
    assert describe(vars(SourceState("simulated", ["NVDA", "TSLA"], NOW)), NOW) == "simulated: 2 symbols"
    assert describe(vars(SourceState("alpha_vantage", [], None, refusal="no_key")), NOW) == \
        "alpha_vantage: not configured (no ALPHA_VANTAGE_API_KEY)"
    assert describe(vars(SourceState("yahoo")), NOW) == "yahoo: no answer yet"
    # The live stream: its symbols while connected, and what happens while it is down.
    streaming = SourceState("yahoo_stream", ["AAPL"], last_answer=NOW - timedelta(seconds=1))
    assert describe(vars(streaming), NOW) == "yahoo_stream: 1 symbol, last answer 1 s ago"
    down = SourceState("yahoo_stream", [], NOW - timedelta(seconds=40), refusal="stream_down")
    assert describe(vars(down), NOW) == \
        "yahoo_stream: disconnected, reconnecting (polling covers its symbols), last print 40 s ago"

    doc = status_document([yahoo, SourceState("simulated", ["NVDA"], NOW)], NOW)
    assert describe_all(doc, NOW) == ["yahoo: 2 symbols, last answer 12 s ago", "simulated: 1 symbol"]
    assert describe_all(doc, NOW + timedelta(minutes=10))[0] == "producer: last report 10 min ago (is it running?)"
    assert describe_all(None, NOW) == ["producer: no source status yet (is the producer running?)"]


def test_the_source_list_says_alpha_vantage_is_not_configured_without_its_key() -> None:
    sources = ["yahoo", "alpha_vantage", "simulated"]
    assert configured_sources(sources, alpha_vantage_key=False) == [
        "yahoo (Yahoo Finance)", "alpha_vantage: not configured (no ALPHA_VANTAGE_API_KEY)", "simulated"]
    assert configured_sources(sources, alpha_vantage_key=True) == ["yahoo (Yahoo Finance)", "alpha_vantage",
                                                                   "simulated"]
    assert configured_sources(["simulated"], alpha_vantage_key=False) == ["simulated"]


def test_healthz_and_index_say_what_each_source_does(mongo: SecantusMongo, mysql_server: dict[str, Any],
                                                     mysql_db: str, tmp_path: Path) -> None:
    w = make_web(mongo.uri, mysql_server, mysql_db, tmp_path / "instance", alpha_vantage_api_key="",
                 quote_sources=["yahoo", "alpha_vantage", "simulated"])
    client: MongoClient = MongoClient(mongo.uri, tz_aware=True)
    db = client[w.settings.mongo_db]
    try:
        now = utc_now()
        until = now + timedelta(minutes=5)
        source_status.save(db, status_document([
            SourceState("yahoo", [], now - timedelta(minutes=2), backing_off_until=until, refusal="rate_limited"),
            SourceState("simulated", ["AAPL", "MSFT"], now),
            SourceState("<script>alert(1)</script>", ["AAPL"], now),  # whatever a name holds, it stays text
        ], now))
        body = w.client.get("/healthz").get_json()
        assert body["status"] == "ok"
        assert body["sources"][:2] == [f"yahoo: backing off until {until:%H:%M} UTC after 429", "simulated: 2 symbols"]
        html = w.client.get("/").get_data(as_text=True)
        line = re.search(r'<p class="hint" id="source-health">(.*?)</p>', html, re.S).group(1)  # type: ignore[union-attr]
        assert line.startswith(f"Sources now: {body['sources'][0]}; simulated: 2 symbols; ")
        assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;: 1 symbol" in line
        # Without its key alpha_vantage can never answer: the list of sources says so.
        assert ("Sources: yahoo (Yahoo Finance), alpha_vantage: not configured (no ALPHA_VANTAGE_API_KEY), "
                "simulated.") in html
    finally:
        client.drop_database(w.settings.mongo_db)
        client.close()
        w.app.extensions["stores"].close()


def test_the_producer_says_yahoo_backs_off_after_429_on_healthz_and_the_page(
        kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch, smtp: SmtpServer, mysql_server: dict,
        mysql_db: str, recorded_api: RecordedApi) -> None:
    """The real producer process; Yahoo answers its batch request with 429 and Retry-After: 300."""
    serve_yahoo(recorded_api)
    recorded_api.route(QUOTE, answer("yahoo_429.txt", 429, {"Retry-After": "300"}))
    env = {"QUOTE_SOURCES": "yahoo,simulated", **yahoo_env(recorded_api)}
    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp, env=env,
                  roles=["producer", "flask"]) as (stack, probe):
        def status() -> dict | None:
            return source_status.load(probe.db)

        wait_for(lambda: (doc := status()) is not None and len(doc["sources"][1]["symbols"]) == 7,
                 timeout=60, what="the producer's source status with every symbol simulated")
        doc = status()
        assert doc is not None
        yahoo = doc["sources"][0]
        assert yahoo["name"] == "yahoo" and yahoo["refusal"] == "rate_limited" and yahoo["symbols"] == []
        until = yahoo["backing_off_until"]
        # Retry-After 300 s from the refused request (within the few ticks since).
        assert timedelta(seconds=240) < until - doc["updated_at"] <= timedelta(seconds=300)
        expected = [f"yahoo: backing off until {until:%H:%M} UTC after 429", "simulated: 7 symbols"]
        health = requests.get(stack.flask_url + "/healthz", timeout=10).json()
        assert health["sources"] == expected
        html = requests.get(stack.flask_url + "/", timeout=10).text
        assert f"Sources now: {'; '.join(expected)}</p>" in html
    # One handshake and one batch request: the backoff holds (no request every tick).
    assert [c.path for c in recorded_api.calls()] == [COOKIE, CRUMB_PATH, QUOTE]
