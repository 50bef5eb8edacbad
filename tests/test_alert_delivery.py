"""streaming/alert_delivery.py against SecantusDB and a local webhook receiver: a
user's rules read with the system's floors, webhooks left pending by a stop sent at
the next start (hostile ones failing alone), and what users and operators are told."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator

import pytest
from bson import ObjectId

from common import webhook
from common.clock import utc_now
from common.mailer import SmtpMailer
from config import Settings
from database.mongo import ALERT_DELIVERIES, get_db, make_client
from database.mongo.alerts import plan_delivery
from scripts.servers import SecantusMongo
from scripts.waiting import free_port, wait_for
from streaming.alert_delivery import Deliveries, user_rules
from tests.support.webhook_receiver import WebhookReceiver


def settings_for(mongo_uri: str = "mongodb://127.0.0.1:1", **values: object) -> Settings:
    values.setdefault("smtp_server", "")
    return Settings(_env_file=None, mongo_uri=mongo_uri, mongo_db=f"stock_market_{uuid.uuid4().hex[:10]}",  # type: ignore[call-arg]
                    log_to_elasticsearch=False, **values)


def test_user_rules_never_go_below_the_system() -> None:
    settings = settings_for(price_change_threshold=5.0, volume_threshold_multiplier=2.0, alert_user_daily_cap=20)
    oid = ObjectId()
    loose = user_rules({"_id": oid, "email": "a@x", "alert_opt_in": True, "alert_price_threshold": 1.0,
                        "alert_volume_multiplier": 0.5, "alert_daily_cap": 0, "watchlist": ["AAPL"]}, settings)
    assert (loose.price_threshold, loose.volume_multiplier, loose.daily_cap) == (5.0, 2.0, 20)
    assert loose.user_id == str(oid) and loose.watchlist == ("AAPL",) and loose.webhook_url is None
    strict = user_rules({"_id": oid, "alert_opt_in": True, "alert_price_threshold": 8.5, "alert_daily_cap": 3,
                         "alert_webhook_url": "https://h.example/x"}, settings)
    assert (strict.price_threshold, strict.volume_multiplier, strict.daily_cap) == (8.5, 2.0, 3)
    assert strict.webhook_url == "https://h.example/x" and strict.email == ""


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    hook = WebhookReceiver().start()
    yield hook
    hook.stop()


def test_webhooks_pending_at_a_stop_go_out_at_the_next_start(mongo: SecantusMongo, receiver: WebhookReceiver) -> None:
    settings = settings_for(mongo.uri, webhook_allowed_http_hosts="127.0.0.1",
                            webhook_allowed_internal_hosts="127.0.0.1")
    client = make_client(settings)
    db = get_db(client, settings)
    now = utc_now()
    day = now.astimezone(settings.tz).date().isoformat()
    for n, status in enumerate(("pending", "sent", "failed")):
        plan_delivery(db, {"_id": f"k{n}|webhook|system", "alert_key": f"k{n}", "channel": "webhook",
                           "recipient": "system", "user_id": None, "day": day, "status": status, "attempts": 0,
                           "url": receiver.url(f"/hook{n}"), "text": f"alert {n}", "created_at": now})
    deliveries = Deliveries(settings, db, SmtpMailer(settings), logging.getLogger("test"))
    deliveries.start()
    try:
        wait_for(lambda: db[ALERT_DELIVERIES].find_one({"_id": "k0|webhook|system"})["status"] == "sent", timeout=20,
                 what="the pending webhook sent")
    finally:
        deliveries.close()
        client.close()
    assert [r.body["text"] for r in receiver.received] == ["alert 0"]  # sent or failed ones are not repeated


def test_hostile_pending_webhooks_fail_alone_at_start_and_users_see_generic_reasons(
        mongo: SecantusMongo, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture) -> None:
    """Pending deliveries with URLs that used to kill both workers at every start, one to
    an internal address, one refused, and more than a user may have waiting: each fails
    alone with a reason fit for users (details in the log), and the good ones go out."""
    settings = settings_for(mongo.uri, webhook_allowed_http_hosts="127.0.0.1",
                            webhook_allowed_internal_hosts="127.0.0.1", webhook_pending_per_user=2,
                            webhook_max_attempts=1)
    client = make_client(settings)
    db = get_db(client, settings)
    now = utc_now()
    day = now.astimezone(settings.tz).date().isoformat()
    down = f"http://127.0.0.1:{free_port()}/down"
    urls = {"killer1": "https://a..b/x", "killer2": "http://[::1", "killer3": "https://" + "a" * 64 + ".com/x",
            "metadata": "http://169.254.169.254/latest/meta-data/", "mapped": "https://[::ffff:10.0.0.1]/x",
            "down": down, "good": receiver.url("/good")}
    for n, (name, url) in enumerate(urls.items()):
        plan_delivery(db, {"_id": f"{name}|webhook|u{n}", "alert_key": name, "channel": "webhook", "recipient": f"u{n}",
                           "user_id": f"u{n}", "day": day, "status": "pending", "attempts": 0, "url": url,
                           "text": name, "created_at": now})
    for n in range(3):  # one user with three waiting: two go, the third is refused at once
        plan_delivery(db, {"_id": f"busy{n}|webhook|busy", "alert_key": f"busy{n}", "channel": "webhook",
                           "recipient": "busy", "user_id": "busy", "day": day, "status": "pending", "attempts": 0,
                           "url": receiver.url(f"/busy{n}"), "text": f"busy{n}", "created_at": now})
    deliveries = Deliveries(settings, db, SmtpMailer(settings), logging.getLogger("test.hostile"))
    with caplog.at_level(logging.INFO, logger="test.hostile"):
        deliveries.start()
        try:
            wait_for(lambda: db[ALERT_DELIVERIES].count_documents({"status": "pending"}) == 0, timeout=20,
                     what="every pending webhook finished")
        finally:
            deliveries.close()
            errors = {d["_id"].split("|")[0]: (d["status"], d["error"]) for d in db[ALERT_DELIVERIES].find()}
            client.close()
    assert errors["good"] == ("sent", None)
    for name in ("killer1", "killer2", "killer3"):
        assert errors[name][0] == "failed" and errors[name][1].startswith("URL refused: That is not a valid URL")
    assert errors["metadata"] == errors["mapped"] == ("failed", f"URL refused: Webhooks cannot go to internal "
                                                                f"addresses ({webhook.REASON_INTERNAL}).")
    assert errors["down"] == ("failed", webhook.REASON_REFUSED)
    busy = sorted(errors[f"busy{n}"] for n in range(3))
    assert busy == [("failed", webhook.REASON_USER_BUSY), ("sent", None), ("sent", None)]
    assert sorted(r.path for r in receiver.received) == sorted(["/good", *(p for p in ("/busy0", "/busy1", "/busy2")
                                                                     if errors[p[1:]][0] == "sent")])
    log = caplog.text
    assert "Connection refused" in log  # the operators' detail
    assert "/down" not in log and "/good" not in log and "meta-data" not in log  # webhook paths stay secret


def test_emails_pending_at_a_stop_go_out_at_the_next_start_once(mongo: SecantusMongo, smtp, inbox) -> None:  # type: ignore[no-untyped-def]
    settings = settings_for(mongo.uri, smtp_server="127.0.0.1", smtp_port=smtp.port, smtp_starttls=False,
                            email_sender=smtp.user, email_password=smtp.password)
    client = make_client(settings)
    db = get_db(client, settings)
    now = utc_now()
    day = now.astimezone(settings.tz).date().isoformat()
    for n, status in enumerate(("pending", "sent", "failed")):
        plan_delivery(db, {"_id": f"k{n}|email|u{n}", "alert_key": f"k{n}", "channel": "email",
                           "recipient": f"u{n}", "target": f"u{n}@example.test", "user_id": f"u{n}", "day": day,
                           "status": status, "attempts": 0, "subject": f"alert {n}", "text": f"text {n}",
                           "created_at": now})
    finished: list[tuple[str, str]] = []
    deliveries = Deliveries(settings, db, SmtpMailer(settings), logging.getLogger("test"),
                            finished=lambda key, outcome: finished.append((key, outcome.status)))
    deliveries.start()
    try:
        wait_for(lambda: finished == [("k0", "sent")], timeout=30, what="the pending email sent")
        assert db[ALERT_DELIVERIES].find_one({"_id": "k0|email|u0"})["status"] == "sent"
    finally:
        deliveries.close()
        client.close()
    assert [m.message["Subject"] for m in inbox.messages] == ["alert 0"]  # sent or failed ones are not repeated
