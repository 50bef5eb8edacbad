"""The push channel's pure parts: positions, de-duplication, fan-out and SSE framing.

No I/O here: flask_web_app/live_feed.py reads MongoDB and the stream view writes
to the socket; this module decides what goes to whom and how it is framed, and is
unit-tested without servers (tests/test_push.py).

- A position is the stored document's `_id` (ObjectId). ObjectIds of two processes
  written in the same second are not ordered by insertion, so every read starts
  GRACE before the newest position seen and `Tail` drops what was already sent.
- An event id is the cursor "<quotes position>.<alerts position>.<own alerts position>"
  (24 hex digits or "0" each): the browser hands it back as Last-Event-ID and the stream
  replays from it.
- Own alerts (user_alerts, the users' own rules) carry their owner: `Hub.publish` gives
  one only to the streams opened by that user's session (`visible_to`), never to another
  user's or a signed-out visitor's.
- `Hub`: one per process; the reader publishes each new event once and every open
  stream gets it from its own bounded queue (a stream that cannot keep up is closed
  and replays on reconnect), so the cost of reading MongoDB does not grow with viewers.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from bson import ObjectId
from bson.errors import InvalidId

GRACE = timedelta(seconds=5)
QUOTE, ALERT, OWN_ALERT = "quote", "alert", "own_alert"
KINDS = (QUOTE, ALERT, OWN_ALERT)
HEARTBEAT = ": keepalive\n\n"
RETRY_MS = 2000  # the browser's wait before reconnecting (the `retry:` field)


@dataclass(frozen=True)
class Event:
    """One stored quote or alert, ready to send (data is the page's JSON view); `owner` is the
    user id of an own alert (only that user's streams get it), None for what everyone sees."""

    kind: str
    position: ObjectId
    data: Mapping[str, Any]
    owner: str | None = None
    # The data line with its position, serialised once for every stream that sends it.
    text: str = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "text", json.dumps({**self.data, "pos": str(self.position)},
                                                   separators=(",", ":")))


def visible_to(event: Event, user_id: str | None) -> bool:
    """May a stream opened by `user_id`'s session (None: signed out) send this event?"""
    return event.owner is None or (user_id is not None and event.owner == user_id)


def parse_cursor(text: str | None) -> dict[str, ObjectId | None] | None:
    """Positions of a Last-Event-ID / ?after= cursor; None when absent or not ours."""
    if not text:
        return None
    parts = text.strip().split(".")
    if len(parts) not in (len(KINDS), len(KINDS) - 1):
        return None
    out: dict[str, ObjectId | None] = {}
    for kind, part in zip(KINDS, parts, strict=False):
        if part == "0":
            out[kind] = None
            continue
        try:
            out[kind] = ObjectId(part)
        except (InvalidId, TypeError):
            return None
    if len(parts) < len(KINDS):
        # A page opened before own alerts were pushed: its cursor has no own-alert position.
        # Every ObjectId starts with its creation second, so the newer of its two positions
        # is also a time in user_alerts; None ("from the start") would replay them all.
        known = [p for p in out.values() if p is not None]
        out[OWN_ALERT] = max(known) if known else None
    return out


def format_cursor(positions: Mapping[str, ObjectId | None]) -> str:
    return ".".join(str(positions.get(kind)) if positions.get(kind) is not None else "0" for kind in KINDS)


def frame(event: str, data: Mapping[str, Any] | str, event_id: str | None = None) -> str:
    """One SSE message (`data`: a mapping, or its JSON already). json.dumps never writes a
    newline, so the data is one line."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    text = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"{head}event: {event}\ndata: {text}\n\n"


def opening(positions: Mapping[str, ObjectId | None]) -> str:
    """The first bytes of a stream: the reconnect delay and the position it starts from."""
    return f"retry: {RETRY_MS}\n\n" + frame("ready", {"cursor": format_cursor(positions)}, format_cursor(positions))


@dataclass
class Tail:
    """The newest position of one collection and the positions within GRACE of it already taken."""

    newest: ObjectId | None = None
    grace: timedelta = GRACE
    _seen: set[ObjectId] = field(default_factory=set)

    def floor(self) -> ObjectId | None:
        """Read from here (exclusive): GRACE before the newest position taken."""
        if self.newest is None:
            return None
        return ObjectId.from_datetime(self.newest.generation_time - self.grace)

    def unseen(self, positions: Iterable[ObjectId]) -> list[ObjectId]:
        """The positions not taken yet (the sweep's late arrivals), without taking them."""
        return [p for p in positions if p not in self._seen]

    def take(self, positions: Iterable[ObjectId]) -> list[ObjectId]:
        """The positions not taken before, in the given order; remembers them."""
        fresh = []
        for pos in positions:
            if pos in self._seen:
                continue
            self._seen.add(pos)
            fresh.append(pos)
            if self.newest is None or pos > self.newest:
                self.newest = pos
        floor = self.floor()
        if floor is not None and len(self._seen) > 64:
            self._seen = {p for p in self._seen if p > floor}
        return fresh


@dataclass
class Positions:
    """A stream's (or the reader's) tails of both collections."""

    tails: dict[str, Tail] = field(default_factory=lambda: {kind: Tail() for kind in KINDS})

    @classmethod
    def starting_at(cls, start: Mapping[str, ObjectId | None]) -> Positions:
        return cls({kind: Tail(newest=start.get(kind)) for kind in KINDS})

    def cursor(self) -> str:
        return format_cursor({kind: tail.newest for kind, tail in self.tails.items()})

    def fresh(self, events: Iterable[Event]) -> list[Event]:
        """The events not sent before (each kind's tail decides)."""
        out = []
        for ev in events:
            if self.tails[ev.kind].take([ev.position]):
                out.append(ev)
        return out

    def render(self, events: Iterable[Event]) -> str:
        """The SSE text of the events not sent before; each id is the cursor after it."""
        chunks = []
        for ev in events:
            if self.tails[ev.kind].take([ev.position]):
                chunks.append(frame(ev.kind, ev.text, self.cursor()))
        return "".join(chunks)


class Subscription:
    """One open stream's queue of events; closed when full (the page reconnects and replays)."""

    def __init__(self, capacity: int, user_id: str | None = None) -> None:
        self._items: deque[Event] = deque()
        self._cond = threading.Condition()
        self._capacity = capacity
        self.user_id = user_id  # the session's user when the stream opened (None: signed out)
        self.closed = False

    def put(self, events: list[Event]) -> None:
        with self._cond:
            if self.closed:
                return
            if len(self._items) + len(events) > self._capacity:
                self.closed = True
                self._items.clear()
            else:
                self._items.extend(events)
            self._cond.notify_all()

    def get(self, timeout: float) -> list[Event]:
        """What arrived, waiting up to `timeout` for something (empty: time for a heartbeat)."""
        with self._cond:
            if not self._items and not self.closed:
                self._cond.wait(timeout)
            out = list(self._items)
            self._items.clear()
            return out

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class Hub:
    """Fan-out of one process: at most `limit` open streams, each with its own queue."""

    def __init__(self, limit: int, capacity: int = 5000) -> None:
        self.limit = limit
        self.capacity = capacity
        self._subs: set[Subscription] = set()
        self._lock = threading.Lock()
        self.closing = False

    def subscribe(self, user_id: str | None = None) -> Subscription | None:
        """A new stream's queue (of `user_id`'s session; None: signed out), or None when `limit`
        streams are open (or the process is stopping)."""
        with self._lock:
            if self.closing or len(self._subs) >= self.limit:
                return None
            sub = Subscription(self.capacity, user_id)
            self._subs.add(sub)
            return sub

    def unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            self._subs.discard(sub)
        sub.close()

    def publish(self, events: list[Event]) -> None:
        if not events:
            return
        with self._lock:
            subs = list(self._subs)
        if all(ev.owner is None for ev in events):
            for sub in subs:
                sub.put(events)
            return
        # Own alerts among them: each stream gets what its user may see, nothing else.
        for sub in subs:
            if mine := [ev for ev in events if visible_to(ev, sub.user_id)]:
                sub.put(mine)

    def close_all(self) -> None:
        """The process is stopping: every stream ends (the pages reconnect elsewhere)."""
        with self._lock:
            self.closing = True
            subs = list(self._subs)
        for sub in subs:
            sub.close()

    def __len__(self) -> int:
        with self._lock:
            return len(self._subs)
