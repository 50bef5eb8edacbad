"""streaming/alerts.py against Tansu, SecantusDB, MariaDB and a real SMTP server."""

from __future__ import annotations

from pymongo import MongoClient

from common.clock import utc_now
from database.mongo import ALERT_HISTORY
from database.mongo.users import create_user
from scripts.processes import ServiceProcess
from scripts.smtp_inbox import Inbox
from scripts.waiting import wait_for
from tests.conftest import Stack, mysql_root
from tests.support.accounts import confirm_as_the_link_does
from tests.test_streaming_support import make_topics, produce, quote_bytes


def alert_rows(stack: Stack) -> list[dict]:
    conn = mysql_root(stack.env["MYSQL_DATABASE"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT alert_key, symbol, rule, value, email_status, email_error FROM alert_log ORDER BY id")
            return list(cur.fetchall())
    finally:
        conn.close()


def history(stack: Stack):  # type: ignore[no-untyped-def]
    settings = stack.settings()
    return MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db][ALERT_HISTORY]


def add_user(stack: Stack, email: str, opt_in: bool, watchlist: list[str], confirmed: bool = True) -> None:
    settings = stack.settings()
    db = MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]
    uid = create_user(db, email=email, name=email, password_hash="x", watchlist=watchlist, digest_opt_in=False,
                      alert_opt_in=opt_in, created_at=utc_now())
    if confirmed:
        confirm_as_the_link_does(db, uid, email)


def test_spikes_alert_once_within_cooldown_across_a_restart(stack: Stack, inbox: Inbox) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    add_user(stack, "fan@example.test", True, [])
    add_user(stack, "quiet@example.test", False, [])
    add_user(stack, "msft-only@example.test", True, ["MSFT"])
    add_user(stack, "unconfirmed@example.test", True, [], confirmed=False)  # nobody confirmed it: no mail
    env = stack.with_env(VOLUME_WINDOW="3", ALERT_COOLDOWN_SECONDS="900", ALERT_EMAIL_RECIPIENTS="ops@example.test")
    spike = quote_bytes("AAPL", 45, change_percent=6.2)
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic, [
        ("AAPL", quote_bytes("AAPL", 0)), ("AAPL", quote_bytes("AAPL", 15)), ("AAPL", quote_bytes("AAPL", 30)),
        ("AAPL", spike),                                                  # price alert (band 1)
        ("AAPL", quote_bytes("AAPL", 60, change_percent=6.8)),            # same move, same band: nothing
        ("AAPL", quote_bytes("AAPL", 75, volume=9000, change_percent=6.5)),   # volume alert (avg 1000)
        ("AAPL", quote_bytes("AAPL", 90, volume=30000, change_percent=6.4)),  # cooldown
        ("AAPL", spike),                                                  # redelivered quote: nothing new
        ("AAPL", b"garbage"),                                             # the consumer's problem, skipped here
        # Market closed: the day's +9 % repeated after the close raises nothing (nor does volume 0 count).
        ("MSFT", quote_bytes("MSFT", 100, change_percent=9.0, volume=0, source="yahoo", market_open=False)),
    ])
    alerts = ServiceProcess("streaming/alerts.py", env).start()
    try:
        wait_for(lambda: len(inbox.messages) == 4, timeout=60, what="two alerts mailed to two recipients")
        wait_for(lambda: [r["email_status"] for r in alert_rows(stack)] == ["sent", "sent"], timeout=30,
                 what="email status stored")
    finally:
        assert alerts.stop() == 0, alerts.output()
    rows = alert_rows(stack)
    assert [(r["symbol"], r["rule"]) for r in rows] == [("AAPL", "price_change"), ("AAPL", "volume_spike")]
    assert rows[0]["alert_key"] == "AAPL|price_change|2026-01-13T15:30:45.000+00:00"
    assert float(rows[1]["value"]) == 9000
    docs = list(history(stack).find({}, {"_id": 0}).sort("quote_timestamp", 1))
    assert [(d["rule"], d["email_status"]) for d in docs] == [("price_change", "sent"), ("volume_spike", "sent")]
    assert docs[0]["value"] == 6.2 and docs[0]["threshold"] == 5.0 and docs[0]["price"] > 0
    assert sorted(inbox.to("ops@example.test")[0].rcpt_tos + inbox.to("fan@example.test")[0].rcpt_tos) == [
        "fan@example.test", "ops@example.test"]
    assert not inbox.to("quiet@example.test") and not inbox.to("msft-only@example.test")
    assert not inbox.to("unconfirmed@example.test")
    subjects = sorted(m.message["Subject"] for m in inbox.messages)
    assert subjects == ["[Stock alert] AAPL: price move"] * 2 + ["[Stock alert] AAPL: volume spike"] * 2

    # Restart: the band state comes back from alert_state. The same move (still band 1)
    # stays quiet; passing 2x the threshold fires (and shows the restart has read that far).
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic, [
        ("AAPL", quote_bytes("AAPL", 345, change_percent=7.5)),
        ("AAPL", quote_bytes("AAPL", 1245, change_percent=10.5)),
    ])
    again = ServiceProcess("streaming/alerts.py", env, name="alerts-again").start()
    try:
        wait_for(lambda: len(alert_rows(stack)) >= 3, timeout=60, what="the alert after the cooldown")
        wait_for(lambda: len(inbox.messages) == 6, timeout=30, what="its emails")
    finally:
        assert again.stop() == 0, again.output()
    rows = alert_rows(stack)
    assert [r["alert_key"] for r in rows[2:]] == ["AAPL|price_change|2026-01-13T15:50:45.000+00:00"]
    assert history(stack).count_documents({}) == 3


def test_failed_email_keeps_the_alert(stack: Stack, inbox: Inbox) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    inbox.refuse = True
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [("TSLA", quote_bytes("TSLA", 0, change_percent=-9.0))])
    alerts = ServiceProcess("streaming/alerts.py", stack.with_env(ALERT_EMAIL_RECIPIENTS="ops@example.test")).start()
    try:
        wait_for(lambda: [r["email_status"] for r in alert_rows(stack)] == ["failed"], timeout=60,
                 what="the alert stored with its failed email")
    finally:
        assert alerts.stop() == 0, alerts.output()
    row = alert_rows(stack)[0]
    assert row["email_error"] == "message refused (554)"  # a reason, never the address
    doc = history(stack).find_one({})
    assert doc["email_status"] == "failed" and doc["email_error"] == "message refused (554)"
    assert "ops@example.test" in alerts.output()  # the operator's log has the detail
    assert "email failed" in alerts.output()


def test_email_off_still_stores_and_says_so_once(stack: Stack) -> None:
    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
            [("NVDA", quote_bytes("NVDA", 0, change_percent=12.0))])
    alerts = ServiceProcess("streaming/alerts.py", stack.with_env(SMTP_SERVER="", EMAIL_SENDER="")).start()
    try:
        wait_for(lambda: len(alert_rows(stack)) == 1, timeout=60, what="the alert stored")
    finally:
        assert alerts.stop() == 0, alerts.output()
    assert alert_rows(stack)[0]["email_status"] == "disabled"
    assert history(stack).find_one({})["email_status"] == "disabled"
    assert alerts.output().count("email is off") == 1


def test_volume_window_is_refilled_from_mongodb_after_a_restart(stack: Stack, inbox: Inbox) -> None:
    """Quotes stored before the (re)start fill the window, so the first spike after it still alerts."""
    from database.mongo.prices import insert_quotes
    from streaming.schema import parse_message, to_document

    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    db = MongoClient(settings.mongo_uri, tz_aware=True)[settings.mongo_db]
    now = utc_now()
    insert_quotes(db, [to_document(parse_message(quote_bytes("MSFT", i * 15)), now) for i in range(3)])
    produce(settings.kafka_bootstrap_servers, settings.kafka_topic, [("MSFT", quote_bytes("MSFT", 45, volume=9000))])
    alerts = ServiceProcess("streaming/alerts.py", stack.with_env(VOLUME_WINDOW="3", SMTP_SERVER="")).start()
    try:
        wait_for(lambda: len(alert_rows(stack)) == 1, timeout=60, what="the volume alert")
        wait_for(lambda: "volume window of MSFT starts with 3 stored quote(s)" in alerts.output(), timeout=10,
                 what="the refill logged")
    finally:
        assert alerts.stop() == 0, alerts.output()
    row = alert_rows(stack)[0]
    assert (row["symbol"], row["rule"], float(row["value"])) == ("MSFT", "volume_spike", 9000.0)


def test_an_alert_log_from_before_band_and_baseline_still_stores_alerts_and_says_how_to_migrate(stack: Stack) -> None:
    """An install whose MySQL volume predates issue 13: alerts keep flowing (without the
    new columns) and the log names the migration, which then adds them."""
    from database.mysql import SCHEMA_PATH, split_sql

    settings = stack.settings()
    make_topics(settings, settings.kafka_topic)
    conn = mysql_root(stack.env["MYSQL_DATABASE"])
    try:
        with conn.cursor() as cur:
            cur.execute("ALTER TABLE alert_log DROP COLUMN band, DROP COLUMN baseline, DROP COLUMN baseline_kind")
        produce(settings.kafka_bootstrap_servers, settings.kafka_topic,
                [("TSLA", quote_bytes("TSLA", 0, change_percent=-9.0))])
        alerts = ServiceProcess("streaming/alerts.py", stack.with_env(SMTP_SERVER="")).start()
        try:
            wait_for(lambda: len(alert_rows(stack)) == 1, timeout=60, what="the alert stored without the new columns")
        finally:
            assert alerts.stop() == 0, alerts.output()
        assert "run database/migrations/001_alert_log_why.sql" in alerts.output()
        migration = SCHEMA_PATH.parent / "migrations" / "001_alert_log_why.sql"
        with conn.cursor() as cur:
            for stmt in split_sql(migration.read_text()):
                cur.execute(stmt)
            cur.execute("SELECT band FROM alert_log")
            assert [r["band"] for r in cur.fetchall()] == [None]
    finally:
        conn.close()
