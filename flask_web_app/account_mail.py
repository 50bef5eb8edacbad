"""The account mails: the confirmation link, and the notice to an address that is
already registered (so the registration page itself never tells).

A link carries the user id and address, signed with the app's secret key and dated
(itsdangerous): it cannot be forged, and it expires after CONFIRM_MAX_AGE. Mail goes
through the shared SMTP adapter; without SMTP it is written to the outbox folder as
.eml, as the digest is.
"""

from __future__ import annotations

from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

from itsdangerous import BadSignature, URLSafeTimedSerializer

from common.mailer import SmtpMailer, build_message, write_eml

CONFIRM_MAX_AGE = timedelta(days=2)
SALT = "confirm-email"


def make_token(secret: str, user_id: str, email: str) -> str:
    return URLSafeTimedSerializer(secret, salt=SALT).dumps({"uid": user_id, "email": email})


def read_token(secret: str, token: str) -> tuple[str, str] | None:
    """(user id, address) of a valid, unexpired link token; None otherwise."""
    try:
        data = URLSafeTimedSerializer(secret, salt=SALT).loads(token, max_age=int(CONFIRM_MAX_AGE.total_seconds()))
    except BadSignature:  # SignatureExpired is one too
        return None
    if not (isinstance(data, dict) and isinstance(data.get("uid"), str) and isinstance(data.get("email"), str)):
        return None
    return data["uid"], data["email"]


def confirmation_message(sender: str, to: str, name: str, link: str) -> EmailMessage:
    hours = int(CONFIRM_MAX_AGE.total_seconds() // 3600)
    return build_message(sender, to, "Confirm your email for the Stock Analysis System", (
        f"Hello {name},\n\n"
        "Someone (hopefully you) created an account with this address. To receive the alerts and\n"
        f"the daily digest you chose, confirm the address within {hours} hours:\n\n{link}\n\n"
        "If it was not you, ignore this mail: nothing is sent to an address nobody confirmed.\n"))


def already_registered_message(sender: str, to: str, login_link: str) -> EmailMessage:
    return build_message(sender, to, "Someone tried to register your email at the Stock Analysis System", (
        "Someone (perhaps you) tried to create an account with this address, which already has one.\n"
        f"No new account was made. To use yours, log in:\n\n{login_link}\n\n"
        "If it was not you, you need not do anything.\n"))


def deliver(mailer: SmtpMailer, outbox_dir: str | Path, msg: EmailMessage, filename: str) -> str:
    """Send, or write to the outbox when SMTP is not configured; returns where it went.
    Raises smtplib.SMTPException / OSError when sending fails."""
    if mailer.enabled:
        mailer.send(msg)
        return "sent"
    return str(write_eml(outbox_dir, msg, filename).resolve())
