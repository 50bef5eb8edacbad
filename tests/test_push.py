"""The push channel's pure parts (flask_web_app/push.py), without servers: cursors, SSE
framing, the tails' de-duplication across the grace window, and the hub's bound and fan-out."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from flask_web_app.push import (
    ALERT,
    GRACE,
    HEARTBEAT,
    QUOTE,
    Event,
    Hub,
    Positions,
    Tail,
    format_cursor,
    frame,
    opening,
    parse_cursor,
)

T0 = datetime(2026, 3, 2, 15, 30, tzinfo=UTC)


def oid(seconds: float, n: int = 0) -> ObjectId:
    """An ObjectId of second T0+seconds; `n` orders ids of the same second (as another process's would)."""
    base = ObjectId.from_datetime(T0 + timedelta(seconds=seconds)).binary[:4]
    return ObjectId(base + n.to_bytes(8, "big"))


def parse_sse(text: str) -> list[dict[str, str]]:
    """Messages of an SSE text as the browser reads them (comments dropped)."""
    out = []
    for block in text.split("\n\n"):
        msg: dict[str, str] = {}
        for line in block.split("\n"):
            if not line or line.startswith(":"):
                continue
            name, _, value = line.partition(": ")
            msg[name] = value
        if msg:
            out.append(msg)
    return out


def test_cursor_round_trip_and_refusals() -> None:
    q, a = oid(1), oid(2)
    assert parse_cursor(format_cursor({QUOTE: q, ALERT: a})) == {QUOTE: q, ALERT: a}
    assert parse_cursor(format_cursor({QUOTE: q, ALERT: None})) == {QUOTE: q, ALERT: None}
    assert format_cursor({}) == "0.0"
    for bad in (None, "", "zz.0", "1.2.3", str(q), f"{q}.nothex"):
        assert parse_cursor(bad) is None, bad


def test_frame_is_one_message_whatever_the_text() -> None:
    text = frame(QUOTE, {"message": "line one\nline two <script>", "n": 1}, "abc.0")
    [msg] = parse_sse(text)
    assert msg["id"] == "abc.0" and msg["event"] == QUOTE
    assert json.loads(msg["data"]) == {"message": "line one\nline two <script>", "n": 1}
    assert parse_sse(HEARTBEAT) == []  # a comment: keeps the connection busy, no event
    start = opening({QUOTE: oid(3), ALERT: None})
    assert start.startswith("retry: ")
    assert parse_sse(start)[-1]["id"] == f"{oid(3)}.0"


def test_tail_takes_each_position_once_and_reads_from_the_grace_floor() -> None:
    tail = Tail()
    assert tail.floor() is None  # nothing seen: read from the start
    assert tail.take([oid(10, 5), oid(10, 9)]) == [oid(10, 5), oid(10, 9)]
    assert tail.newest == oid(10, 9)
    assert tail.floor() == ObjectId.from_datetime(oid(10).generation_time - GRACE)
    # Another writer's id of the same second sorts below the newest: still taken, once.
    assert tail.take([oid(10, 1), oid(10, 5), oid(11)]) == [oid(10, 1), oid(11)]
    assert tail.take([oid(10, 1), oid(11)]) == []
    assert tail.newest == oid(11)
    assert tail.unseen([oid(10, 2), oid(10, 5), oid(11)]) == [oid(10, 2)]  # the sweep's late one
    assert tail.unseen([oid(10, 2)]) == [oid(10, 2)]  # looking does not take


def test_tail_forgets_only_below_its_floor() -> None:
    tail = Tail()
    tail.take([oid(i, 1) for i in range(100)])
    assert tail.take([oid(99, 1), oid(96, 1)]) == []  # within the window: still known
    assert all(p > tail.floor() for p in tail._seen)  # noqa: SLF001 - memory stays bounded


def test_positions_render_skips_repeats_and_ids_are_the_cursor() -> None:
    pos = Positions.starting_at({QUOTE: oid(5), ALERT: None})
    events = [Event(QUOTE, oid(6), {"symbol": "AAPL", "price": 1.5}), Event(ALERT, oid(7), {"symbol": "AAPL"})]
    msgs = parse_sse(pos.render(events))
    assert [m["event"] for m in msgs] == [QUOTE, ALERT]
    assert msgs[0]["id"] == f"{oid(6)}.0"
    assert msgs[1]["id"] == f"{oid(6)}.{oid(7)}"
    assert json.loads(msgs[0]["data"]) == {"symbol": "AAPL", "price": 1.5, "pos": str(oid(6))}
    assert pos.render(events) == ""  # replayed again (reader + replay overlap): nothing sent twice
    assert parse_cursor(msgs[1]["id"]) == {QUOTE: oid(6), ALERT: oid(7)}


def test_hub_bound_fan_out_and_close() -> None:
    hub = Hub(limit=2, capacity=3)
    a, b = hub.subscribe(), hub.subscribe()
    assert a is not None and b is not None
    assert hub.subscribe() is None  # beyond the bound: the view answers 503
    ev = [Event(QUOTE, oid(1), {})]
    hub.publish(ev)
    assert a.get(0) == ev and b.get(0) == ev  # each stream gets its own copy
    assert a.get(0) == []
    hub.unsubscribe(a)
    assert len(hub) == 1
    c = hub.subscribe()
    assert c is not None  # a slot freed is a slot again

    # A stream that cannot keep up is closed rather than grow without bound (it replays on reconnect).
    hub.publish([Event(QUOTE, oid(i + 2), {}) for i in range(4)])
    assert b.closed and b.get(0) == []

    hub.close_all()
    assert hub.subscribe() is None
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(c.get(30)))
    t.start()
    t.join(10)
    assert not t.is_alive() and got == [[]]


def test_waiting_stream_wakes_on_publish() -> None:
    hub = Hub(limit=1)
    sub = hub.subscribe()
    assert sub is not None
    ev = [Event(ALERT, oid(1), {"symbol": "MSFT"})]
    got: list[object] = []
    t = threading.Thread(target=lambda: got.append(sub.get(60)))
    t.start()
    hub.publish(ev)
    t.join(30)
    assert got == [ev]
