"""Price-level alerts on the account page and a symbol's dashboard, through the test client against
SecantusDB: added, listed with when each last fired, deleted; bad input refused with a clear error
on the form and nothing stored; CSRF; nobody touches another user's rules."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from bench.webdata import csrf_token
from common.clock import utc_now
from database.mongo import PRICE_LEVEL_RULES
from database.mongo.prices import insert_quotes
from tests.test_web_auth import errors_of, sign_up
from tests.test_web_symbols import make_web  # noqa: F401 - the fixture

BOB = "bob@example.com"


def add_level(client: FlaskClient, page: str = "/account", **fields: Any) -> TestResponse:
    data = {"symbol": "AAPL", "direction": "above", "level": "300", "mode": "rearm",
            "back": "dashboard" if page.startswith("/dashboard") else "account",
            "csrf_token": csrf_token(client, page), **fields}
    return client.post("/alerts/levels", data={k: v for k, v in data.items() if v is not None})


def delete_level(client: FlaskClient, rule_id: str, page: str = "/account") -> TestResponse:
    return client.post(f"/alerts/levels/{rule_id}/delete",
                       data={"csrf_token": csrf_token(client, page), "back": "account"})


def rules(web: SimpleNamespace) -> list[dict[str, Any]]:
    return list(web.db[PRICE_LEVEL_RULES].find().sort("created_at", 1))


def text(resp: TestResponse) -> str:
    return html.unescape(resp.get_data(as_text=True))


def test_add_list_and_delete_from_the_account_page_and_the_dashboard(make_web) -> None:  # noqa: F811
    web = make_web()
    client = sign_up(web)
    resp = add_level(client)
    assert resp.status_code == 302 and resp.headers["Location"].endswith("/account")
    resp = add_level(client, "/dashboard?symbol=MSFT", symbol="MSFT", direction="below", level="250.5", mode="once")
    assert resp.status_code == 302 and "/dashboard?symbol=MSFT" in resp.headers["Location"]
    stored = rules(web)
    assert [(r["symbol"], r["direction"], r["level"], r["mode"], r["armed"]) for r in stored] == [
        ("AAPL", "above", 300.0, "rearm", True), ("MSFT", "below", 250.5, "once", True)]
    # Listed with when each last fired (the alerts service stores it on the rule).
    web.db[PRICE_LEVEL_RULES].update_one({"_id": stored[0]["_id"]}, {"$set": {
        "armed": False, "fired_at": datetime(2026, 1, 13, 15, 31, tzinfo=UTC), "fired_price": 301.25}})
    page = text(client.get("/account"))
    assert "above 300" in page and "2026-01-13 15:31:00 at 301.25" in page and "below 250.5" in page
    dash = text(client.get("/dashboard?symbol=MSFT"))
    assert "Price alerts on MSFT" in dash and "below 250.5" in dash and "above 300" not in dash
    assert delete_level(client, str(stored[0]["_id"])).status_code == 302
    assert [r["symbol"] for r in rules(web)] == ["MSFT"]


def test_bad_levels_and_unfollowed_symbols_get_a_clear_error_and_store_nothing(make_web) -> None:  # noqa: F811
    web = make_web()
    client = sign_up(web)
    insert_quotes(web.db, [{"symbol": "AAPL", "timestamp": datetime(2026, 1, 13, 15, 30, tzinfo=UTC),
                            "price": 261.0, "volume": 1000}])
    for level, expect in (("-5", "above 0"), ("0", "above 0"), ("abc", "Not a valid decimal"),
                          ("5000000", "at most 1,000,000"), ("", "Give a price")):
        resp = add_level(client, level=level)
        assert resp.status_code == 400 and expect in html.unescape(errors_of(resp, "level")), (level, text(resp))
    resp = add_level(client, level="3000")  # more than 10x the last price: a typo
    assert resp.status_code == 400 and "last price of 261.00" in html.unescape(errors_of(resp, "level"))
    resp = add_level(client, symbol="ZZZZ")
    assert resp.status_code == 400 and "not a symbol the system follows" in errors_of(resp, "symbol")
    resp = add_level(client, symbol="<b>x")
    assert resp.status_code == 400 and "<b>x" not in resp.get_data(as_text=True)
    resp = add_level(client, direction="sideways")
    assert resp.status_code == 400 and errors_of(resp, "direction")
    # From the dashboard the error shows on the dashboard.
    resp = add_level(client, "/dashboard?symbol=AAPL", level="-1")
    assert resp.status_code == 400 and "Dashboard · AAPL" in text(resp) and "above 0" in text(resp)
    assert rules(web) == []


def test_the_per_user_limit_csrf_and_other_users_rules(make_web) -> None:  # noqa: F811
    web = make_web(user_max_level_rules=3)
    ann = sign_up(web)
    for level in ("300", "310", "320"):
        assert add_level(ann, level=level).status_code == 302
    resp = add_level(ann, level="330")
    assert resp.status_code == 409 and "USER_MAX_LEVEL_RULES" in text(resp)
    assert len(rules(web)) == 3
    # No CSRF token: refused.
    assert ann.post("/alerts/levels", data={"symbol": "AAPL", "direction": "above", "level": "1",
                                            "mode": "once"}).status_code == 400
    bob = sign_up(web, web.app.test_client(), email=BOB, name="Bob")
    bob_id = str(web.db.users.find_one({"email": BOB})["_id"])
    ann_id = str(web.db.users.find_one({"email": "ann@example.com"})["_id"])
    # Ann posts a rule with Bob's id: refused, nothing stored for anyone.
    resp = add_level(ann, level="290", user_id=bob_id)
    assert resp.status_code == 403 and "your own account only" in text(resp)
    # Bob cannot delete Ann's rule (nor see it).
    ann_rule = str(rules(web)[0]["_id"])
    resp = delete_level(bob, ann_rule)
    assert resp.status_code == 404 and "No such price alert among yours" in text(resp)
    assert "above 300" not in text(bob.get("/account"))
    assert len(rules(web)) == 3 and all(r["user_id"] == ann_id for r in rules(web))
    assert delete_level(bob, "not-an-id").status_code == 404
    # Signed out: sent to log in, nothing stored.
    anon = web.app.test_client()
    resp = anon.post("/alerts/levels", data={"csrf_token": csrf_token(anon, "/login"), "symbol": "AAPL",
                                             "direction": "above", "level": "300", "mode": "once"})
    assert resp.status_code == 302 and "/login" in resp.headers["Location"]
    assert len(rules(web)) == 3


def test_own_alerts_on_the_pages_and_the_polled_alerts_are_their_owner_s_only(make_web) -> None:  # noqa: F811
    """/api/alerts/latest (what the live page polls where streams are refused), the live page and
    the symbol's dashboard: the system's alerts for everyone, a user's own alerts for that user only."""
    from database.mongo.alerts import store_alert
    from database.mongo.user_rules import store_user_alerts

    web = make_web()
    ann = sign_up(web)
    bob = sign_up(web, web.app.test_client(), email=BOB, name="Bob")
    anon = web.app.test_client()
    ann_id = str(web.db.users.find_one({"email": "ann@example.com"})["_id"])
    at = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)
    store_alert(web.db, {"alert_key": f"AAPL|price_change|{at.isoformat()}", "symbol": "AAPL",
                         "rule": "price_change", "value": 6.2, "threshold": 5.0, "price": 281.0,
                         "quote_timestamp": at, "message": "AAPL moved +6.20%", "source": "simulated"},
                "disabled", at)
    store_user_alerts(web.db, [{"alert_key": f"{ann_id}|price_level|AAPL|{at.isoformat()}", "user_id": ann_id,
                                "rule_id": "r1", "symbol": "AAPL", "rule": "price_level", "value": 301.0,
                                "threshold": 300.0, "price": 301.0, "quote_timestamp": at, "source": "simulated",
                                "message": "AAPL went above 300.00", "band": None}], at + timedelta(minutes=1))

    def polled(client: FlaskClient) -> list[dict[str, Any]]:
        resp = client.get("/api/alerts/latest")
        assert resp.status_code == 200 and "no-store" in resp.headers["Cache-Control"]
        return resp.get_json()["alerts"]

    mine = polled(ann)
    assert [a["message"] for a in mine] == ["AAPL went above 300.00", "AAPL moved +6.20%"]
    assert mine[0]["own"] is True and "own" not in mine[1] and "user_id" not in mine[0]
    for other in (bob, anon):
        assert [a["message"] for a in polled(other)] == ["AAPL moved +6.20%"]
    assert "AAPL went above 300.00" in text(ann.get("/"))
    assert "AAPL went above 300.00" not in text(bob.get("/")) and "AAPL went above 300.00" not in text(anon.get("/"))
    dash = text(ann.get("/dashboard?symbol=AAPL"))  # among the symbol's alerts, so a reload keeps it
    assert "AAPL went above 300.00" in dash and "your rule" in dash
    assert "AAPL went above 300.00" not in text(bob.get("/dashboard?symbol=AAPL"))
    assert "AAPL went above 300.00" not in text(ann.get("/dashboard?symbol=MSFT"))
    assert anon.get("/api/alerts/latest?limit=51").status_code == 400

    # The dashboard polls one symbol's: the system's and the user's own of that symbol only.
    store_alert(web.db, {"alert_key": f"MSFT|price_change|{at.isoformat()}", "symbol": "MSFT",
                         "rule": "price_change", "value": 5.5, "threshold": 5.0, "price": 401.0,
                         "quote_timestamp": at, "message": "MSFT moved +5.50%", "source": "simulated"},
                "disabled", at + timedelta(minutes=2))

    def polled_for(client: FlaskClient, symbol: str) -> list[str]:
        resp = client.get(f"/api/alerts/latest?symbol={symbol}")
        assert resp.status_code == 200 and "no-store" in resp.headers["Cache-Control"]
        return [a["message"] for a in resp.get_json()["alerts"]]

    assert polled_for(ann, "aapl") == ["AAPL went above 300.00", "AAPL moved +6.20%"]
    assert polled_for(ann, "MSFT") == ["MSFT moved +5.50%"]
    assert polled_for(anon, "AAPL") == ["AAPL moved +6.20%"]
    assert [a["message"] for a in polled(anon)] == ["MSFT moved +5.50%", "AAPL moved +6.20%"]  # no filter: all
    for bad in ("ZZZZ", "", "AAPL,MSFT", "<script>"):
        resp = anon.get("/api/alerts/latest", query_string={"symbol": bad})
        assert resp.status_code == 404 and "error" in resp.get_json(), bad


def test_a_symbol_another_worker_just_registered_takes_a_level(make_web) -> None:  # noqa: F811
    """Seen on the local stack (gunicorn, 2 workers): "Now following IBM", then a price alert on IBM
    was refused, "IBM is not a symbol the system follows", by the worker that had read the
    registry before the other one added IBM."""
    from database.mongo import symbols as registry_db

    web = make_web()
    client = sign_up(web)
    assert "IBM" not in text(client.get("/account"))  # this worker has read the registry
    added = registry_db.add_follower(web.db, "IBM", "another-worker-s-user", name="International Business Machines",
                                     simulated=False, now=utc_now(), max_symbols=500, max_per_user=50)
    assert added == registry_db.Added.ADDED
    resp = add_level(client, symbol="IBM", level="250")
    assert resp.status_code == 302, errors_of(resp, "symbol")
    assert [(r["symbol"], r["level"]) for r in rules(web)] == [("IBM", 250.0)]


def test_a_refused_level_leaves_the_account_s_opt_ins_as_stored(make_web) -> None:  # noqa: F811
    """Seen on the local stack: after a refused price level the account page showed the digest and
    alert boxes unticked (read from the level form's POST), so the next Save would switch them off."""
    web = make_web()
    client = sign_up(web, alert_opt_in="y")  # digest_opt_in too (register's default)
    resp = add_level(client, level="-5")
    assert resp.status_code == 400
    page = resp.get_data(as_text=True)
    for box in ("digest_opt_in", "alert_opt_in"):
        tag = re.search(rf'<input[^>]*id="{box}"[^>]*>', page)
        assert tag is not None and "checked" in tag.group(0), (box, tag)
