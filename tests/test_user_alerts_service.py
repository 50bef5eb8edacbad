"""Users' own rules in streaming/alerts.py, against Tansu, SecantusDB, MariaDB and real SMTP
servers: a user's own threshold, a price level, a restart and a redelivered quote in the
middle, and an SMTP server that takes 30 s to answer."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from pymongo import MongoClient
from pymongo.database import Database

from common.clock import utc_now
from database.mongo import ALERT_HISTORY, USER_ALERTS
from database.mongo import user_rules as rules_db
from database.mongo.users import create_user, update_profile
from scripts.processes import ServiceProcess
from scripts.smtp_inbox import Inbox
from scripts.waiting import free_port, wait_for
from tests.conftest import Stack
from tests.support.accounts import confirm_as_the_link_does
from tests.test_alerts_service import alert_rows
from tests.test_streaming_support import make_topics, produce, quote_bytes

pytestmark = pytest.mark.slow


def mongo_db(stack: Stack) -> Database:
    settings = stack.settings()
    return MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]


def add_user(db: Database, email: str, watchlist: list[str], **rules: Any) -> str:
    uid = create_user(db, email=email, name=email, password_hash="x", watchlist=watchlist, digest_opt_in=False,
                      alert_opt_in=True, created_at=utc_now())
    confirm_as_the_link_does(db, uid, email)
    if rules:
        update_profile(db, uid, name=email, watchlist=watchlist, digest_opt_in=False, alert_opt_in=True,
                       alert_rules=rules)
        rules_db.bump_version(db)
    return uid


def user_alerts(db: Database, uid: str) -> list[dict[str, Any]]:
    return list(db[USER_ALERTS].find({"user_id": uid}, {"_id": 0}).sort("quote_timestamp", 1))


def move(i: int, change: float, symbol: str = "AAPL") -> tuple[str, bytes]:
    value = 100.0 + change
    return symbol, quote_bytes(symbol, i, change_percent=change, price=value, low=min(value, 99.0),
                               high=max(value, 106.0))


def price(i: int, value: float, symbol: str = "AAPL") -> tuple[str, bytes]:
    return symbol, quote_bytes(symbol, i, price=value, change_percent=0.5, open=value, low=250.0, high=350.0,
                               previous_close=value)


def test_own_threshold_8_percent_fires_once_at_8_5_across_a_restart_and_a_redelivery(
        stack: Stack, inbox: Inbox) -> None:
    settings = stack.settings()
    db = mongo_db(stack)
    make_topics(settings, settings.kafka_topic)
    eight = add_user(db, "eight@example.test", ["AAPL"], alert_price_threshold=8.0)
    plain = add_user(db, "plain@example.test", ["AAPL"])  # the system's threshold: the system's alerts
    env = stack.with_env(USER_RULES_REREAD_SECONDS="0")
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [move(0, 5.3), move(15, 7.0), move(30, 8.5)])
    alerts = ServiceProcess("streaming/alerts.py", env).start()
    try:
        wait_for(lambda: len(user_alerts(db, eight)) == 1 and len(inbox.messages) == 2, timeout=90,
                 what="the user's own alert at 8.5 % and the system's at 5.3 % mailed")
    finally:
        assert alerts.stop() == 0, alerts.output()
    # While stopped: the 8.5 % quote again (a redelivery), then 9 %, then a MSFT move the
    # system alerts on (the sign that the restarted service read past the others).
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [move(30, 8.5), move(45, 9.0), move(60, 12.0, "MSFT")])
    again = ServiceProcess("streaming/alerts.py", env, name="alerts-again").start()
    try:
        wait_for(lambda: db[ALERT_HISTORY].count_documents({"symbol": "MSFT"}) == 1, timeout=90,
                 what="the restarted service past the redelivered quote")
        wait_for(lambda: len(inbox.to("plain@example.test")) == 1, timeout=30, what="the system alert mailed")
    finally:
        assert again.stop() == 0, again.output()
    own = user_alerts(db, eight)
    assert [(a["rule"], a["value"], a["band"]) for a in own] == [("user_price_change", 8.5, 1)]
    assert own[0]["threshold"] == 8.0
    assert [m.message["Subject"] for m in inbox.to("eight@example.test")] == ["[Stock alert] AAPL: price move"]
    assert "8.50%" in inbox.to("eight@example.test")[0].message.get_content()
    # The system's record is the system's: one price_change at 5.3 %, nothing at 8.5 %.
    assert [(r["symbol"], r["rule"], float(r["value"])) for r in alert_rows(stack)] == [
        ("AAPL", "price_change", 5.3), ("MSFT", "price_change", 12.0)]
    assert user_alerts(db, plain) == []


def test_a_level_crossed_held_back_and_again_re_arms_across_a_restart_and_a_redelivery(
        stack: Stack, inbox: Inbox) -> None:
    settings = stack.settings()
    db = mongo_db(stack)
    make_topics(settings, settings.kafka_topic)
    uid = add_user(db, "levels@example.test", ["AAPL"])
    _, above = rules_db.add_level_rule(db, uid, symbol="AAPL", direction="above", level=300.0, mode="rearm",
                                       now=utc_now(), max_per_user=10)
    _, once = rules_db.add_level_rule(db, uid, symbol="AAPL", direction="below", level=290.0, mode="once",
                                      now=utc_now(), max_per_user=10)
    env = stack.with_env(USER_RULES_REREAD_SECONDS="0", USER_LEVEL_REARM_PERCENT="1")
    # crossed at 301, held (305, 302), back to 298.5 (not 1 % back: still fired)
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [price(0, 299.0), price(15, 301.0), price(30, 305.0), price(45, 302.0), price(60, 298.5)])
    alerts = ServiceProcess("streaming/alerts.py", env).start()
    try:
        wait_for(lambda: rules_db.level_rules_of(db, uid, "AAPL")[1]["as_of"] is not None
                 and len(inbox.to("levels@example.test")) == 1, timeout=90, what="the first crossing mailed")
    finally:
        assert alerts.stop() == 0, alerts.output()
    # Restart, the crossing quote again (redelivered), 296 (1 % back: re-armed), 300.5 (again),
    # then 289 (the one-shot below 290), 295, 285 (one-shot: never again).
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [price(15, 301.0), price(75, 296.0), price(90, 300.5), price(105, 289.0), price(120, 295.0),
             price(135, 285.0), move(150, 12.0, "MSFT")])
    again = ServiceProcess("streaming/alerts.py", env, name="alerts-again").start()
    try:
        wait_for(lambda: len(user_alerts(db, uid)) == 3 and len(inbox.to("levels@example.test")) == 3, timeout=90,
                 what="the second crossing and the one-shot mailed")
        wait_for(lambda: db[ALERT_HISTORY].count_documents({"symbol": "MSFT"}) == 1, timeout=60,
                 what="the service past the last AAPL quote")
    finally:
        assert again.stop() == 0, again.output()
    fired = [(a["rule_id"], a["price"]) for a in user_alerts(db, uid)]
    assert fired == [(above, 301.0), (above, 300.5), (once, 289.0)]
    rules = {str(r["_id"]): r for r in rules_db.level_rules_of(db, uid)}
    # 289 took "above 300" 1 % back again: armed for the next crossing; the one-shot stays fired.
    assert rules[above]["armed"] is True and rules[above]["fired_price"] == 300.5
    assert rules[once]["armed"] is False and rules[once]["fired_price"] == 289.0
    # The system's record holds the system's alert (MSFT) and none of the user's.
    assert [r["symbol"] for r in alert_rows(stack)] == ["MSFT"]


class _SlowSmtp:
    """An SMTP server that answers DATA after 30 s (or when released): a slow mail server."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.received: list[str] = []
        self.answered = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        self.received.append(envelope.rcpt_tos[0])
        await asyncio.get_running_loop().run_in_executor(None, self.release.wait, 30.0)
        self.answered += 1
        return "250 OK"


def test_a_slow_smtp_server_does_not_hold_up_the_next_quotes_alerts(stack: Stack) -> None:
    settings = stack.settings()
    db = mongo_db(stack)
    make_topics(settings, settings.kafka_topic)
    handler = _SlowSmtp()
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    eight = add_user(db, "slow@example.test", ["NVDA"], alert_price_threshold=8.0)
    env = stack.with_env(SMTP_PORT=str(port), EMAIL_PASSWORD="", ALERT_EMAIL_RECIPIENTS="ops@example.test",
                         USER_RULES_REREAD_SECONDS="0", ALERT_EMAIL_WORKERS="1")
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [move(0, 6.0, "AAPL"), move(15, 7.0, "MSFT"), move(30, -9.0, "TSLA"), move(45, 9.0, "NVDA")])
    alerts = ServiceProcess("streaming/alerts.py", env).start()
    try:
        wait_for(lambda: handler.received, timeout=90, what="the first email at the slow server")
        # Every later quote's alerts (the system's and the user's own) are stored while the
        # first email has not been answered yet.
        wait_for(lambda: db[ALERT_HISTORY].count_documents({}) == 4 and len(user_alerts(db, eight)) == 1,
                 timeout=90, what="the next quotes' alerts stored")
        assert handler.answered == 0, "the alerts waited for the SMTP server"
        stored = {d["symbol"]: d["email_status"] for d in db[ALERT_HISTORY].find({})}
        assert stored["AAPL"] == "pending"  # on its way, not given up
        handler.release.set()
        wait_for(lambda: all(d["email_status"] != "pending" for d in db[ALERT_HISTORY].find({})), timeout=120,
                 what="the queued emails done")
    finally:
        handler.release.set()
        assert alerts.stop() == 0, alerts.output()
        controller.stop()
    assert sorted(d["symbol"] for d in db[ALERT_HISTORY].find({})) == ["AAPL", "MSFT", "NVDA", "TSLA"]
    assert [r["email_status"] for r in alert_rows(stack)] and all(
        r["email_status"] in ("sent", "failed") for r in alert_rows(stack))  # alert_log in step with alert_history
