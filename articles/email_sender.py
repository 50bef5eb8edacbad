"""The digest's mail: sent through the shared SMTP adapter (common/mailer.py);
when SMTP is not configured the digest writes .eml files instead (`write_eml`,
shared with the web app's confirmation mail), so the mail a user would get can
still be read."""

from common.mailer import write_eml

__all__ = ["write_eml"]
