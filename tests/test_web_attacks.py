"""Issue 8, "Web" fault: hostile input to the Flask app is refused or neutralised.

Through the app factory and its test client against real SecantusDB and MariaDB
(the `stack` fixture):
- injection attempts (SQL-ish, MongoDB operators, path traversal, markup) in every
  query parameter, path segment and form field: a 400/404 (JSON for the API), never a
  500, never a match on more than asked, nothing changed in the stores;
- stored XSS: hostile news titles / alert messages are escaped on the pages, links
  are only made for http(s) URLs, and the JSON carries them as inert data;
- every form POST without (or with a forged / foreign) CSRF token: 400, nothing changed;
- brute-force login: failures lock the account (and, at a higher bound, the client
  address) for the lockout window, on a controlled clock; the right password works
  again after it.
"""

from __future__ import annotations

import json
import re
import smtplib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote, urlsplit

import pytest
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench.webdata import (
    csrf_token,
    mysql_conn,
    seed_alert_log,
    seed_daily,
    seed_mongo_extras,
    seed_quotes,
    utcnow,
)
from common.clock import utc_now
from database.mongo import ALERT_HISTORY, NEWS_ARTICLES, USERS, get_db, make_client
from flask_web_app.app import create_app
from flask_web_app.views import auth as auth_views
from tests.conftest import Stack
from tests.support.accounts import confirmation_link

SYMBOLS = ["AAPL", "GOOGL", "MSFT", "AMZN", "TSLA", "META", "NVDA"]
PASSWORD = "river-Stone-42"
STATIC_JS = Path(__file__).resolve().parents[1] / "flask_web_app" / "static" / "js"

# What an attacker types into a parameter or a field.
PAYLOADS = [
    "' OR 1=1 --",
    "AAPL' OR '1'='1",
    "AAPL'; DROP TABLE daily_aggregates; --",
    "1 UNION SELECT password_hash FROM users",
    '{"$ne": null}',
    '{"$gt": ""}',
    "$where: sleep(1000)",
    "../../../../etc/passwd",
    "..\\..\\config\\settings.py",
    "<script>alert(1)</script>",
    "AAPL\x00",
]
SCRIPT = "<script>alert(1)</script>"


def register(client: FlaskClient, **fields: Any) -> TestResponse:
    data = {"email": "ann@example.com", "name": "Ann", "password": PASSWORD, "confirm": PASSWORD,
            "digest_opt_in": "y", "csrf_token": csrf_token(client, "/register")}
    data.update(fields)
    return client.post("/register", data={k: v for k, v in data.items() if v is not None})


def sign_up(w: SimpleNamespace, client: FlaskClient | None = None, **fields: Any) -> FlaskClient:
    """Register, follow the confirmation link mailed through SMTP (aiosmtpd) and log in."""
    client = client or w.client
    assert register(client, **fields).status_code == 200
    email = fields.get("email", "ann@example.com")
    assert client.get(confirmation_link(w.inbox.to(email)[-1].message)).status_code == 200
    assert login(client, email=email).status_code == 302
    return client


def login(client: FlaskClient, email: str = "ann@example.com", password: str = PASSWORD, **extra: str) -> TestResponse:
    return client.post("/login", data={"email": email, "password": password,
                                       "csrf_token": csrf_token(client, "/login"), **extra})


def logged_in(client: FlaskClient) -> bool:
    return client.get("/account").status_code == 200


class Clock:
    """A controlled clock for the login throttle: the auth views read common.clock.utc_now()."""

    def __init__(self) -> None:
        self.now = utc_now()

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        clock = self

        monkeypatch.setattr(auth_views, "utc_now", lambda: clock.now)


def make_web(stack: Stack, instance: Path, **overrides: Any) -> SimpleNamespace:
    settings = stack.settings(log_to_elasticsearch=False, **overrides)
    app = create_app(settings, instance_path=str(instance))
    app.config["TESTING"] = True
    client = make_client(settings)
    return SimpleNamespace(app=app, client=app.test_client(), settings=settings, mongo=client,
                           db=get_db(client, settings), inbox=stack.servers["smtp"].inbox)


@pytest.fixture
def web(stack: Stack, tmp_path: Path) -> Iterator[SimpleNamespace]:
    w = make_web(stack, tmp_path / "instance", flask_login_max_failures=1000)
    yield w
    w.mongo.close()
    w.app.extensions["stores"].close()


@pytest.fixture
def seeded(web: SimpleNamespace) -> SimpleNamespace:
    now = utcnow()
    seed_quotes(web.settings, ["AAPL", "MSFT"], 5, now)
    seed_daily(web.settings, ["AAPL", "MSFT"], 25, now.date())
    seed_alert_log(web.settings, "AAPL", now)
    seed_mongo_extras(web.settings, "AAPL", now)
    web.now = now
    return web


def store_counts(web: SimpleNamespace) -> dict[str, int]:
    conn = mysql_conn(web.settings)
    try:
        with conn.cursor() as cur:
            counts = {}
            for table in ("daily_aggregates", "stock_performance", "alert_log", "weekly_aggregates"):
                cur.execute(f"SELECT COUNT(*) FROM {table}")  # noqa: S608 - fixed table names
                counts[table] = cur.fetchone()[0]
    finally:
        conn.close()
    for coll in ("realtime_prices", USERS, NEWS_ARTICLES, ALERT_HISTORY):
        counts[coll] = web.db[coll].count_documents({})
    return counts


# ---------------------------------------------------------------------------- injection

# Every API parameter and path segment; {} is where the (URL-encoded) payload goes.
API_TARGETS = [
    "/api/quotes/latest?symbols={}",
    "/api/quotes/latest?symbols=AAPL,{}",
    "/api/quotes/{}/intraday",
    "/api/quotes/AAPL/intraday?start={}",
    "/api/quotes/AAPL/intraday?end={}",
    "/api/quotes/AAPL/intraday?minutes={}",
    "/api/quotes/{}/recent",
    "/api/quotes/AAPL/recent?limit={}",
    "/api/daily/{}",
    "/api/daily/AAPL?days={}",
    "/api/performance?symbols={}",
    "/api/alerts?symbol={}",
    "/api/alerts?limit={}",
    "/api/alert-history?limit={}",
    "/api/news/{}",
    "/api/news/AAPL?limit={}",
]
PAGE_TARGETS = ["/dashboard?symbol={}", "/dashboard?symbol=AAPL&days={}"]


def fill(template: str, payload: str) -> str:
    return template.format(quote(payload, safe=""))


def test_injection_in_every_api_parameter_is_refused(seeded: SimpleNamespace) -> None:
    before = store_counts(seeded)
    for template in API_TARGETS:
        for payload in PAYLOADS:
            url = fill(template, payload)
            resp = seeded.client.get(url)
            assert resp.status_code in (400, 404), (url, resp.status_code, resp.get_data(as_text=True)[:200])
            assert resp.mimetype == "application/json", url
            body = resp.get_json()
            assert body["status"] == resp.status_code and body["error"], url
            # An error carries no data: nothing matched "more than asked".
            assert set(body) == {"error", "status"}, url
    assert store_counts(seeded) == before


def test_injection_in_page_parameters_is_refused_and_escaped(seeded: SimpleNamespace) -> None:
    before = store_counts(seeded)
    for template in PAGE_TARGETS:
        for payload in PAYLOADS:
            url = fill(template, payload)
            resp = seeded.client.get(url)
            assert resp.status_code in (400, 404), (url, resp.status_code)
            html = resp.get_data(as_text=True)
            assert SCRIPT not in html, url  # the payload is echoed escaped, if at all
    assert store_counts(seeded) == before


def test_operator_shaped_parameter_names_are_ignored(seeded: SimpleNamespace) -> None:
    # PHP/Express-style `symbol[$ne]=` is not parsed into an operator: Flask sees a
    # parameter with an odd name, which no view reads, so the answer is the default one.
    c = seeded.client
    assert c.get("/api/alerts?symbol[$ne]=MSFT").get_json()["alerts"] == c.get("/api/alerts").get_json()["alerts"]
    ne = c.get("/api/quotes/latest?symbols[$ne]=AAPL").get_json()
    assert [q["symbol"] for q in ne["quotes"]] == ["AAPL", "MSFT"]
    assert c.get("/dashboard?symbol[$regex]=.*").status_code == 200


@pytest.mark.parametrize("url", [
    "/static/../app.py",
    "/static/..%2fapp.py",
    "/static/%2e%2e/%2e%2e/config/settings.py",
    "/static/js/..%2f..%2f..%2f.env.example",
    "/vendor/plotly.min.js/../../etc/passwd",
    "/vendor/..%2f..%2f..%2fetc%2fpasswd",
    "/api/quotes/..%2f..%2f..%2fetc%2fpasswd/intraday",
    "/api/..%2f..%2fetc/passwd",
    "/..%2f..%2f..%2fetc/passwd",
    "/static/%5c..%5c..%5cflask_web_app%5capp.py",
])
def test_path_traversal_reaches_no_file(web: SimpleNamespace, url: str) -> None:
    resp = web.client.get(url)
    assert resp.status_code in (400, 404), (url, resp.status_code)
    body = resp.get_data(as_text=True)
    assert "root:" not in body and "create_app" not in body and "FLASK_SECRET_KEY" not in body


def test_injection_in_login_fields_never_logs_in(web: SimpleNamespace) -> None:
    sign_up(web)
    web.client.post("/logout", data={"csrf_token": csrf_token(web.client, "/logout")})
    attacker = web.app.test_client()
    for payload in PAYLOADS:
        for email, password in ((payload, payload), ("ann@example.com", payload), (payload, PASSWORD),
                                (f"ann@example.com{payload}", PASSWORD)):
            resp = login(attacker, email=email, password=password)
            assert resp.status_code in (400, 401), (email, password, resp.status_code)
            assert not logged_in(attacker), (email, password)
    # Operator-shaped field names are just unknown fields: email/password are missing.
    token = csrf_token(attacker, "/login")
    resp = attacker.post("/login", data={"csrf_token": token, "email[$ne]": "x", "password[$ne]": "x"})
    assert resp.status_code == 400 and not logged_in(attacker)
    # A JSON body with operators is not a form: no CSRF token, no fields.
    resp = attacker.post("/login", json={"email": {"$ne": None}, "password": {"$ne": None}})
    assert resp.status_code == 400 and not logged_in(attacker)
    resp = attacker.post("/login", json={"email": {"$ne": None}, "password": {"$ne": None}},
                         headers={"X-CSRFToken": token})
    assert resp.status_code == 400 and not logged_in(attacker)


@pytest.mark.parametrize("next_url", [
    "//evil.example/steal", "https://evil.example/", "http:evil.example", "/\\evil.example",
    "\\\\evil.example", "/\t/evil.example", "javascript:alert(1)", " //evil.example",
])
def test_login_next_parameter_cannot_redirect_off_site(web: SimpleNamespace, next_url: str) -> None:
    sign_up(web)
    web.client.post("/logout", data={"csrf_token": csrf_token(web.client, "/logout")})
    page = web.client.get("/login?next=" + quote(next_url + '"><script>alert(1)</script>', safe=""))
    assert SCRIPT not in page.get_data(as_text=True)  # echoed escaped into the hidden field
    resp = login(web.client, next=next_url)
    assert resp.status_code == 302
    location = resp.headers["Location"]
    # Browsers read "\" as "/" and drop tabs/newlines: none may remain in a redirect target.
    assert "\\" not in location and not re.search(r"[\x00-\x20]", location), location
    assert urlsplit(location).netloc in ("", "localhost"), location
    assert not location.lower().startswith("javascript:"), location


def test_injection_in_registration_and_account_fields_is_stored_as_text(web: SimpleNamespace) -> None:
    # Bad emails and watchlist entries are refused, and nothing is stored.
    for payload in PAYLOADS:
        assert register(web.app.test_client(), email=payload).status_code == 400, payload
        assert register(web.app.test_client(), email=f"x{uuid.uuid4().hex[:6]}@example.com",
                        watchlist=[payload]).status_code == 400, payload
    assert web.db[USERS].count_documents({}) == 0

    # A hostile name is accepted as what it is, a string, and shown escaped.
    hostile = "Ann'; DROP TABLE users; -- {\"$ne\": null} " + SCRIPT
    sign_up(web, name=hostile)
    user = web.db[USERS].find_one({"email": "ann@example.com"})
    assert user["name"] == hostile
    account = web.client.get("/account").get_data(as_text=True)
    assert SCRIPT not in account and "&lt;script&gt;alert(1)&lt;/script&gt;" in account

    token = csrf_token(web.client, "/account")
    for payload in PAYLOADS:
        resp = web.client.post("/account", data={"csrf_token": token, "name": "Ann", "watchlist": [payload]})
        assert resp.status_code == 400 and SCRIPT not in resp.get_data(as_text=True), payload
    assert web.db[USERS].find_one({"email": "ann@example.com"})["watchlist"] == []
    other = "<img src=x onerror=alert(2)> {\"$gt\": \"\"}"
    assert web.client.post("/account", data={"csrf_token": token, "name": other}).status_code == 302
    assert web.db[USERS].find_one({"email": "ann@example.com"})["name"] == other
    assert "<img src=x" not in web.client.get("/account").get_data(as_text=True)
    assert web.db[USERS].count_documents({}) == 1


# ---------------------------------------------------------------------------- stored XSS

XSS_TITLES = [
    "<script>alert('title')</script>",
    '<img src=x onerror="alert(1)">',
    "</script><script>alert('break-out')</script>",
    '"><svg onload=alert(1)>',
]


def test_stored_xss_in_news_and_alerts_is_neutralised(seeded: SimpleNamespace) -> None:
    now = seeded.now
    seeded.db[NEWS_ARTICLES].insert_many([
        {"url": url, "title": title, "summary": "<iframe src=//evil.example>",
         "source": "<b onmouseover=alert(1)>Evil</b>",
         "published_at": now + timedelta(minutes=i + 1), "published_date": now.date().isoformat(), "symbols": ["AAPL"],
         "sentiment": {"label": "<script>alert('s')</script>", "score": 0.1}, "fetched_at": now}
        for i, (url, title) in enumerate(zip(
            ["javascript:alert(document.cookie)", "https://news.example/ok", "data:text/html,<script>alert(1)</script>",
             "JaVaScRiPt:alert(1)"], XSS_TITLES, strict=True))
    ])
    seeded.db[ALERT_HISTORY].insert_one({
        "alert_key": "AAPL|price_change|x", "symbol": "AAPL", "rule": "price_change", "value": 9.0, "threshold": 5.0,
        "price": 1.0, "quote_timestamp": now, "message": '<img src=x onerror="alert(3)">', "source": "simulated",
        "email_status": "disabled", "email_error": None, "created_at": now + timedelta(minutes=5),
    })
    dashboard = seeded.client.get("/dashboard?symbol=AAPL")
    index = seeded.client.get("/")
    assert dashboard.status_code == 200 and index.status_code == 200
    for html in (dashboard.get_data(as_text=True), index.get_data(as_text=True)):
        for raw in ("<script>alert", "<img src=x", "<svg onload", "<iframe", "<b onmouseover", "</script><script>"):
            assert raw not in html, raw
    html = dashboard.get_data(as_text=True)
    assert "&lt;script&gt;alert(&#39;title&#39;)&lt;/script&gt;" in html  # shown as text
    assert "&lt;img src=x onerror=" in html
    # Links only for http(s): no javascript:/data: URL becomes an href.
    hrefs = re.findall(r'href="([^"]*)"', html)
    assert all(not h.lower().startswith(("javascript:", "data:text")) for h in hrefs), hrefs
    assert "https://news.example/ok" in hrefs
    # Every script on the page is same-origin or an inert JSON block (no inline code runs).
    for tag in re.findall(r"<script\b[^>]*>", html):
        assert 'src="/' in tag or 'type="application/json"' in tag, tag

    # The JSON endpoints carry the titles as data, typed as JSON so no browser renders them.
    resp = seeded.client.get("/api/news/AAPL")
    assert resp.mimetype == "application/json" and resp.headers["X-Content-Type-Options"] == "nosniff"
    titles = {a["title"] for a in json.loads(resp.get_data(as_text=True))["articles"]}
    assert set(XSS_TITLES) <= titles
    history = seeded.client.get("/api/alert-history").get_json()["alerts"]
    assert history[0]["message"] == '<img src=x onerror="alert(3)">'
    # ... and the page scripts only ever set text, never markup, from fetched data.
    for js in STATIC_JS.glob("*.js"):
        source = js.read_text(encoding="utf-8")
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in source, (js.name, sink)


# ---------------------------------------------------------------------------- CSRF

def test_every_form_post_without_a_valid_csrf_token_is_refused(web: SimpleNamespace) -> None:
    sign_up(web)
    user_before = web.db[USERS].find_one({"email": "ann@example.com"})
    stranger = web.app.test_client()
    foreign = csrf_token(stranger, "/register")  # a real token, but of another session
    new_pw = "Harbor-lights-77"
    forms = {
        "/register": {"email": "eve@example.com", "name": "Eve", "password": new_pw, "confirm": new_pw},
        "/login": {"email": "ann@example.com", "password": PASSWORD},
        "/logout": {"submit": "Log out"},
        "/account": {"name": "Pwned", "watchlist": ["TSLA"], "alert_opt_in": "y"},
        "/account/password": {"current": PASSWORD, "password": new_pw, "confirm": new_pw},
    }
    for url, data in forms.items():
        for token in (None, "", "forged-token", foreign, foreign[:-4] + "AAAA"):
            sent = dict(data) if token is None else {**data, "csrf_token": token}
            resp = web.client.post(url, data=sent)
            assert resp.status_code == 400, (url, token, resp.status_code)
            assert "CSRF" in resp.get_data(as_text=True), (url, token)
    # Nothing changed: still one user, same profile and password, still logged in.
    assert web.db[USERS].count_documents({}) == 1
    assert web.db[USERS].find_one({"email": "ann@example.com"}) == user_before
    assert logged_in(web.client)
    # A login without a token does not log a stranger in either.
    assert stranger.post("/login", data=forms["/login"]).status_code == 400 and not logged_in(stranger)


# ---------------------------------------------------------------------------- brute force

def test_brute_force_login_is_locked_out_then_the_right_password_works(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    clock.install(monkeypatch)
    w = make_web(stack, tmp_path / "instance", flask_login_max_failures=3, flask_login_lockout_seconds=600)
    try:
        sign_up(w)
        attacker = w.app.test_client()
        for i in range(3):
            clock.now += timedelta(seconds=1)
            assert login(attacker, password=f"guess-{i}-123456").status_code == 401
        # Locked: further guesses, and even the right password, are refused without a check.
        for email in ("ann@example.com", "ANN@Example.com", "  ann@example.com "):
            resp = login(attacker, email=email, password="guess-x-123456")
            assert resp.status_code == 429 and "Too many failed logins" in resp.get_data(as_text=True), email
        assert login(w.app.test_client()).status_code == 429
        # Still locked just before the window ends ...
        clock.now += timedelta(seconds=590)
        assert login(w.app.test_client()).status_code == 429
        # ... and the owner gets in once it has passed.
        clock.now += timedelta(seconds=15)
        owner = w.app.test_client()
        assert login(owner).status_code == 302 and logged_in(owner)
    finally:
        w.mongo.close()
        w.app.extensions["stores"].close()


def test_password_spraying_from_one_address_is_limited(
        stack: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clock = Clock()
    clock.install(monkeypatch)
    w = make_web(stack, tmp_path / "instance", flask_login_max_failures=2, flask_login_lockout_seconds=600)
    try:
        sign_up(w)
        spray = w.app.test_client()
        spray.environ_base["REMOTE_ADDR"] = "203.0.113.9"
        limit = 2 * auth_views.ADDRESS_FACTOR
        # One guess per account stays under the per-email bound, but not under the address bound.
        for i in range(limit):
            assert login(spray, email=f"user{i}@example.com", password="Summer-2024!").status_code == 401
        assert login(spray, email="another@example.com", password="Summer-2024!").status_code == 429
        assert login(spray).status_code == 429  # from that address, even a right guess is not checked
        # Other addresses are unaffected; after the window the address may try again.
        assert login(w.app.test_client()).status_code == 302
        clock.now += timedelta(seconds=601)
        assert login(spray).status_code == 302
    finally:
        w.mongo.close()
        w.app.extensions["stores"].close()


# ---------------------------------------------------------------------------- accounts and privacy

def test_confirmation_mail_arrives_and_only_confirmed_addresses_get_alerts_and_digests(
        web: SimpleNamespace, inbox: Any) -> None:
    from database.mongo.alerts import alert_subscribers
    from database.mongo.news import digest_recipients

    resp = register(web.client, alert_opt_in="y")
    assert resp.status_code == 200 and "Check your inbox" in resp.get_data(as_text=True)
    [mail] = inbox.to("ann@example.com")
    assert mail.message["Subject"] == "Confirm your email for the Stock Analysis System"
    assert not digest_recipients(web.db) and not alert_subscribers(web.db, "AAPL")  # unconfirmed: nothing
    assert web.client.get(confirmation_link(mail.message)).status_code == 200
    assert [u["email"] for u in digest_recipients(web.db)] == ["ann@example.com"]
    assert [u["email"] for u in alert_subscribers(web.db, "AAPL")] == ["ann@example.com"]
    # Someone registering the same address again: same page, a notice to the owner, no second account.
    again = register(web.app.test_client(), name="Mallory", alert_opt_in="y")
    assert again.status_code == 200 and "Check your inbox" in again.get_data(as_text=True)
    assert inbox.to("ann@example.com")[-1].message["Subject"].startswith("Someone tried to register")
    assert web.db[USERS].count_documents({}) == 1


def test_alert_history_answers_without_addresses(web: SimpleNamespace, inbox: Any) -> None:
    from common.mailer import SmtpMailer, build_message, failure_reason
    from database.mongo.alerts import set_email_status, store_alert

    now = utcnow()
    base = {"symbol": "AAPL", "rule": "price_change", "value": 9.0, "threshold": 5.0, "price": 1.0,
            "quote_timestamp": now, "message": "AAPL is up 9.00%", "source": "simulated"}
    # Stored before errors were kept address-free: redacted in the answer.
    web.db[ALERT_HISTORY].insert_one({**base, "alert_key": "old", "email_status": "failed", "created_at": now,
                                      "email_error": "ann@example.com: (550, b'5.1.1 <ann@example.com>: refused')"})
    # Stored now: the real SMTP server refuses, and the reason names no address.
    inbox.refuse = True
    with pytest.raises(smtplib.SMTPException) as refused:
        SmtpMailer(web.settings).send(build_message(web.settings.email_sender, "bob@example.com", "s", "t"))
    store_alert(web.db, {**base, "alert_key": "new"}, "pending", now + timedelta(seconds=1))
    set_email_status(web.db, "new", "failed", failure_reason(refused.value))
    body = web.client.get("/api/alert-history").get_data(as_text=True)
    history = json.loads(body)["alerts"]
    assert [a["email_error"] for a in history] == ["message refused (554)",
                                                   "<address>: (550, b'5.1.1 <<address>>: refused')"]
    assert "@" not in body
