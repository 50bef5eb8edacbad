"""The push channel's pure parts (flask_web_app/push.py), without servers: cursors, SSE
framing, the tails' de-duplication across the grace window, the hub's bound and fan-out,
and own alerts reaching their owner's streams only."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta

from bson import ObjectId

from flask_web_app.present import alert_view, merge_alerts
from flask_web_app.push import (
    ALERT,
    GRACE,
    HEARTBEAT,
    OWN_ALERT,
    QUOTE,
    Event,
    Hub,
    Positions,
    Tail,
    format_cursor,
    frame,
    opening,
    parse_cursor,
    visible_to,
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
    q, a, u = oid(1), oid(2), oid(3)
    assert parse_cursor(format_cursor({QUOTE: q, ALERT: a, OWN_ALERT: u})) == {QUOTE: q, ALERT: a, OWN_ALERT: u}
    assert parse_cursor(format_cursor({QUOTE: q, ALERT: None})) == {QUOTE: q, ALERT: None, OWN_ALERT: None}
    assert format_cursor({}) == "0.0.0"
    for bad in (None, "", "zz.0", "zz.0.0", "1.2.3", "1.2.3.4", str(q), f"{q}.nothex", f"{q}.0.nothex"):
        assert parse_cursor(bad) is None, bad


def test_a_cursor_from_before_own_alerts_starts_them_at_its_newest_position() -> None:
    """A page rendered before own alerts were pushed reconnects with "<quotes>.<alerts>": its
    own-alert position is its newest time, not "from the start" (which would replay them all)."""
    q, a = oid(10), oid(4)
    assert parse_cursor(f"{q}.{a}") == {QUOTE: q, ALERT: a, OWN_ALERT: q}
    assert parse_cursor(f"0.{a}") == {QUOTE: None, ALERT: a, OWN_ALERT: a}
    assert parse_cursor("0.0") == {QUOTE: None, ALERT: None, OWN_ALERT: None}


def test_frame_is_one_message_whatever_the_text() -> None:
    text = frame(QUOTE, {"message": "line one\nline two <script>", "n": 1}, "abc.0")
    [msg] = parse_sse(text)
    assert msg["id"] == "abc.0" and msg["event"] == QUOTE
    assert json.loads(msg["data"]) == {"message": "line one\nline two <script>", "n": 1}
    assert parse_sse(HEARTBEAT) == []  # a comment: keeps the connection busy, no event
    start = opening({QUOTE: oid(3), ALERT: None})
    assert start.startswith("retry: ")
    assert parse_sse(start)[-1]["id"] == f"{oid(3)}.0.0"


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
    assert msgs[0]["id"] == f"{oid(6)}.0.0"
    assert msgs[1]["id"] == f"{oid(6)}.{oid(7)}.0"
    assert json.loads(msgs[0]["data"]) == {"symbol": "AAPL", "price": 1.5, "pos": str(oid(6))}
    assert pos.render(events) == ""  # replayed again (reader + replay overlap): nothing sent twice
    assert parse_cursor(msgs[1]["id"]) == {QUOTE: oid(6), ALERT: oid(7), OWN_ALERT: None}
    own = Event(OWN_ALERT, oid(8), {"symbol": "AAPL", "own": True}, owner="u1")
    [msg] = parse_sse(pos.render([own]))
    assert msg["event"] == OWN_ALERT and msg["id"] == f"{oid(6)}.{oid(7)}.{oid(8)}"  # the own position too


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


def test_an_own_alert_is_visible_to_its_owner_only() -> None:
    system = Event(ALERT, oid(1), {"symbol": "AAPL"})
    own = Event(OWN_ALERT, oid(2), {"symbol": "AAPL", "own": True}, owner="a")
    assert visible_to(system, None) and visible_to(system, "a") and visible_to(system, "b")
    assert visible_to(own, "a")
    assert not visible_to(own, "b") and not visible_to(own, None) and not visible_to(own, "")


def test_hub_sends_own_alerts_to_their_owner_streams_only() -> None:
    hub = Hub(limit=5)
    a1, a2, b, anon = hub.subscribe("a"), hub.subscribe("a"), hub.subscribe("b"), hub.subscribe()
    assert a1 is not None and a2 is not None and b is not None and anon is not None
    quote = Event(QUOTE, oid(1), {"symbol": "AAPL"})
    mine = Event(OWN_ALERT, oid(2), {"symbol": "AAPL", "own": True}, owner="a")
    theirs = Event(OWN_ALERT, oid(3), {"symbol": "MSFT", "own": True}, owner="b")
    hub.publish([quote, mine, theirs])
    assert a1.get(0) == [quote, mine] and a2.get(0) == [quote, mine]  # every stream of A's
    assert b.get(0) == [quote, theirs]
    assert anon.get(0) == [quote]
    hub.publish([mine])  # only an own alert: the other streams get nothing at all (no empty wake-up)
    assert a1.get(0) == [mine] and b.get(0) == [] and anon.get(0) == []


def test_a_stream_renders_what_its_hub_queue_holds_so_others_own_alerts_never_reach_the_wire() -> None:
    hub = Hub(limit=2)
    anon = hub.subscribe()
    assert anon is not None
    hub.publish([Event(OWN_ALERT, oid(2), {"message": "A's secret level"}, owner="a")])
    assert Positions().render(anon.get(0)) == ""


def test_merge_alerts_newest_first_own_marked_each_key_once() -> None:
    system = [{"alert_key": "AAPL|price_change|t1", "symbol": "AAPL", "created_at": T0 + timedelta(minutes=1)},
              {"alert_key": "MSFT|price_change|t0", "symbol": "MSFT", "created_at": T0}]
    own = [{"alert_key": "u|price_level|AAPL|t2", "symbol": "AAPL", "user_id": "u",
            "created_at": (T0 + timedelta(minutes=2)).replace(tzinfo=None)},  # as pymongo hands it back
           {"alert_key": "u|price_level|AAPL|t2", "symbol": "AAPL", "user_id": "u", "created_at": None}]
    merged = merge_alerts(system, own, 5)
    assert [a["alert_key"] for a in merged] == ["u|price_level|AAPL|t2", "AAPL|price_change|t1",
                                                "MSFT|price_change|t0"]
    assert [bool(a.get("own")) for a in merged] == [True, False, False]
    assert [a["alert_key"] for a in merge_alerts(system, own, 2)] == ["u|price_level|AAPL|t2",
                                                                       "AAPL|price_change|t1"]
    view = alert_view(merged[0])
    assert view["own"] is True and "user_id" not in view  # whose it is stays on the server
    assert "own" not in alert_view(merged[1])
