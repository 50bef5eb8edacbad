"""Email: the one SMTP adapter of the system (alerts and the daily digest use it).

SMTP with STARTTLS and login as configured (Gmail: smtp.gmail.com:587 with an
app password, or any server).
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from config import Settings


def build_message(sender: str, to: str | list[str], subject: str, text: str, html: str | None = None) -> EmailMessage:
    """A plain-text email, with an HTML alternative when given."""
    msg = EmailMessage()
    msg["From"] = sender or "stock-analysis-system@localhost"
    msg["To"] = ", ".join(to) if isinstance(to, list) else to
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = make_msgid(domain="stock-analysis-system")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    return msg


class SmtpMailer:
    def __init__(self, settings: Settings, timeout: float = 20.0) -> None:
        self.server = settings.smtp_server
        self.port = settings.smtp_port
        self.starttls = settings.smtp_starttls
        self.sender = settings.email_sender
        self.password = settings.email_password
        self.timeout = timeout

    @property
    def enabled(self) -> bool:
        return bool(self.server and self.sender)

    def send(self, msg: EmailMessage) -> None:
        """Deliver one message; raises smtplib.SMTPException / OSError on failure."""
        if not self.enabled:
            raise RuntimeError("SMTP is not configured (SMTP_SERVER and EMAIL_SENDER)")
        with smtplib.SMTP(self.server, self.port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.password:
                smtp.login(self.sender, self.password)
            smtp.send_message(msg)
