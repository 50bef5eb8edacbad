"""Yahoo Finance quotes (market_data/yahoo_finance.py) and the producer's source chain,
against a local server answering in Yahoo's formats (tests/fixtures/yahoo_*: field
names, nesting and error shapes as Yahoo sends them; prices made up): a normal
quote, a market-closed quote, 429, 999, an HTML consent page and an unknown symbol.
Each gives a valid quote message or one clear fallback line, never a crash."""

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
from market_data.yahoo_finance import YahooFinanceClient, YahooRefused, parse_chart
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import SmtpServer
from scripts.waiting import wait_for
from streaming.producer import QuoteSource
from streaming.schema import parse_message, to_message
from tests.conftest import Stack
from tests.support.http_fixture import FIXTURES, RecordedApi, Response
from tests.support.pipeline import pipeline

NYSE = MarketHours("XNYS")
DURING = datetime(2026, 1, 13, 15, 0, 50, tzinfo=UTC)  # 10:00:50 New York, the AAPL answer's session
AFTER_CLOSE = datetime(2026, 1, 13, 22, 30, tzinfo=UTC)  # 17:30 New York
CHART = "/v8/finance/chart/"


def fixture(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text())


def answer(name: str, status: int = 200) -> Response:
    kind = {"json": "application/json;charset=utf-8", "html": "text/html; charset=utf-8", "txt": "text/plain"}
    return Response.fixture(name, status, kind[name.rsplit(".", 1)[1]])


@pytest.fixture
def chain(recorded_api: RecordedApi, stack: Stack, caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    caplog.set_level(logging.INFO, logger="test.yahoo")

    def make(symbols: str, sources: str = "yahoo,simulated") -> QuoteSource:
        settings = stack.settings(yahoo_finance_url=recorded_api.url, quote_sources=sources, stock_symbols=symbols,
                                  poll_interval_seconds=15, http_timeout_seconds=2)
        simulator = MarketSimulator(settings.stock_symbols, NYSE, 15, seed=1)
        return QuoteSource(settings, simulator, logging.getLogger("test.yahoo"), hours=NYSE,
                           yahoo=YahooFinanceClient(settings))
    return make


def yahoo_answer_now(name: str, now: datetime) -> Response:
    """A recorded chart answer moved in time so that its session holds `now` (as if recorded today)."""
    body = json.loads((FIXTURES / name).read_text())
    result = body["chart"]["result"][0]
    meta = result["meta"]
    shift = int(now.timestamp()) - meta["regularMarketTime"]
    meta["regularMarketTime"] += shift
    for period in [*meta["currentTradingPeriod"].values(), *meta["tradingPeriods"][0]]:
        period["start"] += shift
        period["end"] += shift
    result["timestamp"] = [t + shift for t in result["timestamp"]]
    return Response(200, json.dumps(body).encode(), "application/json;charset=utf-8")


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


def test_normal_answer_is_a_yahoo_quote_every_refresh(chain, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    recorded_api.route(CHART + "AAPL", answer("yahoo_chart_AAPL_open.json"))
    source = chain("AAPL")
    [quote] = source.tick(DURING)
    doc = stored(quote)
    assert doc["source"] == "yahoo" and doc["market_open"] is True and doc["price"] == 259.7447
    assert doc["previous_close"] == 260.21 and doc["change_percent"] == round((259.7447 / 260.21 - 1) * 100, 4)
    assert doc["volume"] > 0
    [call] = recorded_api.calls(CHART + "AAPL")
    assert call.query == {"range": "1d", "interval": "1m"} and "Mozilla" in call.headers["User-Agent"]
    # The next request for AAPL waits for YAHOO_REFRESH_SECONDS (60 s): ticks in between send nothing for it.
    assert source.tick(DURING + timedelta(seconds=15)) == [] == source.tick(DURING + timedelta(seconds=45))
    [again] = source.tick(DURING + timedelta(seconds=60))
    assert again["source"] == "yahoo" and again["volume"] == 0  # the same cumulative volume: nothing traded since
    assert len(recorded_api.calls(CHART + "AAPL")) == 2


def test_market_closed_answer_keeps_the_last_price(chain, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    recorded_api.route(CHART + "MSFT", answer("yahoo_chart_MSFT_closed.json"))
    source = chain("MSFT")
    [quote] = source.tick(AFTER_CLOSE)
    doc = stored(quote)
    assert doc["source"] == "yahoo" and doc["market_open"] is False and doc["volume"] == 0
    assert doc["price"] == 481.2023
    # Closed: one quote per CLOSED_QUOTE_INTERVAL_SECONDS (300 s), not every 60 s.
    assert source.tick(AFTER_CLOSE + timedelta(seconds=60)) == []
    assert len(source.tick(AFTER_CLOSE + timedelta(seconds=300))) == 1


@pytest.mark.parametrize(("name", "status", "kind", "said"), [
    ("yahoo_429.txt", 429, "rate_limited", "HTTP 429 Too Many Requests; backing off 60 s"),
    ("yahoo_429.txt", 999, "denied", "HTTP 999 Too Many Requests; backing off 60 s"),
    ("yahoo_consent.html", 200, "html_page", "HTML page instead of JSON"),
])
def test_refusal_falls_back_says_why_once_and_backs_off(  # type: ignore[no-untyped-def]
        chain, recorded_api: RecordedApi, caplog: pytest.LogCaptureFixture, name: str, status: int, kind: str,
        said: str) -> None:
    recorded_api.route(CHART + "AAPL", answer(name, status))
    recorded_api.route(CHART + "MSFT", answer("yahoo_chart_AAPL_open.json"))  # never reached: backing off
    source = chain("AAPL,MSFT")
    quotes = source.tick(DURING)
    assert [(q["symbol"], q["source"]) for q in quotes] == [("AAPL", "simulated"), ("MSFT", "simulated")]
    assert all(stored(q)["market_open"] is True for q in quotes)
    lines = [r.getMessage() for r in caplog.records if "Yahoo refused" in r.getMessage()]
    assert len(lines) == 1 and f"Yahoo refused AAPL ({kind})" in lines[0] and said in lines[0]
    assert lines[0].endswith("quotes come from simulated until Yahoo answers again")
    assert len(recorded_api.calls()) == 1  # one request, then nothing while backing off
    for i in range(1, 4):
        assert {q["source"] for q in source.tick(DURING + timedelta(seconds=15 * i))} == {"simulated"}
    assert len(recorded_api.calls()) == 1 and len([r for r in caplog.records if "Yahoo refused" in r.getMessage()]) == 1
    # After the backoff Yahoo is asked again; now it answers and AAPL continues from the real price.
    recorded_api.route(CHART + "AAPL", answer("yahoo_chart_AAPL_open.json"))
    later = source.tick(DURING + timedelta(seconds=60))
    assert [q["source"] for q in later if q["symbol"] == "AAPL"] == ["yahoo"]


def test_unknown_symbol_falls_back_for_that_symbol_only(chain, recorded_api: RecordedApi,  # type: ignore[no-untyped-def]
                                                        caplog: pytest.LogCaptureFixture) -> None:
    recorded_api.route(CHART + "ZZZZ", answer("yahoo_chart_unknown_symbol.json", 404))
    recorded_api.route(CHART + "AAPL", answer("yahoo_chart_AAPL_open.json"))
    source = chain("ZZZZ,AAPL")
    quotes = {q["symbol"]: q for q in source.tick(DURING)}
    assert quotes["ZZZZ"]["source"] == "simulated" and quotes["AAPL"]["source"] == "yahoo"
    [line] = [r.getMessage() for r in caplog.records if "Yahoo refused" in r.getMessage()]
    assert line == ("Yahoo refused ZZZZ (unknown_symbol): Not Found: No data found, symbol may be delisted; "
                    "ZZZZ from simulated until Yahoo answers again")
    source.tick(DURING + timedelta(seconds=15))
    assert len(recorded_api.calls(CHART + "ZZZZ")) == 1  # not asked again for hours


def test_unreachable_yahoo_and_real_only_chain(chain, caplog: pytest.LogCaptureFixture) -> None:  # type: ignore[no-untyped-def]
    source = chain("AAPL", sources="yahoo")  # real or nothing
    source.yahoo.url = "http://127.0.0.1:9"  # nothing listens on the discard port
    assert source.tick(DURING) == []
    [line] = [r.getMessage() for r in caplog.records if "Yahoo refused" in r.getMessage()]
    assert "(unreachable)" in line and line.endswith("quotes come from nothing until Yahoo answers again")


def test_volume_after_an_outage_counts_only_the_time_since_the_last_quote(chain, recorded_api: RecordedApi) -> None:  # type: ignore[no-untyped-def]
    body = fixture("yahoo_chart_AAPL_open.json")
    day_volume = body["chart"]["result"][0]["meta"]["regularMarketVolume"]
    recorded_api.route(CHART + "AAPL", answer("yahoo_chart_AAPL_open.json"))
    source = chain("AAPL")
    assert source.tick(DURING)[0]["source"] == "yahoo"
    recorded_api.route(CHART + "AAPL", answer("yahoo_429.txt", 429))  # backs off 60 s
    t = DURING + timedelta(seconds=60)
    assert [q["source"] for q in source.tick(t)] == ["simulated"]
    for i in range(1, 4):
        assert [q["source"] for q in source.tick(t + timedelta(seconds=15 * i))] == ["simulated"]
    body["chart"]["result"][0]["meta"]["regularMarketVolume"] = day_volume + 1_200_000
    recorded_api.route(CHART + "AAPL", Response(200, json.dumps(body).encode(), "application/json"))
    [back] = source.tick(t + timedelta(seconds=60))
    # 1.2 M traded in the 120 s since Yahoo's last answer; the simulated quotes carried the first 105 s.
    assert back["source"] == "yahoo" and back["volume"] == 1_200_000 * 15 // 120


def test_yahoo_quotes_reach_mongodb_and_the_dashboard(kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch,
                                                      smtp: SmtpServer, mysql_server: dict, mysql_db: str,
                                                      recorded_api: RecordedApi) -> None:
    """Producer, consumer and the web app as in their containers, Yahoo answering AAPL (recorded,
    moved to today) and not knowing the others: the dashboard shows AAPL as a yahoo quote."""
    recorded_api.route(CHART + "AAPL", yahoo_answer_now("yahoo_chart_AAPL_open.json", utc_now()))
    for symbol in ("GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"):
        recorded_api.route(CHART + symbol, answer("yahoo_chart_unknown_symbol.json", 404))
    env = {"QUOTE_SOURCES": "yahoo,simulated", "YAHOO_FINANCE_URL": recorded_api.url}
    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp, env=env,
                  roles=["producer", "consumer", "flask"]) as (stack, probe):
        wait_for(lambda: probe.db.realtime_prices.find_one({"symbol": "AAPL", "source": "yahoo"}) is not None,
                 timeout=60, what="a yahoo quote stored")
        doc = probe.db.realtime_prices.find_one({"symbol": "AAPL", "source": "yahoo"})
        assert doc["price"] == 259.7447 and doc["market_open"] is True
        quotes = requests.get(stack.flask_url + "/api/quotes/latest", timeout=10).json()["quotes"]
        latest = {q["symbol"]: q for q in quotes}
        assert latest["AAPL"]["source"] == "yahoo" and latest["MSFT"]["source"] == "simulated"
        html = requests.get(stack.flask_url + "/", timeout=10).text
        row = re.search(r'<tr data-symbol="AAPL".*?</tr>', html, re.S).group(0)  # type: ignore[union-attr]
        assert '<td class="source">yahoo</td>' in row and "259.74" in row
        assert re.search(r'<span class="badge sim" hidden>', row)
        assert "Market open: quotes are live." in html
