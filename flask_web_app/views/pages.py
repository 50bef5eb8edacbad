"""The two pages: live prices (/) and the per-symbol dashboard (/dashboard)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from flask import Blueprint, abort, current_app, g, render_template, request

from database.mongo import dashboard as mongo_dash
from database.mongo import prices
from database.mongo import symbols as symbol_registry
from database.mongo import user_rules as level_rules_db
from database.mysql import dashboard as mysql_dash
from flask_web_app.db import attempt, get_mongo, get_mysql, known_symbols, listed_symbols, registry
from flask_web_app.forms import AddSymbolForm, DeleteLevelForm, LevelRuleForm, RemoveSymbolForm
from flask_web_app.present import (
    MARKET_TEXT,
    daily_figure,
    intraday_figure,
    market_state,
    merge_alerts,
    quote_view,
    sparkline_points,
)
from flask_web_app.source_health import source_lines
from flask_web_app.validation import DAY_CHOICES, BadParameterError, UnknownSymbolError, parse_days, parse_symbol
from flask_web_app.views.api import live_alerts
from flask_web_app.views.stream import current_cursor

bp = Blueprint("pages", __name__)

SPARK_POINTS = 60
NEWS_LIMIT = 10
ALERT_LIMIT = 20


def live_snapshot(symbols: list[str]) -> dict[str, Any]:
    """Latest quote and sparkline series of each symbol: one index walk per symbol,
    the newest of the recent quotes being the latest one (the polling that follows
    uses prices.latest_quotes)."""
    db = get_mongo()
    latest: dict[str, dict[str, Any]] = {}
    spark: dict[str, list[Any]] = {}
    for symbol in symbols:
        recent = prices.recent_quotes(db, symbol, SPARK_POINTS)
        if recent:
            latest[symbol] = recent[-1]
            spark[symbol] = [q.get("price") for q in recent]
    return {"latest": latest, "spark": spark}


@bp.get("/")
def index() -> tuple[str, int]:
    return index_page()


def _own_symbols() -> tuple[list[dict[str, Any]], str | None]:
    """The signed-in user's added tickers (name, simulated) for the add/remove section."""
    user = g.get("user")
    if user is None:
        return [], None
    return attempt("mongodb", lambda: symbol_registry.followed_by(get_mongo(), str(user["_id"])), [])


def index_page(*, add_form: AddSymbolForm | None = None, status: int = 200,
               message: str | None = None) -> tuple[str, int]:
    """The live page; `add_form` with its errors after a refused add, `message` after a refused removal."""
    own, own_error = _own_symbols()
    after = current_cursor()  # before the reads: the stream replays whatever is stored after them
    symbols = listed_symbols([d["_id"] for d in own])
    snap, error = attempt("mongodb", lambda: live_snapshot(symbols), {"latest": {}, "spark": {}})
    # The system's alerts and the signed-in user's own (the push channel adds theirs only).
    alerts, alerts_error = (([], None) if error else attempt("mongodb", lambda: live_alerts(5), []))
    rows = []
    for symbol in symbols:
        doc = snap["latest"].get(symbol)
        rows.append({
            "symbol": symbol,
            "quote": quote_view(doc) if doc else None,
            "spark": snap["spark"].get(symbol, []),
            "spark_points": sparkline_points(snap["spark"].get(symbol, [])),
        })
    watch = set((g.get("user") or {}).get("watchlist", []))
    market = market_state(snap["latest"].values())
    return render_template(
        "index.html", rows=rows, error=error, any_quotes=bool(snap["latest"]), watch=watch,
        market=market, market_text=MARKET_TEXT,
        alerts=alerts, alerts_error=alerts_error, sources=source_lines(mongo_ok=not error),
        # Forms (and their CSRF token, hence a session) only for a signed-in user.
        add_form=(add_form or AddSymbolForm(formdata=None)) if g.get("user") else None,
        remove_form=RemoveSymbolForm(formdata=None) if g.get("user") else None,
        own_symbols=own, own_error=own_error, symbols_message=message,
        live={"refresh_ms": int(current_app.config["REFRESH_SECONDS"] * 1000),
              "spark": {r["symbol"]: r["spark"] for r in rows}, "spark_points": SPARK_POINTS,
              "stream_after": after},
    ), status


@bp.get("/dashboard")
def dashboard() -> tuple[str, int]:
    return dashboard_page(request.args.get("symbol"), request.args.get("days"))


def _level_rules(symbol: str) -> tuple[list[dict[str, Any]], str | None]:
    """The signed-in user's price levels on this symbol."""
    user = g.get("user")
    if user is None:
        return [], None
    return attempt("mongodb", lambda: level_rules_db.level_rules_of(get_mongo(), str(user["_id"]), symbol), [])


def _own_alerts(symbol: str) -> tuple[list[dict[str, Any]], str | None]:
    """The signed-in user's own alerts of this symbol (user_alerts)."""
    user = g.get("user")
    if user is None:
        return [], None
    return attempt("mongodb", lambda: level_rules_db.user_alerts_of(get_mongo(), str(user["_id"]), ALERT_LIMIT,
                                                                     symbol), [])


def dashboard_page(symbol_arg: str | None, days_arg: str | None = None, *, level_form: LevelRuleForm | None = None,
                   status: int = 200) -> tuple[str, int]:
    """A symbol's dashboard; `level_form` with its errors after a refused price-level rule."""
    symbols = listed_symbols()
    # Any registered symbol has a dashboard (listed or not: another user's addition too).
    known = list(dict.fromkeys([*symbols, *known_symbols()]))
    if symbol_arg and symbol_arg.strip().upper() not in known:
        # Added through another worker since this one read the registry (a pushed quote of
        # it may be what the user just clicked): read the registry again before refusing.
        registry().forget()
        known = list(dict.fromkeys([*symbols, *known_symbols()]))
    try:
        symbol = parse_symbol(symbol_arg or symbols[0], known)
        days = parse_days(days_arg, default=30, choices=DAY_CHOICES)
    except UnknownSymbolError:
        abort(404, description=f"Unknown symbol {symbol_arg!r}; choose one of {', '.join(symbols)}.")
    except BadParameterError as exc:
        abort(400, description=str(exc))
    if symbol not in symbols:
        symbols = [*symbols, symbol]

    after = current_cursor()
    daily, daily_error = attempt("mysql", lambda: mysql_dash.daily_series(get_mysql(), symbol, days), [])
    perf, perf_error = attempt("mysql", lambda: mysql_dash.performance(get_mysql(), symbols), [])
    alerts, alerts_error = attempt("mysql", lambda: mysql_dash.latest_alerts(get_mysql(), symbol, ALERT_LIMIT), [])
    # The signed-in user's own alerts of the symbol among them, as the push channel adds them.
    own, own_error = _own_alerts(symbol)
    alerts = merge_alerts(alerts, own, ALERT_LIMIT)
    alerts_error = alerts_error or own_error

    def intraday_points() -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        db = get_mongo()
        last = prices.latest_quotes(db, [symbol]).get(symbol)
        if last is None:
            return None, []
        end = last["timestamp"] + timedelta(milliseconds=1)  # BSON times have ms precision
        return last, prices.intraday(db, symbol, end - timedelta(hours=24), end)

    (last, points), intraday_error = attempt("mongodb", intraday_points, (None, []))
    news, news_error = (([], intraday_error) if intraday_error else
                         attempt("mongodb", lambda: mongo_dash.latest_news(get_mongo(), symbol, NEWS_LIMIT), []))
    # Anything but purely real market data ('real' or 'yahoo' daily bars) gets a visible mark.
    daily_marked = sorted({str(r["source"]) for r in daily} - {"real", "yahoo"})
    levels, levels_error = _level_rules(symbol)
    return render_template(
        "dashboard.html", symbol=symbol, symbols=symbols, days=days, day_choices=DAY_CHOICES,
        daily=daily, daily_error=daily_error, daily_marked=daily_marked,
        daily_fig=daily_figure(daily, symbol) if daily else None,
        perf=perf, perf_error=perf_error, alerts=alerts, alerts_error=alerts_error,
        last=quote_view(last) if last else None, intraday_fig=intraday_figure(points, symbol) if points else None,
        intraday_count=len(points), intraday_error=intraday_error, news=news, news_error=news_error,
        live={"symbol": symbol, "stream_after": after,
              "refresh_ms": int(current_app.config["REFRESH_SECONDS"] * 1000)},
        levels=levels, levels_error=levels_error,
        level_form=(level_form or LevelRuleForm(formdata=None, symbol=symbol, back="dashboard"))
        if g.get("user") else None,
        delete_form=DeleteLevelForm(formdata=None, back="dashboard") if g.get("user") else None,
    ), status
