"""common/mailer.py and articles/email_sender.py against a real SMTP server (aiosmtpd) with login."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

import pytest

from articles.email_sender import write_eml
from common.mailer import SmtpMailer, build_message
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
