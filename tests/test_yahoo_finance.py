"""Yahoo Finance quotes (market_data/yahoo_finance.py) and the producer's source chain,
against a local server answering in Yahoo's formats (tests/fixtures/yahoo_*: field
names, nesting and error shapes as Yahoo sends them; prices made up) through the real
client (curl_cffi as Chrome): the cookie + crumb handshake, batch quotes (an open and a
closed market, 150 symbols, an unknown symbol), 401 Invalid Crumb, 429 with Retry-After,
999, the consent page. Each gives a valid quote message or one clear fallback line, never
a crash; and every request the server sees is Chrome's."""

from __future__ import annotations

import json
import logging
import re
from datetime import UTC, datetime, timedelta

import pytest
import requests

from common.clock import utc_now
from market_data.market_hours import MarketHours
from market_data.simulator import MarketSimulator
from market_data.yahoo_finance import YahooFinanceClient, YahooRefused, parse_chart, parse_quotes
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import wait_for
from streaming.producer import QuoteSource
from streaming.schema import parse_message, to_message
from tests.conftest import Stack
from tests.support.http_fixture import FIXTURES, RecordedApi, Request, Response
from tests.support.pipeline import pipeline
from tests.support.yahoo_api import (
    CHART,
    COOKIE,
    CRUMB,
    CRUMB_PATH,
    QUOTE,
    answer,
    asked_symbols,
    crumbs,
    has_cookie,
    moved_to,
    recorded_entries,
    serve_yahoo,
    yahoo_env,
)

NYSE = MarketHours("XNYS")
DURING = datetime(2026, 1, 13, 15, 0, 50, tzinfo=UTC)  # 10:00:50 New York, the AAPL answer's session
AFTER_CLOSE = datetime(2026, 1, 13, 22, 30, tzinfo=UTC)  # 17:30 New York
HANDSHAKE = [COOKIE, CRUMB_PATH]


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


@pytest.fixture
def chain(recorded_api: RecordedApi, stack: Stack, caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="test.yahoo")

    def make(symbols: str, sources: str = "yahoo,simulated") -> QuoteSource:
        settings = stack.settings(yahoo_finance_url=recorded_api.url, yahoo_cookie_url=recorded_api.url + COOKIE,
                                  quote_sources=sources, stock_symbols=symbols, poll_interval_seconds=15,
                                  http_timeout_seconds=2)
        simulator = MarketSimulator(settings.stock_symbols, NYSE, 15, seed=1)
        return QuoteSource(settings, simulator, logging.getLogger("test.yahoo"), hours=NYSE,
                           yahoo=YahooFinanceClient(settings))
    return make


def refusals(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "Yahoo refused" in r.getMessage()]


def paths(api: RecordedApi) -> list[str]:
    return [c.path for c in api.calls()]


def stored(quote: dict) -> dict:
    """What the consumer would store: the message as validated by the schema."""
    return parse_message(to_message(quote))


def test_parse_normal_and_closed_answers() -> None:
    aapl = parse_chart(fixture("yahoo_chart_AAPL_open.json"), "AAPL")
    meta = fixture("yahoo_chart_AAPL_open.json")["chart"]["result"][0]["meta"]
    assert aapl.price == meta["regularMarketPrice"] and aapl.previous_close == 260.21
    assert aapl.day_volume == meta["regularMarketVolume"] and aapl.low <= aapl.open <= aapl.high
    assert aapl.market_open(DURING) and not aapl.market_open(AFTER_CLOSE)
    msft = parse_chart(fixture("yahoo_chart_MSFT_closed.json"), "MSFT")
    assert not msft.market_open(AFTER_CLOSE) and msft.session_end == datetime(2026, 1, 13, 21, 0, tzinfo=UTC)
    with pytest.raises(YahooRefused, match="unknown_symbol: Not Found: No data found, symbol may be delisted"):
        parse_chart(fixture("yahoo_chart_unknown_symbol.json"), "ZZZZ")
    with pytest.raises(YahooRefused, match="asked for MSFT, got AAPL"):
        parse_chart(fixture("yahoo_chart_AAPL_open.json"), "MSFT")
    with pytest.raises(YahooRefused, match="bad_payload"):
        parse_chart({"chart": {"result": [{"meta": {"symbol": "AAPL"}}], "error": None}}, "AAPL")


def test_parse_quote_answers() -> None:
    quotes, refused = parse_quotes(fixture("yahoo_quote_open.json"), ["AAPL", "ZZZZ", "MSFT"])
    assert set(quotes) == {"AAPL", "MSFT"} and refused["ZZZZ"].kind == "unknown_symbol"
    aapl = quotes["AAPL"]
    assert aapl.price == 259.7447 and aapl.previous_close == 260.21 and aapl.day_volume == 7038626
    assert aapl.low <= aapl.open <= aapl.high and aapl.market_open(DURING) and aapl.session_start is None
    [msft] = parse_quotes(fixture("yahoo_quote_closed.json"), ["MSFT"])[0].values()
    assert msft.market_state == "POST" and not msft.market_open(DURING)
    with pytest.raises(YahooRefused, match="invalid_crumb: Unauthorized: Invalid Crumb"):
        parse_quotes(fixture("yahoo_invalid_crumb.json"), ["AAPL"])
    with pytest.raises(YahooRefused, match="bad_payload"):
        parse_quotes({"quoteResponse": {}}, ["AAPL"])


def test_handshake_then_one_batch_request_per_refresh(chain, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    serve_yahoo(recorded_api)
    source = chain("AAPL,MSFT,GOOGL")
    quotes = {q["symbol"]: q for q in source.tick(DURING)}
    assert {q["source"] for q in quotes.values()} == {"yahoo"} and len(quotes) == 3
    doc = stored(quotes["AAPL"])
    assert doc["market_open"] is True and doc["price"] == 259.7447 and doc["previous_close"] == 260.21
    assert doc["change_percent"] == round((259.7447 / 260.21 - 1) * 100, 4) and doc["volume"] > 0
    # Cookie, then the crumb with that cookie, then one quote request for all three with both.
    assert paths(recorded_api) == [*HANDSHAKE, QUOTE]
    cookie_call, crumb_call, quote_call = recorded_api.calls()
    assert not has_cookie(cookie_call) and has_cookie(crumb_call) and has_cookie(quote_call)
    assert quote_call.query == {"symbols": "AAPL,MSFT,GOOGL", "crumb": CRUMB}
    # The next request waits for YAHOO_REFRESH_SECONDS (60 s): ticks in between send nothing.
    assert source.tick(DURING + timedelta(seconds=15)) == [] == source.tick(DURING + timedelta(seconds=45))
    again = source.tick(DURING + timedelta(seconds=60))
    assert [q["source"] for q in again] == ["yahoo"] * 3
    assert again[0]["volume"] == 0  # the same cumulative volume: nothing traded since
    assert paths(recorded_api) == [*HANDSHAKE, QUOTE, QUOTE]  # the crumb is kept: no second handshake


def test_market_closed_answer_keeps_the_last_price(chain, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    serve_yahoo(recorded_api, recorded_entries("yahoo_quote_closed.json"))
    source = chain("MSFT")
    [quote] = source.tick(AFTER_CLOSE)
    doc = stored(quote)
    assert doc["source"] == "yahoo" and doc["market_open"] is False and doc["volume"] == 0
    assert doc["price"] == 481.2023
    # Closed: one quote per CLOSED_QUOTE_INTERVAL_SECONDS (300 s), not every 60 s.
    assert source.tick(AFTER_CLOSE + timedelta(seconds=60)) == []
    assert len(source.tick(AFTER_CLOSE + timedelta(seconds=300))) == 1


def test_invalid_crumb_means_a_new_handshake_and_one_more_try(chain, recorded_api: RecordedApi,  # type: ignore[no-untyped-def]
                                                              caplog: pytest.LogCaptureFixture) -> None:
    serve_yahoo(recorded_api)
    recorded_api.route(CRUMB_PATH, crumbs("stale.crumb", CRUMB))  # the first crumb Yahoo no longer takes
    source = chain("AAPL")
    assert [q["source"] for q in source.tick(DURING)] == ["yahoo"]
    assert paths(recorded_api) == [*HANDSHAKE, QUOTE, *HANDSHAKE, QUOTE]
    assert [c.query["crumb"] for c in recorded_api.calls(QUOTE)] == ["stale.crumb", CRUMB]
    assert refusals(caplog) == []
    # A crumb Yahoo never takes: one refusal line, the fallback, and a backoff (no third try).
    recorded_api.reset()
    serve_yahoo(recorded_api)
    recorded_api.route(CRUMB_PATH, crumbs("stale.crumb"))
    source = chain("AAPL")
    assert [q["source"] for q in source.tick(DURING)] == ["simulated"]
    assert paths(recorded_api) == [*HANDSHAKE, QUOTE, *HANDSHAKE, QUOTE]
    [line] = refusals(caplog)
    assert line.startswith("Yahoo refused AAPL (invalid_crumb): Unauthorized: Invalid Crumb; backing off 60 s")


def test_consent_page_is_reported_and_quotes_fall_back(chain, recorded_api: RecordedApi,  # type: ignore[no-untyped-def]
                                                       caplog: pytest.LogCaptureFixture) -> None:
    """EU addresses: fc.yahoo.com sends the browser to Yahoo's consent form instead of a cookie."""
    serve_yahoo(recorded_api)
    recorded_api.route(COOKIE, Response(302, b"", "text/html",
                                        headers={"Location": "/consent?brandType=nonEu&sessionId=3_cc-session_0a1b"}))
    recorded_api.route("/consent", answer("yahoo_consent.html"))
    source = chain("AAPL,MSFT")
    assert [q["source"] for q in source.tick(DURING)] == ["simulated", "simulated"]
    assert paths(recorded_api) == [COOKIE, "/consent"]  # no crumb, no quote asked without the cookie
    [line] = refusals(caplog)
    assert "Yahoo refused AAPL,MSFT (consent): Yahoo's cookie-consent page" in line
    assert "not given automatically; backing off 60 s" in line
    assert line.endswith("quotes come from simulated until Yahoo answers again")
    source.tick(DURING + timedelta(seconds=15))
    assert len(recorded_api.calls()) == 2 and len(refusals(caplog)) == 1


def test_429_with_retry_after_backs_off_that_long_and_falls_back(chain, recorded_api: RecordedApi,  # type: ignore[no-untyped-def]
                                                                 caplog: pytest.LogCaptureFixture) -> None:
    serve_yahoo(recorded_api)
    recorded_api.route(QUOTE, answer("yahoo_429.txt", 429, {"Retry-After": "300"}))
    source = chain("AAPL,MSFT")
    assert [q["source"] for q in source.tick(DURING)] == ["simulated", "simulated"]
    [line] = refusals(caplog)
    assert line == ("Yahoo refused AAPL,MSFT (rate_limited): HTTP 429 Too Many Requests; backing off 300 s; "
                    "quotes come from simulated until Yahoo answers again")
    serve_yahoo(recorded_api)  # Yahoo would answer now, but the client waits the 300 s it was told
    for seconds in (15, 60, 120, 285):
        assert {q["source"] for q in source.tick(DURING + timedelta(seconds=seconds))} == {"simulated"}
    assert len(recorded_api.calls(QUOTE)) == 1 and len(refusals(caplog)) == 1
    assert [q["source"] for q in source.tick(DURING + timedelta(seconds=300))] == ["yahoo", "yahoo"]


ERROR_PAGE = Response(503, b"<!DOCTYPE html><html><head><title>Yahoo</title></head><body>Will be right back...</body>"
                          b"</html>", "text/html; charset=utf-8")


@pytest.mark.parametrize(("refusal", "kind", "said"), [
    (answer("yahoo_429.txt", 429), "rate_limited", "HTTP 429 Too Many Requests; backing off 60 s"),
    (answer("yahoo_429.txt", 999), "denied", "HTTP 999 Too Many Requests; backing off 60 s"),
    (answer("yahoo_consent.html"), "consent", "Yahoo's cookie-consent page"),
    (ERROR_PAGE, "html_page", "HTTP 503 HTML page instead of JSON"),
    (answer("yahoo_chart_unknown_symbol.json", 502), "http_error", "HTTP 502; backing off 60 s"),
    (Response.fixture("yahoo_quote_open.json", delay=2.5), "timeout", "no answer in 2s; backing off 60 s"),
], ids=["429", "999", "consent", "html", "502", "timeout"])
def test_refusal_falls_back_says_why_once_and_backs_off(  # type: ignore[no-untyped-def]
        chain, recorded_api: RecordedApi, caplog: pytest.LogCaptureFixture, refusal: Response, kind: str,
        said: str) -> None:
    serve_yahoo(recorded_api)
    recorded_api.route(QUOTE, refusal)
    source = chain("AAPL,MSFT")
    quotes = source.tick(DURING)
    assert [(q["symbol"], q["source"]) for q in quotes] == [("AAPL", "simulated"), ("MSFT", "simulated")]
    assert all(stored(q)["market_open"] is True for q in quotes)
    [line] = refusals(caplog)
    assert f"Yahoo refused AAPL,MSFT ({kind})" in line and said in line
    assert line.endswith("quotes come from simulated until Yahoo answers again")
    assert len(recorded_api.calls(QUOTE)) == 1  # one request, then nothing while backing off
    for i in range(1, 4):
        assert {q["source"] for q in source.tick(DURING + timedelta(seconds=15 * i))} == {"simulated"}
    assert len(recorded_api.calls(QUOTE)) == 1 and len(refusals(caplog)) == 1
    # After the backoff Yahoo is asked again; now it answers and both continue from the real prices.
    serve_yahoo(recorded_api)
    later = source.tick(DURING + timedelta(seconds=60))
    assert [q["source"] for q in later] == ["yahoo", "yahoo"]


def test_unknown_symbol_inside_a_batch_falls_back_for_that_symbol_only(chain, recorded_api: RecordedApi,  # type: ignore[no-untyped-def]
                                                                       caplog: pytest.LogCaptureFixture) -> None:
    serve_yahoo(recorded_api)
    source = chain("AAPL,ZZZZ,MSFT")
    quotes = {q["symbol"]: q for q in source.tick(DURING)}
    assert quotes["ZZZZ"]["source"] == "simulated" and quotes["AAPL"]["source"] == quotes["MSFT"]["source"] == "yahoo"
    assert asked_symbols(recorded_api) == [["AAPL", "ZZZZ", "MSFT"]]
    assert refusals(caplog) == ["Yahoo refused ZZZZ (unknown_symbol): Not Found: not in Yahoo's quote answer; "
                                "ZZZZ from simulated until Yahoo answers again"]
    for seconds in (15, 60, 120):
        source.tick(DURING + timedelta(seconds=seconds))
    # ZZZZ is not asked again for hours; the others are, in one request each refresh; said once.
    assert asked_symbols(recorded_api) == [["AAPL", "ZZZZ", "MSFT"], ["AAPL", "MSFT"], ["AAPL", "MSFT"]]
    assert len(refusals(caplog)) == 1


def test_no_cookie_means_no_crumb_said_once(chain, recorded_api: RecordedApi,  # type: ignore[no-untyped-def]
                                            caplog: pytest.LogCaptureFixture) -> None:
    serve_yahoo(recorded_api)
    recorded_api.route(COOKIE, Response(404, b"<html><body>404 Not Found</body></html>", "text/html"))  # no Set-Cookie
    source = chain("AAPL")
    assert [q["source"] for q in source.tick(DURING)] == ["simulated"]
    assert paths(recorded_api) == HANDSHAKE
    [line] = refusals(caplog)
    assert "Yahoo refused AAPL (no_crumb): HTTP 401" in line and "from /v1/test/getcrumb; backing off 60 s" in line


def test_150_symbols_cost_two_requests_a_refresh(chain, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    aapl = recorded_entries("yahoo_quote_open.json")["AAPL"]
    symbols = [f"S{i:03d}" for i in range(150)]
    serve_yahoo(recorded_api, {s: {**aapl, "symbol": s} for s in symbols})
    source = chain(",".join(symbols))
    quotes = source.tick(DURING)
    assert len(quotes) == 150 and {q["source"] for q in quotes} == {"yahoo"}
    assert [len(batch) for batch in asked_symbols(recorded_api)] == [99, 51]
    assert sum(asked_symbols(recorded_api), []) == symbols
    assert paths(recorded_api) == [*HANDSHAKE, QUOTE, QUOTE]
    assert len(source.tick(DURING + timedelta(seconds=60))) == 150
    assert len(recorded_api.calls(QUOTE)) == 4 and len(recorded_api.calls(CRUMB_PATH)) == 1


def test_chart_endpoint_with_cookie_and_crumb(recorded_api: RecordedApi, stack: Stack) -> None:
    """The chart endpoint (one-minute bars, history) goes through the same handshake."""
    serve_yahoo(recorded_api)

    def chart(req: Request) -> Response:
        if req.query.get("crumb") != CRUMB or not has_cookie(req):
            return answer("yahoo_invalid_crumb.json", 401)
        return answer("yahoo_chart_AAPL_open.json") if req.path.endswith("/AAPL") \
            else answer("yahoo_chart_unknown_symbol.json", 404)
    recorded_api.route(CHART + "AAPL", chart)
    recorded_api.route(CHART + "ZZZZ", chart)
    client = YahooFinanceClient(stack.settings(**{k.lower(): v for k, v in yahoo_env(recorded_api).items()}))
    aapl = client.quote("AAPL", DURING)
    assert aapl.price == 259.7447 and aapl.market_open(DURING)
    with pytest.raises(YahooRefused, match="unknown_symbol: Not Found"):
        client.quote("ZZZZ", DURING)
    assert [c.query for c in recorded_api.calls(CHART + "AAPL")] == [{"range": "1d", "interval": "1m", "crumb": CRUMB}]
    assert paths(recorded_api) == [*HANDSHAKE, CHART + "AAPL", CHART + "ZZZZ"]


CHROME_AGENT = r"Mozilla/5\.0 \(.+\) AppleWebKit/537\.36 \(KHTML, like Gecko\) Chrome/[\d.]+ Safari/537\.36"


def check_chrome(calls: list[Request]) -> None:
    """Every request as Chrome sends it: its agent and client hints, nothing a script would send."""
    assert calls
    for call in calls:
        agent = call.header("User-Agent") or ""
        assert re.fullmatch(CHROME_AGENT, agent), agent
        assert "python" not in agent.lower() and "stock-analysis-system" not in agent
        version = re.search(r"Chrome/(\d+)", agent).group(1)  # type: ignore[union-attr]
        assert f'"Google Chrome";v="{version}"' in (call.header("sec-ch-ua") or ""), call.headers
        assert call.header("sec-ch-ua-mobile") == "?0" and call.header("sec-ch-ua-platform")
        assert call.header("Accept-Language") and "br" in (call.header("Accept-Encoding") or "")


def test_every_yahoo_call_is_chromes(chain, recorded_api: RecordedApi, stack: Stack) -> None:  # type: ignore[no-untyped-def]
    serve_yahoo(recorded_api)
    recorded_api.route(CRUMB_PATH, crumbs("stale.crumb", CRUMB))  # a second handshake too
    recorded_api.route(CHART + "AAPL", answer("yahoo_chart_AAPL_open.json"))
    source = chain("AAPL,ZZZZ")
    source.tick(DURING)
    source.yahoo.quote("AAPL", DURING)
    recorded_api.route(QUOTE, answer("yahoo_429.txt", 429))
    source.tick(DURING + timedelta(seconds=60))
    assert paths(recorded_api) == [*HANDSHAKE, QUOTE, *HANDSHAKE, QUOTE, CHART + "AAPL", QUOTE]
    check_chrome(recorded_api.calls())


def test_unreachable_yahoo_and_real_only_chain(chain, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    source = chain("AAPL", sources="yahoo")  # real or nothing
    source.yahoo.cookie_url = source.yahoo.url = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert source.tick(DURING) == []
    [line] = refusals(caplog)
    assert "(unreachable)" in line and line.endswith("quotes come from nothing until Yahoo answers again")


def test_volume_after_an_outage_counts_only_the_time_since_the_last_quote(chain, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    entries = recorded_entries("yahoo_quote_open.json")
    day_volume = entries["AAPL"]["regularMarketVolume"]
    serve_yahoo(recorded_api, entries)
    source = chain("AAPL")
    assert source.tick(DURING)[0]["source"] == "yahoo"
    recorded_api.route(QUOTE, answer("yahoo_429.txt", 429))  # backs off 60 s
    t = DURING + timedelta(seconds=60)
    assert [q["source"] for q in source.tick(t)] == ["simulated"]
    for i in range(1, 4):
        assert [q["source"] for q in source.tick(t + timedelta(seconds=15 * i))] == ["simulated"]
    serve_yahoo(recorded_api, {"AAPL": {**entries["AAPL"], "regularMarketVolume": day_volume + 1_200_000}})
    [back] = source.tick(t + timedelta(seconds=60))
    # 1.2 M traded in the 120 s since Yahoo's last answer; the simulated quotes carried the first 105 s.
    assert back["source"] == "yahoo" and back["volume"] == 1_200_000 * 15 // 120


def test_yahoo_quotes_reach_mongodb_and_the_dashboard(kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch,
                                                      smtp: SmtpServer, mysql_server: dict, mysql_db: str,
                                                      recorded_api: RecordedApi) -> None:
    """Producer, consumer and the web app as in their containers, Yahoo answering AAPL (recorded,
    moved to today) and not knowing the others: the dashboard shows AAPL as a yahoo quote."""
    aapl = moved_to(recorded_entries("yahoo_quote_open.json"), utc_now())["AAPL"]
    serve_yahoo(recorded_api, {"AAPL": aapl})
    env = {"QUOTE_SOURCES": "yahoo,simulated", **yahoo_env(recorded_api)}
    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp, env=env,
                  roles=["producer", "consumer", "flask"]) as (stack, probe):
        wait_for(lambda: probe.db.realtime_prices.find_one({"symbol": "AAPL", "source": "yahoo"}) is not None,
                 timeout=60, what="a yahoo quote stored")
        doc = probe.db.realtime_prices.find_one({"symbol": "AAPL", "source": "yahoo"})
        assert doc["price"] == 259.7447 and doc["market_open"] is True
        answered = requests.get(stack.flask_url + "/api/quotes/latest", timeout=10).json()
        latest = {q["symbol"]: q for q in answered["quotes"]}
        assert latest["AAPL"]["source"] == "yahoo" and latest["MSFT"]["source"] == "simulated"
        html = requests.get(stack.flask_url + "/", timeout=10).text
        row = re.search(r'<tr data-symbol="AAPL".*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
        assert '<td class="source">yahoo</td>' in row and "259.74" in row
        assert re.search(r'<span class="badge sim" hidden>', row)
        assert "Market open: quotes are live." in html
    # One batch request for all seven symbols, then for AAPL alone (Yahoo knew no other); all of them Chrome's.
    batches = asked_symbols(recorded_api)
    assert len(batches[0]) == 7 and all(batch == ["AAPL"] for batch in batches[1:])
    check_chrome(recorded_api.calls())
