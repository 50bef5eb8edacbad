"""The push channel on real servers: the web app under gunicorn (as in the container),
SecantusDB, Tansu and the consumer. A quote the consumer stores and a new alert arrive
on /api/stream; a quote the consumer sends to the DLQ never does; Last-Event-ID replays
what was stored while away; beyond STREAM_MAX_PER_PROCESS the answer is 503; a user's own
alert reaches that user's streams only, and is replayed to them after a reconnect."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import SimpleNamespace

import pytest
import requests
from bson import ObjectId
from pymongo.database import Database

from bench.sse_client import SseReader
from bench.webdata import csrf_token, quote, utcnow
from database.mongo import get_db, make_client
from database.mongo.alerts import store_alert
from database.mongo.prices import insert_quotes
from database.mongo.user_rules import store_user_alerts
from database.mongo.users import create_user
from flask_web_app.validation import hash_password
from scripts.processes import ServiceProcess
from scripts.waiting import wait_for
from tests.conftest import Stack
from tests.support.web_server import gunicorn_app
from tests.test_streaming_support import make_topics, produce, quote_bytes


@pytest.fixture
def web(stack: Stack, tmp_path: Path) -> Iterator[str]:
    with gunicorn_app(stack.settings(), tmp_path / "outbox", {"STREAM_HEARTBEAT_SECONDS": "1"}) as url:
        yield url


def open_stream(url: str, last_event_id: str | None = None, cookies: dict[str, str] | None = None) -> SseReader:
    reader = SseReader(url + "/api/stream", last_event_id, cookies=cookies).start()
    assert reader.status == 200, reader.status
    wait_for(lambda: reader.of("ready"), timeout=30, what="the stream's ready event")
    return reader


def alert_record(symbol: str, at: datetime, message: str) -> dict[str, object]:
    return {"alert_key": f"{symbol}|price_change|{at.isoformat()}", "symbol": symbol, "rule": "price_change",
            "value": 6.2, "threshold": 5.0, "price": 281.0, "quote_timestamp": at, "message": message,
            "source": "simulated"}


def test_accepted_quotes_and_new_alerts_arrive_dlq_never(stack: Stack, web: str) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    reader = open_stream(web)
    assert reader.response_headers["Content-Type"].startswith("text/event-stream")
    assert reader.response_headers["X-Accel-Buffering"] == "no"
    consumer = ServiceProcess("streaming/consumer.py", stack.env).start()
    client = make_client(settings)
    try:
        # In one partition: the refused quote sits between two accepted ones.
        refused = quote_bytes("MSFT", 2, price=-3.0)
        produce(settings.kafka_bootstrap_servers, settings.kafka_topic, [
            ("MSFT", quote_bytes("MSFT", 1, price=101.11)), ("MSFT", refused),
            ("MSFT", quote_bytes("MSFT", 3, price=103.33))])
        wait_for(lambda: {q.data["price"] for q in reader.of("quote")} >= {101.11, 103.33}, timeout=90,
                 what="both accepted quotes on the stream")
        now = utcnow()
        store_alert(get_db(client, settings), alert_record("MSFT", now, "MSFT moved +6.20%"), "disabled", now)
        [alert] = wait_for(lambda: reader.of("alert"), timeout=30, what="the alert on the stream")
        wait_for(lambda: reader.comments >= 1, timeout=30, what="a heartbeat comment")
    finally:
        reader.close()
        client.close()
        assert consumer.stop() == 0, consumer.output()
    assert "to DLQ" in consumer.output()
    prices = [q.data["price"] for q in reader.of("quote") if q.data["symbol"] == "MSFT"]
    assert prices == [101.11, 103.33]  # in stored order, and never the refused one
    assert alert.data["message"] == "MSFT moved +6.20%" and alert.data["symbol"] == "MSFT"
    assert "email_error" not in alert.data
    # Every event's id is the cursor after it: the last one names both positions.
    assert alert.id is not None and "." in alert.id and alert.id.split(".")[1] == alert.data["pos"]


def test_last_event_id_replays_what_was_stored_meanwhile(stack: Stack, web: str) -> None:
    settings = stack.settings()
    client = make_client(settings)
    db = get_db(client, settings)
    try:
        base = datetime.now(UTC).replace(microsecond=0)
        first = open_stream(web)
        insert_quotes(db, [quote("AAPL", base, 1)])
        wait_for(lambda: first.of("quote"), timeout=30, what="the first quote")
        last_id = first.last_id()
        first.close()

        # Stored while the page was away: three quotes and an alert.
        missed = [quote("AAPL", base + timedelta(seconds=i), i) for i in (2, 3, 4)]
        assert insert_quotes(db, missed) == (3, 0)
        store_alert(db, alert_record("AAPL", base, "AAPL moved +6.20%"), "disabled", base)

        again = open_stream(web, last_id)
        try:
            wait_for(lambda: len({q.data["timestamp"] for q in again.of("quote")}) >= 3 and again.of("alert"),
                     timeout=30, what="the replay")
        finally:
            again.close()
        seen = {q.data["pos"] for q in first.of("quote")}
        # The replay starts a grace window before the cursor (another writer's position of the
        # same second may sort below it): it may repeat what the page has (the page drops those
        # by `pos`), and it has everything stored meanwhile, in order.
        stamps = [q.data["timestamp"] for q in again.of("quote") if q.data["pos"] not in seen]
        assert stamps == [m["timestamp"].isoformat().replace("+00:00", "Z") for m in missed]
        assert [a.data["message"] for a in again.of("alert")] == ["AAPL moved +6.20%"]
    finally:
        client.close()


def test_beyond_the_bound_the_answer_is_503(stack: Stack, tmp_path: Path) -> None:
    env = {"GUNICORN_WORKERS": "1", "STREAM_MAX_PER_PROCESS": "2", "STREAM_HEARTBEAT_SECONDS": "0.5"}
    with gunicorn_app(stack.settings(), tmp_path / "outbox", env) as url:
        held = [open_stream(url), open_stream(url)]
        try:
            over = requests.get(url + "/api/stream", timeout=30)
            assert over.status_code == 503
            assert int(over.headers["Retry-After"]) > 0
            assert "too many open streams" in over.json()["error"]
            # Pages and the JSON API still answer while the streams are held.
            assert requests.get(url + "/api/quotes/latest", timeout=30).status_code == 200
            assert requests.get(url + "/", timeout=30).status_code == 200
            held.pop().close()
            # The slot comes back once the server notices the client left (at its next heartbeat).
            wait_for(lambda: requests.get(url + "/api/stream", timeout=30, stream=True).status_code == 200,
                     timeout=30, what="a stream accepted again")
        finally:
            for r in held:
                r.close()


def test_a_late_writer_below_the_newest_position_still_arrives(stack: Stack, web: str) -> None:
    """Two writers in the same second: the one whose ObjectId sorts lower may commit later.
    The reader's sweep of the last seconds finds it and it is pushed once."""
    settings = stack.settings()
    client = make_client(settings)
    db = get_db(client, settings)
    reader = open_stream(web)
    try:
        base = datetime.now(UTC).replace(microsecond=0)
        newer = quote("GOOGL", base, 1)
        insert_quotes(db, [newer])
        wait_for(lambda: reader.of("quote"), timeout=30, what="the newer quote")
        [pushed] = reader.of("quote")
        late = quote("GOOGL", base - timedelta(seconds=1), 2)
        # An id made a second before the one already pushed (another writer's clock or batch).
        late["_id"] = ObjectId.from_datetime(ObjectId(pushed.data["pos"]).generation_time - timedelta(seconds=1))
        insert_quotes(db, [late])
        wait_for(lambda: len(reader.of("quote")) >= 2, timeout=30, what="the late quote")
        store_alert(db, alert_record("GOOGL", base, "GOOGL moved"), "disabled", base)
        wait_for(lambda: reader.of("alert"), timeout=30, what="an alert after it")
    finally:
        reader.close()
        client.close()
    stamps = [q.data["timestamp"] for q in reader.of("quote")]
    assert stamps == [newer["timestamp"].isoformat().replace("+00:00", "Z"),
                      late["timestamp"].isoformat().replace("+00:00", "Z")]  # each once


PASSWORD = "correct horse battery staple 7"


class _FormPages:
    """csrf_token() reads a form page as the Flask test client answers it; this answers it
    from the running server, in the given session (which keeps the cookie the token belongs to)."""

    def __init__(self, http: requests.Session, url: str) -> None:
        self.http, self.url = http, url

    def get(self, path: str) -> SimpleNamespace:
        text = self.http.get(self.url + path, timeout=30).text
        return SimpleNamespace(get_data=lambda as_text=True: text)


def signed_in(url: str, db: Database, email: str) -> tuple[str, dict[str, str]]:
    """A user made in MongoDB and signed in through the login form: (user id, session cookies)."""
    user_id = create_user(db, email=email, name=email.split("@")[0], password_hash=hash_password(PASSWORD),
                          watchlist=[], digest_opt_in=False, alert_opt_in=True, created_at=utcnow())
    with requests.Session() as http:
        token = csrf_token(_FormPages(http, url), "/login")
        resp = http.post(url + "/login", data={"csrf_token": token, "email": email, "password": PASSWORD},
                         timeout=30, allow_redirects=False)
        assert resp.status_code == 302, resp.status_code
        return user_id, http.cookies.get_dict()


def own_alert(user_id: str, symbol: str, at: datetime, message: str) -> dict[str, object]:
    return {"alert_key": f"{user_id}|price_level|{symbol}|{at.isoformat()}", "user_id": user_id, "rule_id": "r1",
            "symbol": symbol, "rule": "price_level", "value": 301.0, "threshold": 300.0, "price": 301.0,
            "quote_timestamp": at, "source": "simulated", "message": message, "band": None}


def test_an_own_alert_reaches_its_owner_only_and_is_replayed_to_them(stack: Stack, web: str) -> None:
    settings = stack.settings()
    client = make_client(settings)
    db = get_db(client, settings)
    try:
        a_id, a_cookies = signed_in(web, db, "ann@example.com")
        b_id, b_cookies = signed_in(web, db, "bob@example.com")
        a_stream, b_stream, anon = (open_stream(web, cookies=a_cookies), open_stream(web, cookies=b_cookies),
                                    open_stream(web))
        first = utcnow()
        store_user_alerts(db, [own_alert(a_id, "AAPL", first, "AAPL above 300 (Ann's level)")], first)
        [mine] = wait_for(lambda: a_stream.of("own_alert"), timeout=30, what="Ann's own alert on her stream")
        # A system alert stored after it reaches everyone: once the others have it, they would
        # have had Ann's too (one reader, one publish per tick, in stored order).
        store_alert(db, alert_record("AAPL", first, "AAPL moved +6.20%"), "disabled", first)
        for reader in (a_stream, b_stream, anon):
            wait_for(lambda r=reader: r.of("alert"), timeout=30, what="the system alert on every stream")
        assert mine.data["message"] == "AAPL above 300 (Ann's level)" and mine.data["own"] is True
        assert "user_id" not in mine.data  # whose it is stays on the server
        assert mine.id is not None and mine.id.split(".")[2] == mine.data["pos"]  # its position in the cursor
        assert b_stream.of("own_alert") == [] and anon.of("own_alert") == []
        last_id = a_stream.last_id()
        for reader in (a_stream, b_stream, anon):
            reader.close()

        # Stored while Ann's page was away: her second alert and one of Bob's.
        later = first + timedelta(seconds=1)
        store_user_alerts(db, [own_alert(a_id, "MSFT", later, "MSFT below 400 (Ann's level)"),
                               own_alert(b_id, "AAPL", later, "AAPL above 300 (Bob's level)")], later)
        again = open_stream(web, last_id, cookies=a_cookies)
        anon_again = open_stream(web, last_id)  # Ann's cursor without her session: none of hers
        try:
            wait_for(lambda: any(e.data["symbol"] == "MSFT" for e in again.of("own_alert")), timeout=30,
                     what="Ann's alert replayed after the reconnect")
            store_alert(db, alert_record("MSFT", later, "MSFT moved +6.20%"), "disabled", later)
            wait_for(lambda: any(e.data["symbol"] == "MSFT" for e in anon_again.of("alert")), timeout=30,
                     what="the anonymous stream past the replay")
        finally:
            again.close()
            anon_again.close()
        replayed = [e.data["message"] for e in again.of("own_alert") if e.data["pos"] != mine.data["pos"]]
        assert replayed == ["MSFT below 400 (Ann's level)"]  # hers, once, and never Bob's
        assert anon_again.of("own_alert") == []
    finally:
        client.close()


def test_signed_out_meanwhile_the_open_stream_ends_without_the_own_alert(stack: Stack, web: str) -> None:
    """A page left open in another tab after signing out: its stream was opened signed in, but
    the session is looked at again before an own alert goes out."""
    settings = stack.settings()
    client = make_client(settings)
    db = get_db(client, settings)
    try:
        ann_id, cookies = signed_in(web, db, "ann@example.com")
        stream = open_stream(web, cookies=cookies)
        with requests.Session() as http:
            http.cookies.update(cookies)
            token = csrf_token(_FormPages(http, web), "/logout")
            assert http.post(web + "/logout", data={"csrf_token": token}, timeout=30,
                             allow_redirects=False).status_code == 302
        at = utcnow()
        store_user_alerts(db, [own_alert(ann_id, "AAPL", at, "AAPL above 300 (Ann's level)")], at)
        wait_for(stream.ended.is_set, timeout=30, what="the signed-out stream ended")
        assert stream.of("own_alert") == []
        # Reconnecting with the old cookie is a signed-out stream: the replay has none of hers.
        again = open_stream(web, stream.last_id(), cookies=cookies)
        try:
            store_alert(db, alert_record("AAPL", at, "AAPL moved +6.20%"), "disabled", at)
            wait_for(lambda: again.of("alert"), timeout=30, what="the system alert after the reconnect")
        finally:
            again.close()
        assert again.of("own_alert") == []
    finally:
        client.close()
