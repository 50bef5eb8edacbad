"""One quote through every edge (pure): message → Quote → MongoDB document → Parquet row →
page JSON, for each source and for a market-closed quote. A field dropped or changed on
any edge fails here; so does a Quote field the archive has no column for."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pyarrow as pa
import pytest

from batch.archive import SCHEMA, merge_tables, parquet_to_rows, parquet_to_table, rows_to_table, table_to_parquet
from batch.metrics import source_label
from common.quote import ARCHIVE_FIELDS, DOCUMENT_FIELDS, QUOTE_FIELDS, Quote, Source
from config.settings import QUOTE_SOURCE_NAMES, Settings
from flask_web_app.present import quote_view
from streaming.schema import SOURCES, parse_message, to_document, to_message

TS = datetime(2026, 1, 13, 15, 30, 0, 125000, tzinfo=UTC)
PROCESSED = TS + timedelta(seconds=1)


def a_quote(source: Source, market_open: bool) -> Quote:
    # Every field set to a value no other field has, so a swap shows too.
    return Quote(symbol="BRK.B", timestamp=TS, price=261.05, volume=287051 if market_open else 0, open=260.22,
                 high=261.35, low=260.19, change_percent=0.32, previous_close=260.21, source=source,
                 market_open=market_open)


CASES = [pytest.param(a_quote(s, True), id=str(s)) for s in Source.configurable()]
CASES.append(pytest.param(a_quote(Source.YAHOO, False), id="market-closed"))


@pytest.mark.parametrize("quote", CASES)
def test_a_quote_keeps_every_field_on_every_edge(quote: Quote) -> None:
    # Kafka: the producer's bytes, validated back by the consumer.
    message = to_message(quote)
    assert set(json.loads(message)) == set(QUOTE_FIELDS)
    received = parse_message(message, now=TS)
    assert isinstance(received, Quote) and received == quote and received.source is quote.source

    # MongoDB: the quote plus what the consumer adds.
    doc = to_document(received, PROCESSED)
    assert set(doc) == set(DOCUMENT_FIELDS)
    assert {k: doc[k] for k in QUOTE_FIELDS} == quote.as_dict()
    assert doc["price_change_pct"] == round((261.05 - 260.22) / 260.22 * 100, 4) and doc["processed_at"] == PROCESSED
    assert Quote.from_document(doc) == quote

    # Parquet: a real column for every field (nothing left to `extra`), symbol from the partition.
    table = rows_to_table([doc])
    assert [n for n in table.column_names if n != "extra"] == list(ARCHIVE_FIELDS)
    assert table.column("extra").to_pylist() == [None]
    [row] = parquet_to_rows(table_to_parquet(table), quote.symbol)
    assert row == doc

    # The pages: every quote field, JSON-ready.
    view = quote_view(row)
    assert set(view) == set(QUOTE_FIELDS)
    assert json.loads(json.dumps(view)) == view
    assert view["timestamp"] == "2026-01-13T15:30:00.125000Z"
    assert {k: v for k, v in view.items() if k != "timestamp"} == {
        k: v for k, v in quote.as_dict().items() if k != "timestamp"}
    assert view["market_open"] is quote.market_open and view["source"] == str(quote.source)


def test_one_list_of_source_names() -> None:
    assert QUOTE_SOURCE_NAMES == ("yahoo", "alpha_vantage", "simulated")  # the default chain
    assert ("yahoo_stream", *QUOTE_SOURCE_NAMES) == SOURCES  # the stream is opt-in
    assert Settings(_env_file=None).quote_sources == list(QUOTE_SOURCE_NAMES)  # type: ignore[call-arg]
    assert Settings(_env_file=None, quote_sources="yahoo_stream,yahoo,simulated").quote_sources == [  # type: ignore[call-arg]
        "yahoo_stream", "yahoo", "simulated"]
    assert source_label([Source.YAHOO, Source.ALPHA_VANTAGE, Source.YAHOO_STREAM]) == "real"
    assert source_label([Source.SIMULATED]) == "simulated"
    assert source_label([Source.YAHOO, Source.SIMULATED]) == "mixed"


def _old_archive_table(docs: list[dict]) -> pa.Table:
    """A file as the archive wrote it before market_open had a column: the flag in `extra`."""
    old_schema = pa.schema([f for f in SCHEMA if f.name != "market_open"])
    columns: dict[str, list] = {name: [] for name in old_schema.names}
    for doc in docs:
        for name in old_schema.names[:-1]:
            columns[name].append(doc.get(name))
        columns["extra"].append(json.dumps({"market_open": doc["market_open"]}))
    return pa.Table.from_pydict(columns, schema=old_schema)


def test_archive_files_without_the_market_open_column_still_read_and_merge() -> None:
    docs = [to_document(a_quote(Source.YAHOO, True).replace(timestamp=TS + timedelta(minutes=i)), PROCESSED)
            for i in range(2)]
    old = parquet_to_table(table_to_parquet(_old_archive_table(docs)))
    assert "market_open" not in old.column_names
    # Read as it is: the flag comes back from `extra`.
    assert parquet_to_rows(table_to_parquet(old), "BRK.B") == docs
    # Merged with a newer day's write: one schema, the flag in its column, `extra` empty.
    closed = to_document(a_quote(Source.YAHOO, False).replace(timestamp=TS + timedelta(minutes=5)), PROCESSED)
    merged = merge_tables(old, rows_to_table([closed]))
    assert merged.schema == SCHEMA
    assert merged.column("market_open").to_pylist() == [True, True, False]
    assert merged.column("extra").to_pylist() == [None, None, None]
    assert parquet_to_rows(table_to_parquet(merged), "BRK.B") == [*docs, closed]
