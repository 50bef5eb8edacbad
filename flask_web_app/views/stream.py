"""GET /api/stream: server-sent events of each stored quote and each new alert.

The page opens it with ?after=<cursor> (the positions when the page was rendered); the
browser reconnects by itself with Last-Event-ID and the stream replays what was stored
since. A signed-in session's stream also carries that user's own alerts (user_alerts), and
only theirs: the user id is taken from the session here, when the stream opens, and the hub
filters by it; before one goes out the stream checks the session is still signed in as that
user (signed out meanwhile: the stream ends and the page reconnects signed out). Beyond
STREAM_MAX_PER_PROCESS open streams in this process the answer is 503 with Retry-After, and
the page polls /api/quotes/latest instead."""

from __future__ import annotations

from collections.abc import Callable

from flask import Blueprint, Response, current_app, g, request, session
from pymongo.database import Database

from common.clock import utc_now
from database.mongo import sessions as sessions_db
from flask_web_app.db import MONGO_ERRORS, UNAVAILABLE, get_mongo
from flask_web_app.live_feed import LiveFeed, newest
from flask_web_app.push import Positions, parse_cursor
from flask_web_app.views.api import error

bp = Blueprint("stream", __name__, url_prefix="/api")

RETRY_AFTER_SECONDS = 30


def live_feed() -> LiveFeed:
    return current_app.extensions["live_feed"]


def current_cursor() -> str | None:
    """The positions now (for a page to open its stream from); None while MongoDB is down."""
    try:
        return newest(get_mongo()).cursor()
    except MONGO_ERRORS:
        return None


def _session_check(user_id: str | None) -> Callable[[Database], bool] | None:
    """Is this request's session still signed in as `user_id`? Asked by the stream (after the
    request, so with the session's token, not the request's session) before own alerts go out."""
    token = getattr(session, "token", None)
    if user_id is None or not token:
        return None
    return lambda db: sessions_db.signed_in_user(db, token, utc_now()) == user_id


@bp.get("/stream")
def stream() -> Response | tuple[Response, int]:
    feed = live_feed()
    start = parse_cursor(request.headers.get("Last-Event-ID") or request.args.get("after"))
    user = g.get("user")
    user_id = str(user["_id"]) if user is not None else None
    sub = feed.hub.subscribe(user_id)
    if sub is None:
        resp, status = error(503, f"too many open streams here ({feed.hub.limit}); "
                                  f"poll /api/quotes/latest or retry in {RETRY_AFTER_SECONDS} s")
        resp.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
        return resp, status
    try:
        positions = Positions.starting_at(start) if start is not None else newest(get_mongo())
    except MONGO_ERRORS:
        feed.hub.unsubscribe(sub)
        return error(503, UNAVAILABLE["mongodb"])
    feed.ensure_started()
    resp = Response(feed.stream(sub, positions, replay=start is not None,
                                still_signed_in=_session_check(user_id)), mimetype="text/event-stream")
    # Also when the client leaves before the first byte (the generator's own finally never runs then).
    resp.call_on_close(lambda: feed.hub.unsubscribe(sub))
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"  # nginx: pass each event on at once
    return resp
