"""A real SMTP server (aiosmtpd, a dev dependency) that keeps what it receives: the
local stack's mail server and the tests' inbox."""

from __future__ import annotations

import email
import email.policy
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from scripts.waiting import free_port


@dataclass
class ReceivedMail:
    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    messages: list[ReceivedMail] = field(default_factory=list)
    refuse: bool = False  # answer 554 to every message (the "SMTP refusing" fault)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()

    def to(self, address: str) -> list[ReceivedMail]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd API
        if self.inbox.refuse:
            return "554 5.7.1 Message refused by test server"
        msg = email.message_from_bytes(envelope.original_content or envelope.content, policy=email.policy.default)
        with self.inbox.lock:
            self.inbox.messages.append(ReceivedMail(envelope.mail_from, list(envelope.rcpt_tos), msg))  # type: ignore[arg-type]
        return "250 OK"


def _authenticator(user: str, password: str):  # type: ignore[no-untyped-def]
    def check(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> AuthResult:
        ok = (isinstance(auth_data, LoginPassword) and auth_data.login.decode() == user
              and auth_data.password.decode() == password)
        return AuthResult(success=ok, handled=False)

    return check


class SmtpServer:
    """aiosmtpd on a free port. Accepts AUTH LOGIN/PLAIN with the given credentials over plain TCP."""

    def __init__(self, user: str = "alerts@example.test", password: str = "app-password") -> None:
        self.port = free_port()
        self.user = user
        self.password = password
        self.inbox = Inbox()
        self.controller = Controller(
            _Handler(self.inbox), hostname="127.0.0.1", port=self.port,
            authenticator=_authenticator(user, password), auth_require_tls=False,
        )

    def start(self) -> SmtpServer:
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()
