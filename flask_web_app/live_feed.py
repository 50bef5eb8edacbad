"""The push channel's I/O: one MongoDB reader per web process and each stream's replay.

`LiveFeed` (one per app, hence per gunicorn worker process) starts its reader thread on
the first stream after the fork. Every STREAM_POLL_SECONDS the reader asks MongoDB for
what was stored after its positions (database/mongo/stream.py: realtime_prices, which
holds exactly the quotes the consumer accepted, alert_history, and user_alerts: every
user's own alerts in one query) and publishes it once to the process's `Hub`; every open
stream takes from its own queue what it may see (an own alert only its owner's streams).
With no stream open the reader does not query at all.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from pymongo.database import Database
from pymongo.errors import PyMongoError

from database.mongo import ALERT_HISTORY, REALTIME_PRICES, USER_ALERTS
from database.mongo import stream as mongo_stream
from flask_web_app.present import alert_view, quote_view
from flask_web_app.push import ALERT, HEARTBEAT, KINDS, OWN_ALERT, QUOTE, Event, Hub, Positions, frame, opening
from logs.logger_config import get_logger

log = get_logger("flask_web_app.live_feed")

READ_LIMIT = 1000
# Every this many ticks the reader also looks below its newest position for a late writer's
# document (about once a second at STREAM_POLL_SECONDS=0.2): a tick reads only what is new.
SWEEP_EVERY = 5


KIND_COLLECTION = {QUOTE: REALTIME_PRICES, ALERT: ALERT_HISTORY, OWN_ALERT: USER_ALERTS}


def _events(kind: str, docs: list[dict[str, Any]]) -> list[Event]:
    if kind == OWN_ALERT:
        return [Event(kind, d["_id"], alert_view({**d, "own": True}), owner=str(d.get("user_id"))) for d in docs]
    view = quote_view if kind == QUOTE else alert_view
    return [Event(kind, d["_id"], view(d)) for d in docs]


def read_since(db: Database, positions: Positions, user_id: str | None,
               limit: int = READ_LIMIT) -> tuple[list[Event], bool]:
    """Quotes, alerts and `user_id`'s own alerts (none when signed out) stored after each
    tail's floor (a replay), as events; True when a read hit `limit` (more are waiting: the
    page re-reads the latest quotes instead)."""
    events: list[Event] = []
    more = False
    for kind, collection in KIND_COLLECTION.items():
        floor = positions.tails[kind].floor()
        if kind == OWN_ALERT:
            if user_id is None:
                continue
            docs = mongo_stream.own_alerts_after(db, user_id, floor, limit)
        else:
            docs = mongo_stream.stored_after(db, collection, floor, limit)
        events += _events(kind, docs)
        more = more or len(docs) >= limit
    return events, more


def read_new(db: Database, positions: Positions, sweep: bool) -> list[Event]:
    """The reader's tick: what was stored after each tail's newest position; with `sweep`
    also what a writer stored late below it (within GRACE), found by position only."""
    events: list[Event] = []
    for kind, collection in KIND_COLLECTION.items():
        tail = positions.tails[kind]
        floor = tail.floor()
        if sweep and floor is not None:
            late = tail.unseen(p for p in mongo_stream.positions_after(db, collection, floor) if p <= tail.newest)
            events += _events(kind, mongo_stream.stored_by_ids(db, collection, late))
        events += _events(kind, mongo_stream.stored_after(db, collection, tail.newest, READ_LIMIT))
    return events


def newest(db: Database) -> Positions:
    return Positions.starting_at(dict(zip(KINDS, mongo_stream.newest_positions(db, KIND_COLLECTION.values()),
                                          strict=True)))


class LiveFeed:
    def __init__(self, mongo: Callable[[], Database], limit: int, poll_seconds: float,
                 heartbeat_seconds: float) -> None:
        self.mongo = mongo
        self.hub = Hub(limit)
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def ensure_started(self) -> None:
        # Lazily, in the worker: a thread started before gunicorn forks would not exist in the worker.
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="live-feed", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        """The process is stopping: end every stream now (graceful shutdown would wait for them)."""
        self._stop.set()
        self.hub.close_all()

    def _run(self) -> None:
        positions: Positions | None = None
        failing = False
        ticks = 0
        while not self._stop.wait(self.poll_seconds):
            if not len(self.hub):
                positions = None  # nobody listens: no queries; start again from the newest
                continue
            try:
                db = self.mongo()
                if positions is None:
                    positions = newest(db)
                    ticks = 0
                # The first tick sweeps too: what was stored between a new stream's replay and
                # this reader's start sits below its first position.
                events = read_new(db, positions, sweep=ticks % SWEEP_EVERY == 0)
                ticks += 1
            except PyMongoError as exc:
                if not failing:
                    log.warning("live feed: MongoDB read failed (%s); streams wait, the next read retries", exc)
                failing = True
                continue
            if failing:
                log.info("live feed: MongoDB answers again")
                failing = False
            self.hub.publish(positions.fresh(events))

    def stream(self, sub: Any, start: Positions, replay: bool,
               still_signed_in: Callable[[Database], bool] | None = None) -> Iterator[str]:
        """The text of one open stream: the opening, the replay from `start` (a reconnect),
        then what the reader publishes, with a heartbeat comment when idle. Before own alerts
        go out, `still_signed_in` looks at the session again: signed out (in another tab) since
        the stream opened, the stream ends without them and the page reconnects signed out."""
        db = self.mongo()
        positions = start
        try:
            yield opening({k: t.newest for k, t in positions.tails.items()})
            if replay:
                try:
                    events, more = read_since(db, positions, sub.user_id)
                except PyMongoError as exc:
                    # End the stream: the browser reconnects with the same Last-Event-ID and replays then.
                    log.warning("stream replay failed (%s); the page reconnects and tries again", exc)
                    return
                if more:
                    yield frame("resync", {"reason": "more stored than one replay sends"})
                yield positions.render(events)
            last_write = time.monotonic()
            while True:
                events = sub.get(self.heartbeat_seconds)
                if sub.closed and not events:
                    return
                if still_signed_in is not None and any(ev.owner is not None for ev in events):
                    try:
                        signed_in = still_signed_in(db)
                    except PyMongoError as exc:
                        log.warning("session not checked before own alerts (%s); the page reconnects", exc)
                        signed_in = False
                    if not signed_in:
                        return  # the reconnect replays what this stream may send
                text = positions.render(events)
                if not text and time.monotonic() - last_write >= self.heartbeat_seconds:
                    text = HEARTBEAT
                if text:
                    yield text
                    last_write = time.monotonic()
        finally:
            self.hub.unsubscribe(sub)
