"""Yahoo Finance as the recorded-answer server plays it: the cookie + crumb handshake and
the batch quote endpoint, answering from recorded entries (tests/fixtures/yahoo_*)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime

# The paths and the cookie are the local Yahoo server's (scripts/, which bench/ uses too).
from scripts.yahoo_server import A3, CHART, COOKIE, CRUMB_PATH, QUOTE, SET_COOKIE  # noqa: F401 - tests import CHART
from tests.support.http_fixture import FIXTURES, Handler, RecordedApi, Request, Response

CRUMB = (FIXTURES / "yahoo_getcrumb.txt").read_text()
COOKIE_ANSWER = Response(404, b"<html><body>404 Not Found</body></html>", "text/html; charset=utf-8",
                         headers={"Set-Cookie": SET_COOKIE})


def answer(name: str, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    kind = {"json": "application/json;charset=utf-8", "html": "text/html; charset=utf-8",
            "txt": "text/plain;charset=utf-8"}
    response = Response.fixture(name, status, kind[name.rsplit(".", 1)[1]])
    response.headers = dict(headers or {})
    return response


def recorded_entries(*names: str) -> dict[str, dict]:
    """Symbol → its entry of quoteResponse.result, from recorded quote answers."""
    entries: dict[str, dict] = {}
    for name in names:
        for item in json.loads((FIXTURES / name).read_text())["quoteResponse"]["result"]:
            entries[item["symbol"]] = item
    return entries


def moved_to(entries: dict[str, dict], now: datetime) -> dict[str, dict]:
    """The entries as if recorded at `now` (their regularMarketTime)."""
    return {s: {**e, "regularMarketTime": int(now.timestamp())} for s, e in entries.items()}


def has_cookie(req: Request) -> bool:
    return A3 in (req.header("Cookie") or "")


def quote_handler(entries: dict[str, dict]) -> Handler:
    """/v7/finance/quote as Yahoo answers it: 401 Invalid Crumb without the crumb and its cookie,
    else the asked symbols it knows (the others left out)."""
    def handle(req: Request) -> Response:
        if req.query.get("crumb") != CRUMB or not has_cookie(req):
            return answer("yahoo_invalid_crumb.json", 401)
        result = [entries[s] for s in req.query.get("symbols", "").split(",") if s in entries]
        body = {"quoteResponse": {"result": result, "error": None}}
        return Response(200, json.dumps(body).encode(), "application/json;charset=utf-8")
    return handle


def crumbs(*values: str) -> Handler:
    """getcrumb answering these crumbs in turn (the last one from then on); needs the cookie."""
    queue: Iterator[str] = iter(values)
    last = [values[-1]]

    def handle(req: Request) -> Response:
        if not has_cookie(req):
            return Response(401, b'{"finance":{"result":null,"error":{"code":"Unauthorized",'
                                 b'"description":"Invalid Cookie"}}}', "application/json;charset=utf-8")
        last[0] = next(queue, last[0])
        return Response(200, last[0].encode(), "text/plain;charset=utf-8")
    return handle


def serve_yahoo(api: RecordedApi, entries: dict[str, dict] | None = None) -> None:
    """The handshake and the quote endpoint (recorded entries; by default the open-market answer)."""
    api.route(COOKIE, COOKIE_ANSWER)
    api.route(CRUMB_PATH, crumbs(CRUMB))
    api.route(QUOTE, quote_handler(recorded_entries("yahoo_quote_open.json") if entries is None else entries))


def yahoo_env(api: RecordedApi) -> dict[str, str]:
    return {"YAHOO_FINANCE_URL": api.url, "YAHOO_COOKIE_URL": api.url + COOKIE}


def asked_symbols(api: RecordedApi) -> list[list[str]]:
    """The symbols of each quote request, in order."""
    return [c.query["symbols"].split(",") for c in api.calls(QUOTE)]
