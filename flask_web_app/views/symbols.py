"""Following more tickers: POST /symbols adds one, POST /symbols/<symbol>/remove drops it.

Only a signed-in user with a confirmed address may add; the ticker must be well formed
(config/symbols.py ticker_problem) and known to the quote source (flask_web_app/tickers.py)
before anything is stored. The registry (database/mongo/symbols.py) applies the limits.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, jsonify, redirect, request, url_for
from werkzeug.wrappers import Response

from common.clock import utc_now
from config.symbols import normal_ticker, ticker_problem
from database.mongo import symbols as registry_db
from flask_web_app.db import MONGO_ERRORS, UNAVAILABLE, get_mongo, registry
from flask_web_app.forms import AddSymbolForm, RemoveSymbolForm
from flask_web_app.tickers import TickerCheck, TickerUnknownError
from flask_web_app.views.pages import index_page

bp = Blueprint("symbols", __name__)


def _refusal(outcome: registry_db.Added, symbol: str) -> str | None:
    """The form's sentence for an add that the registry refused (None: added)."""
    config = current_app.config
    return {
        registry_db.Added.ADDED: None,
        registry_db.Added.DUPLICATE: f"You already follow {symbol}.",
        registry_db.Added.DEFAULT: f"{symbol} is one of the default symbols: everyone follows it already.",
        registry_db.Added.USER_FULL: f"You follow {config['MAX_SYMBOLS_PER_USER']} tickers, the most one user may "
                                     "add (MAX_SYMBOLS_PER_USER); remove one first.",
        registry_db.Added.REGISTRY_FULL: f"The system follows {config['MAX_SYMBOLS']} tickers, its limit "
                                         "(MAX_SYMBOLS); none can be added until some are removed.",
    }[outcome]


def _signed_in() -> Response | None:
    if g.user is None:
        return redirect(url_for("auth.login", next="/"))
    return None


def ticker_check() -> TickerCheck:
    return current_app.extensions["ticker_check"]


@bp.post("/symbols")
def add() -> Response | tuple[str, int]:
    if (to_login := _signed_in()) is not None:
        return to_login
    form = AddSymbolForm()
    if not form.validate_on_submit():
        return index_page(add_form=form, status=400)
    if not g.user.get("email_confirmed"):
        form.symbol.errors = ["Confirm your email address first (the link is in your inbox; "
                              "the account page sends a new one)."]
        return index_page(add_form=form, status=403)
    symbol = normal_ticker(form.symbol.data)
    try:
        known = ticker_check().known(symbol, utc_now())
    except TickerUnknownError as exc:
        form.symbol.errors = [str(exc)]
        return index_page(add_form=form, status=400)
    config = current_app.config
    try:
        outcome = registry_db.add_follower(
            get_mongo(), symbol, str(g.user["_id"]), name=known.name, simulated=known.simulated, now=utc_now(),
            max_symbols=config["MAX_SYMBOLS"], max_per_user=config["MAX_SYMBOLS_PER_USER"])
    except MONGO_ERRORS:
        form.symbol.errors = [UNAVAILABLE["mongodb"]]
        return index_page(add_form=form, status=503)
    if (refusal := _refusal(outcome, symbol)) is not None:
        form.symbol.errors = [refusal]
        return index_page(add_form=form, status=409)
    registry().forget()
    label = " (simulated: no real quote source is configured)" if known.simulated else ""
    flash(f"Now following {symbol}, {known.name}{label}; its quotes start within a minute.", "success")
    return redirect(url_for("pages.index"))


@bp.post("/symbols/<symbol>/remove")
def remove(symbol: str) -> Response | tuple[str, int]:
    if (to_login := _signed_in()) is not None:
        return to_login
    if not RemoveSymbolForm().validate_on_submit():
        return index_page(status=400, message="Form expired or not sent from this site; reload and try again.")
    if ticker_problem(symbol) is not None:
        return index_page(status=404, message="No such ticker among yours.")
    symbol = normal_ticker(symbol)
    try:
        removed = registry_db.remove_follower(get_mongo(), symbol, str(g.user["_id"]), utc_now())
    except MONGO_ERRORS:
        return index_page(status=503, message=UNAVAILABLE["mongodb"])
    if not removed:
        return index_page(status=404, message=f"You do not follow {symbol}.")
    registry().forget()
    flash(f"No longer following {symbol}; its stored history stays.", "success")
    return redirect(url_for("pages.index"))


@bp.get("/symbols/suggest")
def suggest() -> Response | tuple[Response, int]:
    """Yahoo's matches for what is typed so far (the add form's suggestions), signed-in users only."""
    if g.user is None:
        return jsonify({"error": "sign in first", "status": 401}), 401
    query = (request.args.get("q") or "").strip()
    if not query or len(query) > 40:
        return jsonify({"suggestions": []})
    found = ticker_check().suggestions(query, utc_now())
    return jsonify({"suggestions": [{"symbol": f.symbol, "name": f.name, "exchange": f.exchange}
                                    for f in found if ticker_problem(f.symbol) is None]})
