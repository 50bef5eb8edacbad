"""What each quote source is doing, as the producer reports it and the web tier says it. Pure: no I/O.

The producer builds one status document each tick (`status_document`) and upserts it into
MongoDB `source_status` (database/mongo/source_status.py: one small document, one write a
tick); /healthz and the index page read it back and say per source, with `describe`:

    yahoo: 7 symbols, last answer 12 s ago
    yahoo: backing off until 14:05 UTC after 429
    simulated: 2 symbols

Ages are worked out when read, so the page says how old the answer is now, not at the tick.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any

# A report older than this means the producer itself is not running (it writes every tick).
STALE_AFTER = timedelta(minutes=5)
# How a source without its key reads: it can never answer, so it is not listed as if it could.
NOT_CONFIGURED = "not configured (no ALPHA_VANTAGE_API_KEY)"
# What each source is, for the page's list of sources.
SOURCE_TEXT = {"yahoo": "yahoo (Yahoo Finance)", "yahoo_stream": "yahoo_stream (Yahoo Finance live stream)"}
# How a refusal kind reads after "after" / "refused"; other kinds read as their name.
WHY = {"rate_limited": "429", "denied": "999", "consent": "the consent page", "html_page": "an HTML page",
       "no_crumb": "no crumb", "invalid_crumb": "Invalid Crumb", "budget_exhausted": "the call budget spent",
       "rate_limit_note": "its per-minute limit", "rate_limit_information": "its daily limit"}


@dataclass
class SourceState:
    """One source of the producer's chain at one tick."""

    name: str
    symbols: list[str] = field(default_factory=list)  # symbols whose latest quote came from it
    last_answer: datetime | None = None  # when it last gave a quote
    backing_off_until: datetime | None = None
    refusal: str | None = None  # the kind of its last refusal, while it is not answering
    detail: str = ""


def status_document(states: list[SourceState], now: datetime) -> dict[str, Any]:
    return {"updated_at": now, "sources": [asdict(s) for s in states]}


def _ago(then: datetime, now: datetime) -> str:
    seconds = max(0.0, (now - then).total_seconds())
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.0f} h"


def describe(entry: Mapping[str, Any], now: datetime) -> str:
    """One source's line."""
    name, symbols = entry["name"], entry.get("symbols") or []
    until, refusal, last = entry.get("backing_off_until"), entry.get("refusal"), entry.get("last_answer")
    why = WHY.get(refusal or "", refusal)
    if until is not None and until > now:
        return f"{name}: backing off until {until:%H:%M} UTC after {why}"
    if refusal == "stream_down":
        since = f", last print {_ago(last, now)} ago" if last is not None else ""
        return f"{name}: disconnected, reconnecting (polling covers its symbols){since}"
    if refusal == "no_key":
        return f"{name}: {NOT_CONFIGURED}"
    count = f"{len(symbols)} symbol{'' if len(symbols) == 1 else 's'}"
    if name == "simulated":
        return f"{name}: {count}"
    answered = f", last answer {_ago(last, now)} ago" if last is not None else ""
    if refusal and not symbols:
        return f"{name}: refused ({why}){answered}"
    if not symbols:
        return f"{name}: no answer yet" if last is None else f"{name}: 0 symbols{answered}"
    return f"{name}: {count}{answered}"


def describe_all(doc: Mapping[str, Any] | None, now: datetime) -> list[str]:
    """Every source's line, and a first line when the producer has not reported (recently)."""
    if doc is None:
        return ["producer: no source status yet (is the producer running?)"]
    lines = [describe(entry, now) for entry in doc.get("sources") or []]
    updated = doc.get("updated_at")
    if updated is not None and now - updated > STALE_AFTER:
        lines.insert(0, f"producer: last report {_ago(updated, now)} ago (is it running?)")
    return lines


def configured_sources(quote_sources: list[str], alpha_vantage_key: bool) -> list[str]:
    """QUOTE_SOURCES as the pages list them: alpha_vantage without its key says so, since it can
    never answer (the producer skips it)."""
    return [f"{name}: {NOT_CONFIGURED}" if name == "alpha_vantage" and not alpha_vantage_key
            else SOURCE_TEXT.get(name, name) for name in quote_sources]
