"""How an outside source says no: one kind enum and one exception base for every source.

Each `Refusal` says how far it reaches (`Ends`): only this call, the rest of this tick
or run (asking again for the next symbol only spends more), or the day's budget. The
producer, the backfill and the news job read that instead of listing kinds.
Pure: no I/O.
"""

from __future__ import annotations

import enum


class Ends(enum.IntEnum):
    """How far a refusal reaches, each level including the ones before it."""

    CALL = 0  # this call only: the next symbol may well work
    TICK = 1  # the rest of this tick (or news run): the budget or rate limit is spent for now
    DAY = 2  # the day's budget: nothing can be asked before tomorrow (or ever, without a key)


class Refusal(enum.StrEnum):
    """The kinds of "no", as the text logs and tests read (`Refusal.NO_KEY == "no_key"`)."""

    ends: Ends

    def __new__(cls, value: str, ends: Ends = Ends.CALL) -> Refusal:
        member = str.__new__(cls, value)
        member._value_ = value
        member.ends = ends
        return member

    # Any HTTP source.
    HTTP_ERROR = "http_error"
    TIMEOUT = "timeout"
    BAD_PAYLOAD = "bad_payload"
    # Alpha Vantage (all answered with HTTP 200).
    NO_KEY = "no_key", Ends.DAY
    BUDGET_EXHAUSTED = "budget_exhausted", Ends.TICK  # our shared budget: the minute's share may refill
    RATE_LIMIT_NOTE = "rate_limit_note", Ends.TICK  # the per-minute throttle
    RATE_LIMIT_INFORMATION = "rate_limit_information", Ends.DAY  # the free tier's daily cap
    ERROR_MESSAGE = "error_message"
    EMPTY_QUOTE = "empty_quote"
    # Yahoo Finance.
    RATE_LIMITED = "rate_limited"  # HTTP 429; the client backs off, which the next calls see as BACKING_OFF
    DENIED = "denied"  # HTTP 999
    HTML_PAGE = "html_page"
    CONSENT = "consent"  # the cookie request landed on Yahoo's consent form (EU addresses)
    NO_CRUMB = "no_crumb"  # no cookie, or no usable crumb from /v1/test/getcrumb
    INVALID_CRUMB = "invalid_crumb"  # 401 "Invalid Crumb" twice in a row
    UNREACHABLE = "unreachable"
    UNKNOWN_SYMBOL = "unknown_symbol"
    BACKING_OFF = "backing_off"  # refused without asking, until the backoff ends
    SYMBOL_SKIPPED = "symbol_skipped"  # a symbol the source did not know, not asked again for a while

    @property
    def ends_tick(self) -> bool:
        """No further call of this source in this tick (or news run)."""
        return self.ends >= Ends.TICK

    @property
    def ends_day(self) -> bool:
        """No further call of this source today."""
        return self.ends >= Ends.DAY


class SourceRefused(Exception):  # noqa: N818 - it is a refusal, not a programming error
    """A source said no (or we are not asking it now). `kind` is a Refusal; `detail` says more."""

    def __init__(self, kind: Refusal | str, detail: str = "") -> None:
        self.kind = Refusal(kind)
        self.detail = detail
        super().__init__(f"{self.kind}: {detail}" if detail else str(self.kind))
