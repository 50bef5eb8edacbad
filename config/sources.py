"""Where a quote comes from: the one list of source names.

In config/ (the lowest layer) because the settings validate QUOTE_SOURCES against it;
common/quote.py re-exports it next to the Quote type that carries it.
"""

from __future__ import annotations

from enum import StrEnum


class Source(StrEnum):
    """A quote's `source`. A StrEnum, so it compares equal to, and serialises as, its name."""

    YAHOO = "yahoo"
    ALPHA_VANTAGE = "alpha_vantage"
    SIMULATED = "simulated"
    UNKNOWN = "unknown"  # a message without `source` (older producers); never configured

    @classmethod
    def producing(cls) -> tuple[Source, ...]:
        """The sources a producer can use (QUOTE_SOURCES), in the default order."""
        return (cls.YAHOO, cls.ALPHA_VANTAGE, cls.SIMULATED)


QUOTE_SOURCE_NAMES = tuple(s.value for s in Source.producing())
