"""Accounts in tests: finding and following the confirmation link.

Alerts and digests go only to confirmed addresses. A test that registers through
the web app follows the real link from the mail (`confirmation_link`); a test that
creates a user directly in MongoDB confirms it with `confirm_as_the_link_does`,
which is the call the link's view makes.
"""

from __future__ import annotations

import re
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import urlsplit

from pymongo.database import Database

from common.clock import utc_now
from database.mongo.users import confirm_email

LINK = re.compile(r"https?://\S+/confirm/[A-Za-z0-9._-]+")


def body_text(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None, msg
    return str(part.get_content())


def confirmation_link(msg: EmailMessage) -> str:
    """The path of the confirmation link in a mail (for a test client)."""
    found = LINK.search(body_text(msg))
    assert found, body_text(msg)
    return urlsplit(found.group(0)).path


def outbox_mails(folder: str | Path, to: str) -> list[EmailMessage]:
    """The .eml files written to an outbox for one address, oldest first."""
    paths = sorted(Path(folder).glob("*.eml")) if Path(folder).is_dir() else []
    mails = [BytesParser(policy=policy.default).parsebytes(p.read_bytes()) for p in paths]
    return [m for m in mails if isinstance(m, EmailMessage) and m["To"] == to]


def confirm_as_the_link_does(db: Database, user_id: str, email: str) -> None:
    """Confirm a user made directly in MongoDB (email as stored), as following the mailed link would."""
    assert confirm_email(db, user_id, email, utc_now())
