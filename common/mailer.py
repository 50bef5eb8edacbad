"""Email: the one SMTP adapter of the system (alerts and the daily digest use it).

SMTP with STARTTLS and login as configured (Gmail: smtp.gmail.com:587 with an
app password, or any server). When SMTP is not configured, mail is written as
.eml files to an outbox folder instead (`write_eml`), so it can still be read.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from common.clock import utc_now
from config import Settings


def build_message(sender: str, to: str | list[str], subject: str, text: str, html: str | None = None) -> EmailMessage:
    """A plain-text email, with an HTML alternative when given."""
    msg = EmailMessage()
    msg["From"] = sender or "stock-analysis-system@localhost"
    msg["To"] = ", ".join(to) if isinstance(to, list) else to
    msg["Subject"] = subject
    # An aware UTC time reads "+0000"; formatdate(localtime=False) wrote "-0000", "zone unknown" (RFC 2822).
    msg["Date"] = format_datetime(utc_now())
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


def write_eml(outbox_dir: str | Path, msg: EmailMessage, filename: str) -> Path:
    """Write the message as an .eml file (what the recipient would have received)."""
    outbox = Path(outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", filename)
    path = outbox / (safe if safe.endswith(".eml") else safe + ".eml")
    path.write_bytes(msg.as_bytes())
    return path


# user@host, also inside <...> or quotes: what an SMTP error text may carry.
_ADDRESS = re.compile(r"[^\s<>\"',;:()\[\]]+@[^\s<>\"',;:()\[\]]+")


def redact_addresses(text: str) -> str:
    """The text with every email address replaced by "<address>"."""
    return _ADDRESS.sub("<address>", text)


def failure_reason(exc: BaseException) -> str:
    """Why a send failed, in words that name no address (stored, and shown without login).

    The server's own text often repeats the recipient ("<ann@x>: Recipient address
    rejected"), so only the kind of failure and the SMTP code are kept.
    """
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = sorted({str(code) for code, _msg in exc.recipients.values()})
        return f"recipient refused ({', '.join(codes)})" if codes else "recipient refused"
    if isinstance(exc, smtplib.SMTPSenderRefused):
        return f"sender refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return f"SMTP login refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPDataError):
        return f"message refused ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"SMTP error ({exc.smtp_code})"
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return "SMTP server closed the connection"
    if isinstance(exc, TimeoutError):
        return "SMTP server timed out"
    if isinstance(exc, OSError):
        return "SMTP server unreachable"
    if isinstance(exc, RuntimeError):
        return "SMTP is not configured"
    return f"send failed ({type(exc).__name__})"
