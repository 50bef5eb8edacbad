"""market_data/yahoo_stream.py without servers: prints as yfinance decodes them, and the coalescer."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

from yfinance.live import BaseWebSocket
from yfinance.pricing_pb2 import PricingData

from common.quote import Source
from market_data.yahoo_stream import REGULAR_MARKET, Coalescer, Print, parse_print
from streaming.schema import parse_message, to_message

T0 = datetime(2026, 12, 3, 15, 0, tzinfo=UTC)
POST_MARKET = 2


def encoded(symbol: str, price: float, at: datetime, *, day_volume: int = 1000, market_hours: int = REGULAR_MARKET,
            **fields: float | int) -> str:
    """A print as the streamer sends it: base64 of yfinance's own PricingData."""
    data = PricingData(id=symbol, price=price, time=int(at.timestamp() * 1000), day_volume=day_volume,
                       market_hours=market_hours, day_high=fields.pop("day_high", price + 1),
                       day_low=fields.pop("day_low", price - 1), open_price=fields.pop("open_price", price),
                       previous_close=fields.pop("previous_close", price - 0.5), change_percent=0.25,
                       last_size=int(fields.pop("last_size", 100)), **fields)
    return base64.b64encode(data.SerializeToString()).decode()


def decoded(symbol: str, price: float, at: datetime, **kw: float | int) -> Print:
    """Decoded by yfinance's WebSocket (the dict our handler gets), then parsed."""
    p = parse_print(BaseWebSocket(verbose=False)._decode_message(encoded(symbol, price, at, **kw)))
    assert p is not None
    return p


def test_a_print_keeps_its_own_time_and_session() -> None:
    p = decoded("aapl", 201.25, T0 + timedelta(milliseconds=250), day_volume=5_000_000)
    assert (p.symbol, p.at, p.price, p.day_volume, p.regular) == ("AAPL", T0 + timedelta(milliseconds=250),
                                                                  201.25, 5_000_000, True)
    assert not decoded("AAPL", 201.0, T0, market_hours=POST_MARKET).regular
    # market_hours 0 (pre-market) is proto3's default: absent from the decoded dict, still not regular.
    assert not decoded("AAPL", 201.0, T0, market_hours=0).regular


def test_what_is_not_a_print_is_none() -> None:
    assert parse_print({"id": "AAPL", "price": 0.0, "time": "1"}) is None
    assert parse_print({"price": 10.0, "time": "1"}) is None
    assert parse_print({"id": "AAPL", "price": 10.0}) is None
    assert parse_print({"error": "bad", "raw_base64": "xx"}) is None


def test_at_most_one_quote_per_symbol_per_interval_and_the_newest_print_wins() -> None:
    c = Coalescer(1.0)
    # 50 prints in one second for one symbol, and one for another.
    for i in range(50):
        c.add(decoded("AAPL", 200 + i / 100, T0 + timedelta(milliseconds=20 * i), day_volume=1000 + 10 * i))
    c.add(decoded("MSFT", 400.0, T0))
    first = c.due(100.0)
    assert sorted(q.symbol for q in first) == ["AAPL", "MSFT"]
    aapl = next(q for q in first if q.symbol == "AAPL")
    assert aapl.price == 200.49 and aapl.timestamp == T0 + timedelta(milliseconds=980)
    assert aapl.source == Source.YAHOO_STREAM and aapl.market_open is True
    # More prints within the interval: held, then out once the interval has passed.
    c.add(decoded("AAPL", 201.0, T0 + timedelta(seconds=1), day_volume=1600))
    c.add(decoded("AAPL", 201.5, T0 + timedelta(seconds=1.5), day_volume=1700))
    assert c.due(100.5) == []
    later = c.due(101.0)
    assert [(q.price, q.volume) for q in later] == [(201.5, 1700 - 1490)]  # shares since the previous quote
    assert c.due(105.0) == []  # nothing new: nothing sent


def test_a_print_sent_again_or_older_is_dropped() -> None:
    c = Coalescer(1.0)
    assert c.add(decoded("AAPL", 200.0, T0))
    c.due(0.0)
    assert not c.add(decoded("AAPL", 200.0, T0))  # the same print after a reconnect
    assert not c.add(decoded("AAPL", 199.0, T0 - timedelta(seconds=1)))
    assert c.due(10.0) == []


def test_post_market_is_labelled_and_keeps_the_regular_figures() -> None:
    c = Coalescer(1.0)
    c.add(decoded("AAPL", 200.0, T0, day_volume=1000, day_high=205.0, day_low=195.0, open_price=198.0))
    c.due(0.0)
    c.add(decoded("AAPL", 210.0, T0 + timedelta(hours=2), day_volume=9000, market_hours=POST_MARKET,
                  day_high=210.0, day_low=150.0, open_price=150.0))
    post = c.due(5.0)[0]
    assert post.market_open is False and post.volume == 0 and post.price == 210.0
    assert (post.open, post.low) == (198.0, 195.0) and post.high == 210.0  # widened to hold the price only
    parse_message(to_message(post), now=post.timestamp)  # the schema takes it as it is
    # Back in the regular session: the base is still the regular print's day volume.
    c.add(decoded("AAPL", 201.0, T0 + timedelta(hours=3), day_volume=1500, day_high=205.0, day_low=195.0,
                  open_price=198.0))
    assert c.due(10.0)[0].volume == 500


def test_after_a_gap_the_volume_starts_over_from_the_print() -> None:
    c = Coalescer(1.0)
    c.add(decoded("AAPL", 200.0, T0, day_volume=1000))
    c.due(0.0)
    c.forget_volume()  # the stream was down: polled quotes carried the volume in between
    c.add(decoded("AAPL", 200.0, T0 + timedelta(minutes=5), day_volume=90_000, last_size=300))
    assert c.due(300.0)[0].volume == 300


def test_stream_quotes_pass_the_message_schema() -> None:
    c = Coalescer(1.0)
    c.add(decoded("AAPL", 200.123456, T0, open_price=210.0, day_high=205.0))  # open above the day high: widened
    quote = c.due(0.0)[0]
    assert parse_message(to_message(quote), now=T0).source == Source.YAHOO_STREAM
