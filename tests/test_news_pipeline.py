"""The daily news job against real servers: recorded feeds over HTTP (RecordedApi),
SecantusDB and aiosmtpd. Feeds are the fixtures in tests/fixtures/news/, in the
sources' real formats (Yahoo Finance RSS, Google News RSS, Alpha Vantage NEWS_SENTIMENT)."""

from __future__ import annotations

import email
import email.policy
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pymongo import MongoClient
from pymongo.database import Database

from articles import daily_news
from common.clock import utc_now
from database.mongo import news as news_db
from database.mongo.prices import insert_quotes
from scripts.processes import run_script
from scripts.servers import SecantusMongo
from scripts.smtp_inbox import Inbox, SmtpServer
from tests.conftest import Stack
from tests.support.accounts import confirm_as_the_link_does
from tests.support.http_fixture import FIXTURES, RecordedApi, Request, Response

NOW = datetime(2026, 1, 13, 18, 0, tzinfo=UTC)  # the recorded feeds are of this day
DAY = "2026-01-13"


def feed(name: str, delay: float = 0.0) -> Response:
    return Response.fixture(f"news/{name}", delay=delay)


def json_answer(payload: object) -> Response:
    return Response(200, json.dumps(payload).encode(), "application/json")


def serve(api: RecordedApi, yahoo: dict[str, Response], google: dict[str, Response],
          av: dict[str, Response] | None = None) -> None:
    """Route the three sources; each answers per symbol like the real services do."""
    missing = Response(404, b"not recorded", "text/plain")
    api.route("/rss/2.0/headline", lambda r: yahoo.get(r.query.get("s", ""), missing))
    # Google is searched for 'AAPL OR "Apple"': the symbol is the first word.
    api.route("/rss/search", lambda r: google.get(r.query.get("q", "").split(" ")[0], missing))

    def alpha_vantage(r: Request) -> Response:
        assert r.query.get("function") == "NEWS_SENTIMENT"
        return (av or {}).get(r.query.get("tickers", ""), missing)

    api.route("/query", alpha_vantage)


@pytest.fixture
def news(mongo: SecantusMongo, smtp: SmtpServer, recorded_api: RecordedApi, tmp_path: Path) -> Iterator[Stack]:
    """MongoDB, SMTP (configured, no STARTTLS) and the feeds; two symbols to keep SecantusDB quick."""
    tag = uuid.uuid4().hex[:10]
    api = recorded_api.url
    env = {
        "MONGO_URI": mongo.uri, "MONGO_DB": f"news_{tag}",
        "LOG_TO_ELASTICSEARCH": "false", "LOG_LEVEL": "INFO",
        "STOCK_SYMBOLS": "AAPL,MSFT",
        "YAHOO_RSS_URL": api + "/rss/2.0/headline?s={symbol}&region=US&lang=en-US",
        "GOOGLE_NEWS_RSS_URL": api + "/rss/search?q={query}&hl=en-US&gl=US&ceid=US:en",
        "ALPHA_VANTAGE_URL": api + "/query", "ALPHA_VANTAGE_API_KEY": "",
        "NEWS_REQUEST_DELAY_SECONDS": "0", "HTTP_TIMEOUT_SECONDS": "1",
        "SMTP_SERVER": "127.0.0.1", "SMTP_PORT": str(smtp.port), "SMTP_STARTTLS": "false",
        "EMAIL_SENDER": smtp.user, "EMAIL_PASSWORD": smtp.password,
        "NEWS_OUTBOX_DIR": str(tmp_path / "outbox"),
        "MARKET_TIMEZONE": "America/New_York",
    }
    stack = Stack(env, {"mongo": mongo, "smtp": smtp})
    yield stack
    client = MongoClient(mongo.uri)
    client.drop_database(env["MONGO_DB"])
    client.close()


@pytest.fixture
def db(news: Stack) -> Iterator[Database]:
    from database.mongo.symbols import seed_symbols
    from tests.test_news_parsing import NAMES

    client: MongoClient = MongoClient(news.env["MONGO_URI"], tz_aware=True)
    db = client[news.env["MONGO_DB"]]
    seed_symbols(db, ["AAPL", "MSFT"], NOW, names=NAMES)  # names as the producer writes them from Yahoo
    yield db
    client.close()


def _users(db: Database, *users: dict) -> None:
    """Users as registration stores them, confirmed unless "confirmed": False."""
    for u in users:
        confirmed = u.pop("confirmed", True)
        uid = db.users.insert_one({"name": u["email"].split("@")[0].title(), "password_hash": "x", "watchlist": [],
                                   "digest_opt_in": True, "alert_opt_in": False, "created_at": NOW,
                                   "email_confirmed": False, **u}).inserted_id
        if confirmed:
            confirm_as_the_link_does(db, str(uid), u["email"])


def _bodies(mail: email.message.EmailMessage) -> tuple[str, str]:
    return mail.get_body(("plain",)).get_content(), mail.get_body(("html",)).get_content()


def test_articles_stored_once_across_sources_symbols_and_runs(news: Stack, db: Database,
                                                              recorded_api: RecordedApi) -> None:
    serve(recorded_api,
          yahoo={"AAPL": feed("yahoo_aapl.xml"), "MSFT": feed("yahoo_msft.xml")},
          google={"AAPL": feed("google_aapl.xml"), "MSFT": feed("yahoo_empty.xml")},
          av={"AAPL": feed("alpha_vantage_news_aapl.json"), "MSFT": json_answer({"items": "0", "feed": []})})
    settings = news.settings(alpha_vantage_api_key="demo-key")

    first = daily_news.run(settings, db, now=NOW)
    # AAPL: Yahoo 3 + Google 2 + AV 2 relevant, one AV item is the Yahoo one; MSFT adds 1 of its own.
    assert (first.articles_found, first.articles_new) == (7, 7)
    assert first.source_failures == {}
    second = daily_news.run(settings, db, now=NOW + timedelta(minutes=5))
    assert (second.articles_found, second.articles_new) == (7, 0)
    assert db.news_articles.count_documents({}) == 7

    shared = db.news_articles.find_one({"url": "https://finance.yahoo.com/news/microsoft-apple-ai-assistants-compared-120000456.html"})
    assert shared["symbols"] == ["AAPL", "MSFT"]
    services = db.news_articles.find_one({"url": "https://finance.yahoo.com/news/apple-services-record-lifts-shares-140500123.html"})
    assert services["title"] == "Apple services record lifts shares as analysts raise targets"
    assert services["source"] == "Yahoo Finance"
    assert services["published_at"] == datetime(2026, 1, 13, 14, 5, tzinfo=UTC)
    assert services["published_date"] == DAY
    assert services["sentiment"] == {"label": "Somewhat-Bullish", "score": 0.2817}
    assert services["ticker_sentiment"] == {"AAPL": {"label": "Bullish", "score": 0.4021}}
    assert sorted(services["feeds"]) == ["Alpha Vantage", "Yahoo Finance"]
    assert db.news_articles.count_documents({"title": {"$regex": "Treasury|Dow and S&P|Dividend"}}) == 0

    calls = recorded_api.calls()
    assert all("stock-analysis-system" in c.headers.get("User-Agent", "") for c in calls)
    assert len(recorded_api.calls("/query")) == 4  # one NEWS_SENTIMENT call per symbol per run
    assert recorded_api.calls("/rss/search")[0].query["q"] == 'AAPL OR "Apple"'


def test_failing_sources_are_logged_and_skipped(news: Stack, db: Database, recorded_api: RecordedApi,
                                                caplog: pytest.LogCaptureFixture) -> None:
    serve(recorded_api,
          yahoo={"AAPL": Response(500, b"<html>Internal error</html>", "text/html"),
                 "MSFT": feed("yahoo_truncated.xml")},
          google={"AAPL": feed("google_aapl.xml", delay=2.5),  # slower than HTTP_TIMEOUT_SECONDS=1
                  "MSFT": Response.fixture("news/junk_consent_page.html", content_type="text/html")},
          av={"AAPL": feed("alpha_vantage_news_aapl.json"), "MSFT": feed("alpha_vantage_news_aapl.json")})
    # A budget of one NEWS_SENTIMENT call a day: MSFT's must not even be asked.
    settings = news.settings(alpha_vantage_api_key="demo-key", alpha_vantage_calls_per_day=1)

    report = daily_news.run(settings, db, now=NOW)

    assert report.source_failures.keys() == {"Yahoo Finance AAPL", "Google News AAPL", "Yahoo Finance MSFT",
                                             "Google News MSFT", "Alpha Vantage MSFT"}
    assert "HTTP 500" in report.source_failures["Yahoo Finance AAPL"]
    assert "no answer in 1.0s" in report.source_failures["Google News AAPL"]
    assert "malformed" in report.source_failures["Yahoo Finance MSFT"]
    assert "not an RSS" in report.source_failures["Google News MSFT"]
    assert "budget_exhausted" in report.source_failures["Alpha Vantage MSFT"]
    assert len(recorded_api.calls("/query")) == 1
    # The source that worked still delivered.
    assert report.ok and report.articles_new == 2
    assert {d["source"] for d in db.news_articles.find()} == {"Yahoo Finance", "Benzinga"}
    warned = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert any("Yahoo Finance failed for AAPL: HTTP 500" in m for m in warned)


def test_each_opted_in_user_gets_one_escaped_digest_per_day(news: Stack, db: Database, recorded_api: RecordedApi,
                                                            inbox: Inbox) -> None:
    serve(recorded_api,
          yahoo={"AAPL": feed("yahoo_hostile.xml"), "MSFT": feed("yahoo_msft.xml")},
          google={"AAPL": feed("google_aapl.xml"), "MSFT": feed("yahoo_empty.xml")})
    _users(db,
           {"email": "ana@example.com", "watchlist": ["AAPL"]},
           {"email": "bob@example.com", "watchlist": []},  # empty = every symbol
           {"email": "carol@example.com", "digest_opt_in": False},
           {"email": "dave@example.com", "confirmed": False},  # nobody confirmed the address: no digest
           # A corrupted address (header injection): fails alone, the others still get theirs.
           {"email": "mallory@example.com\r\nBcc: victim@example.com", "watchlist": ["MSFT"]})
    insert_quotes(db, [{"symbol": "AAPL", "timestamp": NOW - timedelta(minutes=1), "price": 261.05, "volume": 1000,
                        "change_percent": 0.3228, "source": "simulated"}])
    settings = news.settings()

    report = daily_news.run(settings, db, now=NOW)

    assert sorted(report.sent) == ["ana@example.com", "bob@example.com"]
    assert list(report.failed) == ["mallory@example.com\r\nbcc: victim@example.com"]
    assert not report.ok
    assert inbox.to("carol@example.com") == [] and inbox.to("victim@example.com") == []
    assert inbox.to("dave@example.com") == []
    [ana] = inbox.to("ana@example.com")
    [bob] = inbox.to("bob@example.com")
    assert ana.message["From"] == settings.email_sender
    text, html = _bodies(ana.message)
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html and "<script" not in html
    assert "javascript:" not in html and "javascript:" not in text
    assert "Apple link that is not a web page" not in html  # its only link was javascript:, dropped
    assert "Apple to open new manufacturing academy in Detroit" in html and "Reuters" in html
    assert "$261.05" in html and "+0.32%" in html
    assert "MSFT" not in html and "Azure" not in html  # Ana follows AAPL only
    assert '<script>alert("pwned")</script> Apple headline' in text  # plain text: as written
    bob_text, bob_html = _bodies(bob.message)
    assert "Morgan Stanley sees Azure growth accelerating" in bob_html and "Detroit" in bob_html
    log = {d["email"]: d for d in news_db.digest_log(db, DAY)}
    assert log["ana@example.com"]["status"] == "sent" and log["ana@example.com"]["articles"] == 3
    assert log["mallory@example.com\r\nbcc: victim@example.com"]["status"] == "failed"

    again = daily_news.run(settings, db, now=NOW + timedelta(hours=1))
    assert again.sent == [] and sorted(again.skipped) == ["ana@example.com", "bob@example.com"]
    assert len(inbox.messages) == 2


def _shift_to_today(name: str, today: datetime) -> Response:
    """A recorded feed with its day moved to today, for runs that use the real clock."""
    body = (FIXTURES / "news" / name).read_bytes()
    body = body.replace(b"Tue, 13 Jan 2026", today.strftime("%a, %d %b %Y").encode())
    body = body.replace(b"20260113T", today.strftime("%Y%m%dT").encode())
    return Response(200, body, "application/json" if name.endswith(".json") else "application/rss+xml")


@pytest.mark.clock
def test_entry_point_runs_from_repository_root_like_the_container(news: Stack, db: Database,
                                                                   recorded_api: RecordedApi, inbox: Inbox) -> None:
    today = utc_now()
    serve(recorded_api,
          yahoo={"AAPL": _shift_to_today("yahoo_aapl.xml", today), "MSFT": _shift_to_today("yahoo_msft.xml", today)},
          google={"AAPL": _shift_to_today("google_aapl.xml", today), "MSFT": feed("yahoo_empty.xml")})
    _users(db, {"email": "ana@example.com", "watchlist": ["AAPL"]})

    proc = run_script("articles/daily_news.py", news.env, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "[news] articles.daily_news: daily news run for" in proc.stdout
    assert db.news_articles.count_documents({}) == 6
    [mail] = inbox.to("ana@example.com")
    assert "Apple services record lifts shares" in _bodies(mail.message)[1]

    # Without SMTP the same digest goes to the outbox, and the run says where.
    outbox = Path(news.env["NEWS_OUTBOX_DIR"])
    _users(db, {"email": "bob@example.com", "watchlist": ["MSFT"]})
    proc = run_script("articles/daily_news.py", news.with_env(SMTP_SERVER="", EMAIL_SENDER=""), timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"digests written to {outbox}" in proc.stdout
    files = sorted(outbox.glob("*.eml"))
    assert [f.name for f in files] == [f"digest-{daily_news_day(news)}-bob@example.com.eml"]
    written = email.message_from_bytes(files[0].read_bytes(), policy=email.policy.default)
    assert written["To"] == "bob@example.com"
    assert "Morgan Stanley sees Azure growth accelerating" in _bodies(written)[1]
    assert len(inbox.messages) == 1  # Ana already had hers today


def daily_news_day(news: Stack) -> str:
    return utc_now().astimezone(news.settings().tz).date().isoformat()


def test_fetcher_is_polite_and_honest(recorded_api: RecordedApi) -> None:
    from articles.news_scraper import PoliteFetcher, SourceError

    recorded_api.route("/rss/2.0/headline", feed("yahoo_empty.xml"))
    slept: list[float] = []
    fetcher = PoliteFetcher(timeout=2, delay=1.5, clock=lambda: 100.0, sleep=slept.append)
    fetcher.get(recorded_api.url + "/rss/2.0/headline?s=AAPL")
    assert slept == []  # the first request to a host goes at once
    fetcher.get(recorded_api.url + "/rss/2.0/headline?s=MSFT")
    assert slept == [1.5]  # the next one to the same host waits NEWS_REQUEST_DELAY_SECONDS
    with pytest.raises(SourceError, match="HTTP 404"):
        fetcher.get(recorded_api.url + "/not-recorded")
    ua = recorded_api.calls()[0].headers["User-Agent"]
    assert ua.startswith("stock-analysis-system-news/") and "digest" in ua


def test_each_digest_covers_the_users_own_symbols_or_the_defaults(news: Stack, db: Database,
                                                                  recorded_api: RecordedApi, inbox: Inbox) -> None:
    """Ana added IBM on the dashboard: her digest has IBM's news (found by its ticker or by the name
    Yahoo gave it) and nothing of the defaults; Bob follows nothing and gets the defaults; IBM's
    news is collected although it is not in STOCK_SYMBOLS. Mail through the SMTP stand-in."""
    from database.mongo.symbols import add_follower

    serve(recorded_api,
          yahoo={"AAPL": feed("yahoo_aapl.xml"), "MSFT": feed("yahoo_msft.xml"), "IBM": feed("yahoo_ibm.xml")},
          google={"AAPL": feed("yahoo_empty.xml"), "MSFT": feed("yahoo_empty.xml"), "IBM": feed("yahoo_empty.xml")})
    _users(db, {"email": "ana@example.com"}, {"email": "bob@example.com"})
    ana_id = str(db.users.find_one({"email": "ana@example.com"})["_id"])
    assert add_follower(db, "IBM", ana_id, name="International Business Machines Corporation", simulated=False,
                        now=NOW, max_symbols=500, max_per_user=50) == "added"

    report = daily_news.run(news.settings(), db, now=NOW)

    assert sorted(report.sent) == ["ana@example.com", "bob@example.com"]
    assert db.news_articles.count_documents({"symbols": "IBM"}) == 2  # "Trade talks resume" is not IBM's
    [ana], [bob] = inbox.to("ana@example.com"), inbox.to("bob@example.com")
    text, html = _bodies(ana.message)
    assert "IBM · International Business Machines Corporation" in text
    assert "IBM wins hybrid-cloud contracts" in html and "Big Blue raises its dividend again" in html
    assert "Trade talks resume" not in html
    assert "AAPL" not in text and "MSFT" not in text  # her own symbols only
    bob_text, bob_html = _bodies(bob.message)
    assert "AAPL · Apple Inc." in bob_text and "MSFT · Microsoft Corporation" in bob_text
    assert "IBM" not in bob_text
