"""The quote and the daily bar: the one place their shape is written (pure, no I/O).

A quote travels producer → Kafka → consumer → MongoDB → batch (Parquet archive, daily
rows) → web, so it lives here, below every role. Each edge has one conversion:

    Kafka message   Quote.to_message() → JSON body; streaming/schema.py validates a
                    message back into a Quote (the bounds and reasons live there)
    MongoDB         Quote.to_document(processed_at): the quote plus price_change_pct
                    (move from the open) and processed_at; Quote.from_document back
    Parquet         ARCHIVE_FIELDS: the document's fields but `symbol` (the partition);
                    batch/archive.py maps them to Arrow types
    page JSON       QUOTE_FIELDS: what flask_web_app/present.py sends the pages

A Quote is a frozen dataclass that also reads as a mapping (`quote["price"]`,
`dict(quote)`), so code written against the stored document reads a Quote the same way.
The daily bar (`DailyBar`) is one daily_aggregates row: from quotes (batch/metrics.py)
or from a backfilled daily candle (batch/backfill.py).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

from config.sources import QUOTE_SOURCE_NAMES, SOURCE_NAMES, Source

__all__ = ["ARCHIVE_FIELDS", "DOCUMENT_FIELDS", "MIXED", "QUOTE_FIELDS", "QUOTE_SOURCE_NAMES", "REAL",
           "REQUIRED_FIELDS", "SOURCE_NAMES", "DailyBar", "Quote", "Source", "format_timestamp"]


def format_timestamp(ts: datetime) -> str:
    """UTC, ISO 8601 with offset and milliseconds: '2026-01-13T15:30:00.000+00:00'."""
    return ts.astimezone(UTC).isoformat(timespec="milliseconds")


@dataclass(frozen=True, eq=False)
class Quote(Mapping[str, Any]):
    """One symbol's price at one instant, as every role sees it.

    market_open: was the regular session open at `timestamp` (None: the producer did
    not say). A closed-market quote repeats the last price with volume 0.
    """

    symbol: str
    timestamp: datetime  # aware, UTC
    price: float
    volume: int  # shares traded in the interval the quote covers
    open: float
    high: float
    low: float
    change_percent: float  # from the previous close, percent
    previous_close: float | None = None
    source: Source = Source.UNKNOWN
    market_open: bool | None = None

    # --- reads as a mapping (eq=False: Mapping's __eq__ compares with dicts too)
    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_SET:
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return iter(QUOTE_FIELDS)

    def __len__(self) -> int:
        return len(QUOTE_FIELDS)

    __hash__ = None  # type: ignore[assignment] - equal to a dict, so not hashable either

    # --- the edges
    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Quote:
        """A stored document (or a Parquet row, or any mapping of the fields) → Quote.
        The document's own additions (price_change_pct, processed_at, _id) are left out."""
        source = doc.get("source")
        return cls(
            symbol=doc["symbol"], timestamp=doc["timestamp"], price=doc["price"], volume=doc["volume"],
            open=doc["open"], high=doc["high"], low=doc["low"], change_percent=doc["change_percent"],
            previous_close=doc.get("previous_close"), source=Source(source) if source else Source.UNKNOWN,
            market_open=doc.get("market_open"),
        )

    def replace(self, **changes: Any) -> Quote:
        return dataclasses.replace(self, **changes)

    def to_message(self) -> dict[str, Any]:
        """The JSON object sent to Kafka (streaming/schema.py: to_message encodes it)."""
        body = self.as_dict()
        body["timestamp"] = format_timestamp(self.timestamp)
        return body

    def move_from_open(self) -> float:
        """price_change_pct: the move from the session's open, percent, 4 places."""
        return round((self.price - self.open) / self.open * 100, 4)

    def to_document(self, processed_at: datetime) -> dict[str, Any]:
        """The realtime_prices document: the quote plus price_change_pct and processed_at."""
        doc = self.as_dict()
        doc["price_change_pct"] = self.move_from_open()
        doc["processed_at"] = processed_at
        return doc

    def as_dict(self) -> dict[str, Any]:
        """The fields as plain values (source as its name: BSON and JSON want a str)."""
        values = {name: getattr(self, name) for name in QUOTE_FIELDS}
        values["source"] = str(self.source)
        return values


QUOTE_FIELDS = tuple(f.name for f in dataclasses.fields(Quote))
# What every message must carry (the others default: previous_close, source, market_open).
REQUIRED_FIELDS = tuple(f.name for f in dataclasses.fields(Quote) if f.default is dataclasses.MISSING)
_FIELD_SET = frozenset(QUOTE_FIELDS)
# What the consumer stores: the quote and what it adds.
DOCUMENT_FIELDS = (*QUOTE_FIELDS, "price_change_pct", "processed_at")
# A Parquet archive row: `symbol` is the Hive partition (symbol=AAPL/), not a column.
ARCHIVE_FIELDS = tuple(f for f in DOCUMENT_FIELDS if f != "symbol")


# A daily row's source: all its quotes real, all simulated, or both.
REAL, MIXED = "real", "mixed"


@dataclass(frozen=True)
class DailyBar:
    """One daily_aggregates row (symbol, market day): the columns of database/mysql_schema.sql.

    source: REAL, Source.SIMULATED or MIXED (batch/metrics.source_label)."""

    symbol: str
    date: date
    open_price: float
    close_price: float
    high_price: float
    low_price: float
    avg_price: float
    total_volume: int
    avg_volume: float
    volatility: float | None
    daily_change_pct: float | None
    sma_20: float | None
    rsi_14: float | None
    tick_count: int
    source: str
    # Issue 23 (batch/indicators.py): EMA-20, Bollinger (20, 2) and MACD (12, 26, 9); None
    # until enough closes exist. Defaulted so the row of a day is built before its history.
    ema_20: float | None = None
    bb_middle: float | None = None
    bb_upper: float | None = None
    bb_lower: float | None = None
    macd: float | None = None
    macd_signal: float | None = None
    macd_hist: float | None = None

    def as_row(self) -> dict[str, Any]:
        """The row for database/mysql/aggregates.py's writes."""
        return dataclasses.asdict(self)
