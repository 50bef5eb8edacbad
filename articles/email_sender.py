"""The digest's mail: sent through the shared SMTP adapter (common/mailer.py);
when SMTP is not configured the digest writes .eml files instead (`write_eml`),
so the mail a user would get can still be read."""

from __future__ import annotations

import re
from email.message import EmailMessage
from pathlib import Path


def write_eml(outbox_dir: str | Path, msg: EmailMessage, filename: str) -> Path:
    """Write the message as an .eml file (what the recipient would have received)."""
    outbox = Path(outbox_dir)
    outbox.mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9._@-]+", "_", filename)
    path = outbox / (safe if safe.endswith(".eml") else safe + ".eml")
    path.write_bytes(msg.as_bytes())
    return path
