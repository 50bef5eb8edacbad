"""JSON endpoints for everything the pages show, and /healthz.

Bad input is answered with a JSON error: 404 for a symbol the system does not
follow, 400 for a bad parameter, 503 when the store behind it is down.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from common.clock import utc_now
from common.mailer import redact_addresses
from database.mongo import dashboard as mongo_dash
from database.mongo import prices, user_rules
from database.mysql import dashboard as mysql_dash
from flask_web_app.daily_csv import csv_filename, daily_csv
from flask_web_app.db import (
    MONGO_ERRORS,
    MYSQL_ERRORS,
    UNAVAILABLE,
    get_mongo,
    get_mysql,
    known_symbols,
    listed_symbols,
    stores,
)
from flask_web_app.present import alert_view, jsonable, merge_alerts, quote_view
from flask_web_app.source_health import source_lines
from flask_web_app.validation import (
    BadParameterError,
    UnknownSymbolError,
    parse_days,
    parse_int,
    parse_range,
    parse_symbol,
    parse_symbols,
)

bp = Blueprint("api", __name__, url_prefix="/api")
health_bp = Blueprint("health", __name__)


def error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message, "status": status}), status


@bp.errorhandler(UnknownSymbolError)
def _unknown(exc: UnknownSymbolError) -> tuple[Response, int]:
    known = ", ".join(known_symbols())
    return error(404, f"unknown symbol {exc.args[0]!r}; known symbols: {known}")


@bp.errorhandler(BadParameterError)
def _bad(exc: BadParameterError) -> tuple[Response, int]:
    return error(400, str(exc))


@bp.errorhandler(HTTPException)
def _http(exc: HTTPException) -> tuple[Response, int]:
    return error(exc.code or 500, exc.description or exc.name)


@bp.errorhandler(MONGO_ERRORS[0])
def _mongo_down(exc: Exception) -> tuple[Response, int]:
    return error(503, UNAVAILABLE["mongodb"])


for _exc in MYSQL_ERRORS:
    bp.register_error_handler(_exc, lambda exc: error(503, UNAVAILABLE["mysql"]))


def symbols() -> list[str]:
    return known_symbols()


@bp.get("/quotes/latest")
def latest() -> Response:
    # Without ?symbols= the symbols the live page lists for this visitor (flask_web_app/db.listed_symbols).
    raw = request.args.get("symbols")
    wanted = parse_symbols(raw, symbols()) if raw and raw.strip() else listed_symbols()
    found = prices.latest_quotes(get_mongo(), wanted)
    return jsonify({
        "quotes": [quote_view(found[s]) for s in wanted if s in found],
        "missing": [s for s in wanted if s not in found],
        "as_of": jsonable(utc_now()),
    })


@bp.get("/quotes/<symbol>/intraday")
def intraday(symbol: str) -> Response:
    symbol = parse_symbol(symbol, symbols())
    args = request.args
    db = get_mongo()
    anchor = None
    if not args.get("end"):
        # Without an explicit end the window ends at the latest quote, so a
        # closed market (night, weekend) still shows the last session.
        last = prices.latest_quotes(db, [symbol]).get(symbol)
        anchor = last["timestamp"] if last else None
    start, end = parse_range(args.get("start"), args.get("end"), args.get("minutes"), anchor=anchor)
    points = prices.intraday(db, symbol, start, end)
    return jsonify({"symbol": symbol, "start": jsonable(start), "end": jsonable(end),
                    "points": [quote_view(p) for p in points]})


@bp.get("/quotes/<symbol>/recent")
def recent(symbol: str) -> Response:
    symbol = parse_symbol(symbol, symbols())
    limit = parse_int(request.args.get("limit"), "limit", 60, 1, 1000)
    points = prices.recent_quotes(get_mongo(), symbol, limit)
    return jsonify({"symbol": symbol, "points": [quote_view(p) for p in points]})


@bp.get("/daily/<symbol>")
def daily(symbol: str) -> Response:
    symbol = parse_symbol(symbol, symbols())
    days = parse_days(request.args.get("days"), default=30)
    rows = mysql_dash.daily_series(get_mysql(), symbol, days)
    return jsonify({"symbol": symbol, "days": days, "rows": jsonable(rows)})


@bp.get("/daily/<symbol>/csv")
def daily_csv_download(symbol: str) -> Response:
    """The daily series the dashboard shows for ?days=, as a CSV file (flask_web_app/daily_csv.py)."""
    symbol = parse_symbol(symbol, symbols())
    days = parse_days(request.args.get("days"), default=30)
    rows = mysql_dash.daily_series(get_mysql(), symbol, days)
    response = Response(daily_csv(rows), mimetype="text/csv")
    response.headers["Content-Type"] = "text/csv; charset=utf-8"
    response.headers["Content-Disposition"] = f'attachment; filename="{csv_filename(symbol, rows)}"'
    return response


@bp.get("/performance")
def performance() -> Response:
    # Without ?symbols= the symbols the live page lists for this visitor (flask_web_app/db.listed_symbols).
    raw = request.args.get("symbols")
    wanted = parse_symbols(raw, symbols()) if raw and raw.strip() else listed_symbols()
    return jsonify({"rows": jsonable(mysql_dash.performance(get_mysql(), wanted))})


@bp.get("/alerts")
def alerts() -> Response:
    raw = request.args.get("symbol")
    symbol = parse_symbol(raw, symbols()) if raw else None
    limit = parse_int(request.args.get("limit"), "limit", 20, 1, 200)
    return jsonify({"symbol": symbol, "alerts": jsonable(mysql_dash.latest_alerts(get_mysql(), symbol, limit))})


@bp.get("/alert-history")
def alert_history() -> Response:
    limit = parse_int(request.args.get("limit"), "limit", 10, 1, 200)
    alerts = mongo_dash.latest_alert_history(get_mongo(), limit)
    for alert in alerts:
        # Answered without login: errors are stored address-free, and older ones are redacted here.
        if isinstance(alert.get("email_error"), str):
            alert["email_error"] = redact_addresses(alert["email_error"])
    return jsonify({"alerts": jsonable(alerts)})


def live_alerts(limit: int, symbol: str | None = None) -> list[dict[str, Any]]:
    """The live page's alerts: the system's newest and, for a signed-in user, their own too
    (only theirs: the user is the session's, never a parameter); of one symbol when given."""
    db = get_mongo()
    user = g.get("user")
    own = user_rules.user_alerts_of(db, str(user["_id"]), limit, symbol) if user is not None else []
    return merge_alerts(mongo_dash.latest_alert_history(db, limit, symbol), own, limit)


@bp.get("/alerts/latest")
def latest_alerts() -> Response:
    """What the live page polls with /api/quotes/latest when streams are refused; the dashboard
    polls it with `symbol` (a known symbol, else 404 like the other symbol endpoints)."""
    limit = parse_int(request.args.get("limit"), "limit", 5, 1, 50)
    raw = request.args.get("symbol")
    symbol = parse_symbol(raw, symbols()) if raw is not None else None
    resp = jsonify({"alerts": [alert_view(a) for a in live_alerts(limit, symbol)], "as_of": jsonable(utc_now())})
    resp.headers["Cache-Control"] = "private, no-store"  # a signed-in user's own alerts are in it
    return resp


@bp.get("/news/<symbol>")
def news(symbol: str) -> Response:
    symbol = parse_symbol(symbol, symbols())
    limit = parse_int(request.args.get("limit"), "limit", 10, 1, 100)
    return jsonify({"symbol": symbol, "articles": jsonable(mongo_dash.latest_news(get_mongo(), symbol, limit))})


@bp.route("/<path:_rest>")
def not_found(_rest: str) -> tuple[Response, int]:
    return error(404, "no such endpoint")


@health_bp.get("/healthz")
def healthz() -> tuple[Response, int]:
    report: dict[str, Any] = stores().health()
    ok = all(part["ok"] for part in report.values())
    report["status"] = "ok" if ok else "degraded"
    # What each quote source is doing (informative: a source backing off is not an unhealthy web app).
    report["sources"] = source_lines(mongo_ok=report["mongodb"]["ok"])
    return jsonify(report), 200 if ok else 503
