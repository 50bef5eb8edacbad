"""Per quote source, what it is doing: the producer's source_status document in words
(common/source_status.py), for /healthz and the index page."""

from __future__ import annotations

from common.clock import utc_now
from common.source_status import describe_all
from database.mongo import source_status
from flask_web_app.db import MONGO_ERRORS, get_mongo

UNREADABLE = "source status unavailable: MongoDB {}"


def source_lines(mongo_ok: bool = True) -> list[str]:
    """One line per source; one line saying why when MongoDB cannot be read (mongo_ok=False:
    the caller already found it down, so no second wait for it)."""
    if not mongo_ok:
        return [UNREADABLE.format("is unreachable")]
    try:
        doc = source_status.load(get_mongo())
    except MONGO_ERRORS as exc:
        return [UNREADABLE.format(type(exc).__name__)]
    return describe_all(doc, utc_now())
