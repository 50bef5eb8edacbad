"""Parsing and checking of request parameters (pure: no Flask, no I/O).

Every function raises BadParameterError(message) on a bad value and UnknownSymbolError for
a symbol the system does not follow; the views turn these into 400 / 404.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from functools import cache

from werkzeug.security import check_password_hash, generate_password_hash

from common.clock import utc_now

DAY_CHOICES = (30, 90)
MAX_DAYS = 365
MAX_INTRADAY_SPAN = timedelta(days=7)
DEFAULT_INTRADAY_SPAN = timedelta(hours=24)
# Times a request may name: far enough from datetime's ends that the window arithmetic
# (end - 24 h, + 1 ms) cannot overflow, and BSON dates hold them.
EARLIEST_TIME = datetime(1970, 1, 1, tzinfo=UTC)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=UTC)
MIN_PASSWORD_LENGTH = 10
PASSWORD_METHOD = "scrypt"


class BadParameterError(ValueError):
    """A parameter has a bad value (HTTP 400)."""


class UnknownSymbolError(LookupError):
    """A symbol the system does not follow (HTTP 404)."""


def parse_symbol(raw: str | None, known: Sequence[str]) -> str:
    symbol = (raw or "").strip().upper()
    if symbol not in known:
        raise UnknownSymbolError(raw or "")
    return symbol


def parse_symbols(raw: str | None, known: Sequence[str]) -> list[str]:
    """Comma list of symbols; empty or missing = all known symbols."""
    if not raw or not raw.strip():
        return list(known)
    return list(dict.fromkeys(parse_symbol(part, known) for part in raw.split(",") if part.strip()))


def parse_int(raw: str | None, name: str, default: int, low: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    if not re.fullmatch(r"\d{1,9}", raw.strip()):
        raise BadParameterError(f"{name} must be a whole number from {low} to {high}")
    value = int(raw)
    if not low <= value <= high:
        raise BadParameterError(f"{name} must be from {low} to {high}")
    return value


def parse_days(raw: str | None, *, default: int = 30, choices: Sequence[int] | None = None) -> int:
    days = parse_int(raw, "days", default, 1, MAX_DAYS)
    if choices is not None and days not in choices:
        raise BadParameterError("days must be one of " + ", ".join(map(str, choices)))
    return days


def parse_time(raw: str, name: str) -> datetime:
    """ISO 8601; a time without zone is UTC. 'Z' is accepted. From 1970 to 2199."""
    try:
        value = datetime.fromisoformat(raw.strip().replace("Z", "+00:00").replace(" ", "+"))
        # astimezone overflows for year 1 with a positive offset (or 9999 with a negative one).
        value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except (ValueError, OverflowError):
        raise BadParameterError(f"{name} must be an ISO 8601 time, e.g. 2025-01-31T14:30:00Z") from None
    if not EARLIEST_TIME <= value < LATEST_TIME:
        raise BadParameterError(f"{name} must be from 1970 to 2199")
    return value


def parse_range(
    start_raw: str | None, end_raw: str | None, minutes_raw: str | None, *, anchor: datetime | None
) -> tuple[datetime, datetime]:
    """An intraday window [start, end).

    `minutes` = that many minutes up to `anchor` (the latest quote, or now);
    start/end = an explicit window (end defaults to anchor + 1 ms, start to
    end - 24 h); nothing = the 24 hours ending at the anchor. At most 7 days.
    """
    anchor = anchor or utc_now()
    after_anchor = anchor + timedelta(milliseconds=1)  # [start, end) must include the anchor quote (BSON keeps ms)
    if minutes_raw not in (None, ""):
        if start_raw or end_raw:
            raise BadParameterError("give either minutes or start/end, not both")
        minutes = parse_int(minutes_raw, "minutes", 60, 1, int(MAX_INTRADAY_SPAN.total_seconds() // 60))
        return after_anchor - timedelta(minutes=minutes), after_anchor
    end = parse_time(end_raw, "end") if end_raw else after_anchor
    start = parse_time(start_raw, "start") if start_raw else end - DEFAULT_INTRADAY_SPAN
    if start >= end:
        raise BadParameterError("start must be before end")
    if end - start > MAX_INTRADAY_SPAN:
        raise BadParameterError("the range may span at most 7 days")
    return start, end


def password_problem(password: str, email: str = "", name: str = "") -> str | None:
    """Why a password is too weak, or None."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"Use at least {MIN_PASSWORD_LENGTH} characters."
    if len(password) > 200:
        return "Use at most 200 characters."
    lowered = password.lower()
    if len(set(lowered)) < 5:
        return "Use more different characters."
    if not (re.search(r"[a-zA-Z]", password) and re.search(r"[^a-zA-Z]", password)):
        return "Mix letters with digits or symbols."
    local = email.split("@", 1)[0].lower()
    for part in (local, name.lower().strip()):
        if len(part) >= 3 and part in lowered:
            return "Do not put your email or name in the password."
    if lowered in COMMON_PASSWORDS:
        return "That password is too common."
    return None


COMMON_PASSWORDS = frozenset({
    "password123", "password1!", "qwerty1234", "1234567890a", "iloveyou123", "welcome123", "letmein123",
    "abc1234567", "passw0rd123", "changeme123", "administrator1", "qwertyuiop1",
})


def hash_password(password: str) -> str:
    return generate_password_hash(password, method=PASSWORD_METHOD)


def verify_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


# A real hash to check against when the email is unknown, so that a failed
# login takes the same time whether or not the account exists.
@cache
def dummy_hash() -> str:
    return generate_password_hash("not-a-real-password-0", method=PASSWORD_METHOD)
