"""common/mailer.py and articles/email_sender.py against a real SMTP server (aiosmtpd) with login."""

from __future__ import annotations

import email
import email.policy
import smtplib
from datetime import timedelta
from pathlib import Path

import pytest

from articles.email_sender import write_eml
from common.mailer import SmtpMailer, build_message, failure_reason, redact_addresses
from scripts.smtp_inbox import Inbox
from tests.conftest import Stack


def test_send_with_login_delivers_text_and_html(stack: Stack, inbox: Inbox) -> None:
    settings = stack.settings()
    mailer = SmtpMailer(settings)
    assert mailer.enabled
    mailer.send(build_message(settings.email_sender, ["a@example.com", "b@example.com"], "Hello", "plain body",
                              "<p>html body</p>"))
    assert len(inbox.messages) == 1
    got = inbox.messages[0]
    assert got.rcpt_tos == ["a@example.com", "b@example.com"]
    assert got.message["Subject"] == "Hello"
    assert got.message.get_body(("plain",)).get_content().strip() == "plain body"
    assert "<p>html body</p>" in got.message.get_body(("html",)).get_content()
    # A real zone: "-0000" means "zone unknown" (RFC 2822) and parses to a naive time.
    assert str(got.message["Date"]).endswith(" +0000")
    assert got.message["Date"].datetime.utcoffset() == timedelta(0)


def test_wrong_password_and_refusal_raise(stack: Stack, inbox: Inbox) -> None:
    import smtplib

    with pytest.raises(smtplib.SMTPAuthenticationError):
        SmtpMailer(stack.settings(email_password="wrong")).send(
            build_message("x@example.com", "a@example.com", "s", "t"))
    inbox.refuse = True
    with pytest.raises(smtplib.SMTPDataError):
        SmtpMailer(stack.settings()).send(build_message("x@example.com", "a@example.com", "s", "t"))
    assert inbox.messages == []


def test_disabled_without_server_and_eml_written(tmp_path: Path, stack: Stack) -> None:
    mailer = SmtpMailer(stack.settings(smtp_server="", email_sender=""))
    assert not mailer.enabled
    msg = build_message("", "user@example.com", "Digest", "text", "<b>html</b>")
    path = write_eml(tmp_path / "outbox", msg, "2026-01-13 user@example.com")
    assert path.name == "2026-01-13_user@example.com.eml"
    parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
    assert parsed["To"] == "user@example.com" and "<b>html</b>" in parsed.get_body(("html",)).get_content()


@pytest.mark.parametrize(("exc", "reason"), [
    (smtplib.SMTPRecipientsRefused({"ann@example.com": (550, b"5.1.1 <ann@example.com>: unknown user")}),
     "recipient refused (550)"),
    (smtplib.SMTPDataError(554, b"<ann@example.com> rejected"), "message refused (554)"),
    (smtplib.SMTPSenderRefused(553, b"no", "ops@example.com"), "sender refused (553)"),
    (smtplib.SMTPAuthenticationError(535, b"bad credentials"), "SMTP login refused (535)"),
    (smtplib.SMTPServerDisconnected("Connection unexpectedly closed"), "SMTP server closed the connection"),
    (TimeoutError("timed out"), "SMTP server timed out"),
    (ConnectionRefusedError(111, "Connection refused"), "SMTP server unreachable"),
])
def test_failure_reason_names_no_address(exc: Exception, reason: str) -> None:
    assert failure_reason(exc) == reason
    assert "@" not in failure_reason(exc)


def test_redact_addresses() -> None:
    text = "ann@example.com: (550, b'5.1.1 <ann@example.com>: Recipient address rejected'); \"bob.b+x@mail.example\""
    assert redact_addresses(text) == ("<address>: (550, b'5.1.1 <<address>>: Recipient address rejected'); "
                                      '"<address>"')
