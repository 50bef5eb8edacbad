"""Where a quote comes from: the one list of source names.

In config/ (the lowest layer) because the settings validate QUOTE_SOURCES against it;
common/quote.py re-exports it next to the Quote type that carries it.
"""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """A quote's `source`. A StrEnum, so it compares equal to, and serialises as, its name."""

    YAHOO = "yahoo"
    YAHOO_STREAM = "yahoo_stream"  # Yahoo's websocket streamer: one quote per trade print, coalesced
    ALPHA_VANTAGE = "alpha_vantage"
    SIMULATED = "simulated"
    UNKNOWN = "unknown"  # a message without `source` (older producers); never configured

    @classmethod
    def producing(cls) -> tuple[Source, ...]:
        """The sources a producer can use (QUOTE_SOURCES), in the default order."""
        return (cls.YAHOO, cls.ALPHA_VANTAGE, cls.SIMULATED)

    @classmethod
    def configurable(cls) -> tuple[Source, ...]:
        """Every name QUOTE_SOURCES accepts: the default chain plus the opt-in stream."""
        return (cls.YAHOO_STREAM, *cls.producing())


# The default QUOTE_SOURCES (the stream is opt-in: README "The live stream").
QUOTE_SOURCE_NAMES = tuple(s.value for s in Source.producing())
# What a quote's `source` may say, and what QUOTE_SOURCES accepts.
SOURCE_NAMES = tuple(s.value for s in Source.configurable())
