"""Price-level alert rules: POST /alerts/levels adds one, POST /alerts/levels/<id>/delete drops one.

The forms are on the account page and on a symbol's dashboard; a refused rule shows its
error on the page it came from and stores nothing. The owner is always the signed-in user
(a posted user id other than theirs is refused); a rule can be deleted only by its owner.
Refused: a symbol the system does not follow (the registry), a level not above 0 or absurd
(beyond USER_LEVEL_MAX_FACTOR x or 1/x the last price), more than USER_MAX_LEVEL_RULES rules.
"""

from __future__ import annotations

from flask import Blueprint, current_app, flash, g, redirect, request, url_for
from werkzeug.wrappers import Response

from common.clock import utc_now
from config.symbols import normal_ticker
from database.mongo import prices
from database.mongo import user_rules as rules_db
from flask_web_app.db import MONGO_ERRORS, UNAVAILABLE, get_mongo, is_registered
from flask_web_app.forms import DeleteLevelForm, LevelRuleForm
from flask_web_app.views.auth import account_page_with
from flask_web_app.views.pages import dashboard_page

bp = Blueprint("levels", __name__)


def _back(form: LevelRuleForm, status: int) -> tuple[str, int]:
    """The page the form was on, with the form and its errors."""
    if form.back.data == "dashboard" and form.symbol.data and is_registered(normal_ticker(form.symbol.data)):
        return dashboard_page(normal_ticker(form.symbol.data), level_form=form, status=status)
    return account_page_with(form, status)


def _level_problem(symbol: str, level: float) -> str | None:
    """Why a level is absurd next to the symbol's last price (None: plausible or no price yet)."""
    factor = float(current_app.config["USER_LEVEL_MAX_FACTOR"])
    last = prices.latest_quotes(get_mongo(), [symbol]).get(symbol)
    if last is None or not last.get("price"):
        return None
    price = float(last["price"])
    if level > price * factor or level < price / factor:
        return (f"{level:g} is more than {factor:g}x away from {symbol}'s last price of {price:.2f}; "
                "check the number.")
    return None


def _redirect(back: str | None, symbol: str | None) -> Response:
    if back == "dashboard" and symbol:
        return redirect(url_for("pages.dashboard", symbol=symbol))
    return redirect(url_for("auth.account"))


@bp.post("/alerts/levels")
def add() -> Response | tuple[str, int]:
    if g.user is None:
        return redirect(url_for("auth.login", next="/account"))
    form = LevelRuleForm()
    user_id = str(g.user["_id"])
    if not form.validate_on_submit():
        return _back(form, 400)
    posted_owner = request.form.get("user_id")
    if posted_owner is not None and posted_owner != user_id:
        form.form_errors.append("You can set price alerts for your own account only.")
        return _back(form, 403)
    symbol = normal_ticker(form.symbol.data)
    if not is_registered(symbol):
        form.symbol.errors = [f"{symbol} is not a symbol the system follows; add it on the live page first."]
        return _back(form, 400)
    level = float(form.level.data)
    config = current_app.config
    try:
        if (problem := _level_problem(symbol, level)) is not None:
            form.level.errors = [problem]
            return _back(form, 400)
        outcome, _ = rules_db.add_level_rule(get_mongo(), user_id, symbol=symbol, direction=form.direction.data,
                                             level=level, mode=form.mode.data, now=utc_now(),
                                             max_per_user=config["USER_MAX_LEVEL_RULES"])
    except MONGO_ERRORS:
        form.form_errors.append(UNAVAILABLE["mongodb"])
        return _back(form, 503)
    if outcome is rules_db.Added.USER_FULL:
        form.form_errors.append(f"You have {config['USER_MAX_LEVEL_RULES']} price alerts, the most one account may "
                                "have (USER_MAX_LEVEL_RULES); delete one first.")
        return _back(form, 409)
    flash(f"Price alert added: {symbol} {form.direction.data} {level:g}.", "success")
    return _redirect(form.back.data, symbol)


def _refused_delete(back: str | None, symbol: str | None, message: str, status: int) -> tuple[str, int]:
    """The page the delete button was on, saying why nothing was deleted."""
    flash(message, "error")
    if back == "dashboard" and symbol and is_registered(normal_ticker(symbol)):
        return dashboard_page(normal_ticker(symbol), status=status)
    return account_page_with(LevelRuleForm(formdata=None, back="account"), status)


@bp.post("/alerts/levels/<rule_id>/delete")
def delete(rule_id: str) -> Response | tuple[str, int]:
    if g.user is None:
        return redirect(url_for("auth.login", next="/account"))
    form = DeleteLevelForm()
    symbol = request.form.get("symbol")
    if not form.validate_on_submit():
        return _refused_delete(form.back.data, symbol, "Form expired or not sent from this site; reload and try "
                                                       "again.", 400)
    try:
        deleted = rules_db.delete_level_rule(get_mongo(), str(g.user["_id"]), rule_id)
    except MONGO_ERRORS:
        return _refused_delete(form.back.data, symbol, UNAVAILABLE["mongodb"], 503)
    if not deleted:  # none, or another user's: the same answer, so ids of others are not confirmed
        return _refused_delete(form.back.data, symbol, "No such price alert among yours.", 404)
    flash("Price alert deleted.", "success")
    return _redirect(form.back.data, symbol)
