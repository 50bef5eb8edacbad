"""Message schema (pure): what the consumer accepts, what it rejects and why."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from streaming.schema import InvalidQuote, parse_message, to_document, to_message

DESIGN_EXAMPLE = {"symbol": "AAPL", "timestamp": "2026-01-13T15:30:00", "price": 261.05, "volume": 287051,
                  "open": 260.22, "high": 261.35, "low": 260.19, "change_percent": 0.32}


def test_design_example_is_accepted_with_naive_timestamp_as_utc() -> None:
    quote = parse_message(json.dumps(DESIGN_EXAMPLE).encode())
    assert quote["timestamp"] == datetime(2026, 1, 13, 15, 30, tzinfo=UTC)
    assert quote["price"] == 261.05 and quote["volume"] == 287051 and quote["source"] == "unknown"
    doc = to_document(quote, datetime(2026, 1, 13, 15, 30, 1, tzinfo=UTC))
    assert doc["price_change_pct"] == pytest.approx((261.05 - 260.22) / 260.22 * 100, abs=1e-4)
    assert doc["processed_at"] == datetime(2026, 1, 13, 15, 30, 1, tzinfo=UTC)


def test_offset_is_converted_to_utc_and_truncated_to_ms() -> None:
    msg = dict(DESIGN_EXAMPLE, timestamp="2026-01-13T10:30:00.123456-05:00", source="simulated")
    quote = parse_message(json.dumps(msg).encode())
    assert quote["timestamp"] == datetime(2026, 1, 13, 15, 30, 0, 123000, tzinfo=UTC)


def test_producer_message_round_trips() -> None:
    quote = {"symbol": "MSFT", "timestamp": datetime(2026, 1, 13, 15, 30, 0, 5000, tzinfo=UTC), "price": 480.5,
             "volume": 1200, "open": 479.0, "high": 481.0, "low": 478.5, "previous_close": 478.0,
             "change_percent": 0.523, "source": "alpha_vantage", "market_open": True}
    raw = to_message(quote)
    assert json.loads(raw)["timestamp"] == "2026-01-13T15:30:00.005+00:00"
    assert parse_message(raw) == quote


@pytest.mark.parametrize(("raw", "reason"), [
    (b"not json", "not JSON"),
    (b"\xff\xfe", "not UTF-8"),
    (b"[1, 2]", "not a JSON object"),
    (json.dumps({k: v for k, v in DESIGN_EXAMPLE.items() if k != "price"}).encode(), "missing field(s): price"),
    (json.dumps(dict(DESIGN_EXAMPLE, price=-1.0)).encode(), "price must be positive"),
    (json.dumps(dict(DESIGN_EXAMPLE, price="261")).encode(), "price is not a number"),
    (json.dumps(dict(DESIGN_EXAMPLE, timestamp="yesterday")).encode(), "timestamp does not parse"),
    (json.dumps(dict(DESIGN_EXAMPLE, volume=1.5)).encode(), "volume must be a whole number"),
    (json.dumps(dict(DESIGN_EXAMPLE, high=1.0)).encode(), "is below low"),
    (json.dumps(dict(DESIGN_EXAMPLE, symbol="not a ticker")).encode(), "symbol is not a ticker"),
    (json.dumps(dict(DESIGN_EXAMPLE, source="guess")).encode(),
     "source must be one of yahoo_stream, yahoo, alpha_vantage, simulated"),
    (json.dumps(dict(DESIGN_EXAMPLE, market_open="yes")).encode(), "market_open must be true or false: 'yes'"),
    (None, "empty message"),
])
def test_malformed_messages_are_rejected_with_a_reason(raw: bytes | None, reason: str) -> None:
    with pytest.raises(InvalidQuote) as err:
        parse_message(raw)
    assert reason in str(err.value)


def test_yahoo_quotes_and_the_market_flag_are_kept() -> None:
    quote = parse_message(json.dumps(dict(DESIGN_EXAMPLE, source="yahoo", market_open=False)).encode())
    assert quote["source"] == "yahoo" and quote["market_open"] is False
    assert parse_message(json.dumps(DESIGN_EXAMPLE).encode())["market_open"] is None  # older producers: unknown
