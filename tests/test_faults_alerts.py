"""Issue 8 faults of the alert path, with producer, consumer and alerts running together:
MySQL stopped while alerts fire (a private mariadbd, never the machine's shared
server), and an SMTP server that refuses every message. The alerts-only versions
are in tests/test_alerts_service.py."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from common.clock import utc_now
from scripts.servers import OsmemSearch, SecantusMongo, TansuBroker
from scripts.smtp_inbox import Inbox, SmtpServer
from scripts.waiting import wait_for
from tests.support.pipeline import pipeline
from tests.support.servers import PrivateMariaDB
from tests.test_faults_streaming import all_running, hold, report, spike

pytestmark = pytest.mark.slow

OPS = "ops@example.test"


@pytest.mark.skipif(not PrivateMariaDB.available(), reason="mariadbd / mariadb-install-db not installed")
def test_mysql_down_while_alerts_fire_none_lost_none_doubled(kafka: TansuBroker, mongo: SecantusMongo,
                                                             es: OsmemSearch, smtp: SmtpServer, inbox: Inbox) -> None:
    mysql = PrivateMariaDB().start()
    try:
        creds = {"host": "127.0.0.1", "port": mysql.port, "user": mysql.user, "password": mysql.password}
        with pipeline(mysql=creds, database=f"alerts_{uuid.uuid4().hex[:8]}", kafka=kafka, mongo=mongo, es=es,
                      smtp=smtp, env={"ALERT_EMAIL_RECIPIENTS": OPS}) as (stack, probe):
            first = spike(probe, "AAPL")
            wait_for(lambda: [r["email_status"] for r in probe.alert_rows()] == ["sent"], timeout=60,
                     what="the first alert stored and mailed")
            mysql.stop()
            down_at = time.monotonic()
            during = [spike(probe, "MSFT"), spike(probe, "TSLA", change=-30.0)]
            # The alerts service notices (and keeps retrying); the quotes keep flowing meanwhile.
            wait_for(lambda: "storing alert" in stack.processes["alerts"].output(), timeout=60,
                     what="the alerts service retrying its MySQL write")
            stored = probe.stored_count()
            hold(5.0, probe)
            assert probe.stored_count() > stored, "the consumer stalled with MySQL"
            mysql.start()
            outage = time.monotonic() - down_at
            up_at = time.monotonic()
            wait_for(lambda: len(probe.alert_rows()) == 3
                     and all(r["email_status"] == "sent" for r in probe.alert_rows()),
                     timeout=90, what="the alerts of the outage in MySQL, mailed")
            recovered = time.monotonic() - up_at
            # The same quote again (a redelivery) adds nothing.
            probe.produce([(during[0][0], _same_quote(during[0]))])
            after = spike(probe, "NVDA", when=utc_now() + timedelta(seconds=1))
            wait_for(lambda: len(probe.alert_rows()) == 4, timeout=60, what="an alert after the outage")
            wait_for(lambda: len(inbox.messages) == 4, timeout=60, what="its email")
            all_running(probe)
            delivered, keys = probe.settle_and_account(extra={first, *during, after})
            rows = probe.alert_rows()
            history = probe.alert_history()
    finally:
        mysql.cleanup()
    assert sorted(r["symbol"] for r in rows) == ["AAPL", "MSFT", "NVDA", "TSLA"]
    assert len({r["alert_key"] for r in rows}) == 4
    assert sorted(d["alert_key"] for d in history) == sorted(r["alert_key"] for r in rows)
    assert all(d["email_status"] == "sent" for d in history)
    subjects = sorted(m.message["Subject"] for m in inbox.messages)
    assert len(subjects) == 4 and len(set(subjects)) == 4, subjects  # one email per alert, none twice
    report("MySQL outage", outage_s=outage, seconds_to_catch_up=recovered, alerts=len(rows), delivered=delivered)


def _same_quote(key: tuple[str, datetime]) -> bytes:
    import json

    symbol, ts = key
    return json.dumps({"symbol": symbol, "timestamp": ts.isoformat(), "price": 125.0, "volume": 1000, "open": 100.0,
                       "high": 126.0, "low": 99.0, "previous_close": 100.0, "change_percent": 25.0,
                       "source": "simulated"}).encode()


def test_smtp_refusing_alerts_stored_with_failed_status(kafka: TansuBroker, mongo: SecantusMongo, es: OsmemSearch,
                                                        smtp: SmtpServer, inbox: Inbox, mysql_server: dict,
                                                        mysql_db: str) -> None:
    inbox.refuse = True
    with pipeline(mysql=mysql_server, database=mysql_db, kafka=kafka, mongo=mongo, es=es, smtp=smtp,
                  env={"ALERT_EMAIL_RECIPIENTS": OPS}) as (stack, probe):
        keys = [spike(probe, "GOOGL"), spike(probe, "AMZN", change=-22.0)]
        wait_for(lambda: [r["email_status"] for r in probe.alert_rows()] == ["failed", "failed"], timeout=60,
                 what="both alerts stored with a failed email")
        all_running(probe)
        rows = probe.alert_rows()
        history = probe.alert_history()
        log = stack.processes["alerts"].output()
        stored = probe.stored_count()
        wait_for(lambda: probe.stored_count() > stored, timeout=30, what="quotes still flowing")
    assert all("554" in (r["email_error"] or "") for r in rows)
    assert [d["email_status"] for d in history] == ["failed", "failed"]
    assert all("554" in d["email_error"] for d in history)
    assert {(d["symbol"], d["quote_timestamp"].replace(tzinfo=UTC) if d["quote_timestamp"].tzinfo is None
             else d["quote_timestamp"]) for d in history} == set(keys)
    assert log.count("email failed") == 2 and inbox.messages == []
