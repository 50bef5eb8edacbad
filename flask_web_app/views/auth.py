"""Accounts: /register, /login, /logout, /account (users live in MongoDB)."""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from common.clock import utc_now
from database.mongo import users
from database.mongo.alerts import deliveries_for as alert_deliveries_of
from flask_web_app.db import MONGO_ERRORS, UNAVAILABLE, get_mongo, stores
from flask_web_app.forms import AccountForm, LoginForm, LogoutForm, PasswordForm, RegisterForm
from flask_web_app.validation import dummy_hash, hash_password, verify_password

bp = Blueprint("auth", __name__)

# A client address may fail this many times more than one email may: several
# people can share an address (NAT), but not without bound.
ADDRESS_FACTOR = 4


@bp.before_app_request
def load_user() -> None:
    g.user = None
    uid = session.get("uid")
    if uid is None:
        return
    try:
        user = users.find_by_id(get_mongo(), uid)
    except MONGO_ERRORS:
        return  # pages still render; they show MongoDB as unreachable
    # The session also carries a fingerprint of the password hash: changing
    # the password logs out every other session.
    if user is None or session.get("pwv") != user["password_hash"][-16:]:
        session.clear()
        return
    g.user = user


def _start_session(user: dict[str, Any]) -> None:
    session.clear()  # a fresh session on login: no fixation
    session["uid"] = str(user["_id"])
    session["pwv"] = user["password_hash"][-16:]
    session.permanent = True


def _symbol_choices() -> list[tuple[str, str]]:
    return [(s, s) for s in current_app.config["SYMBOLS"]]


def _safe_next(target: str | None) -> str:
    # Only same-site paths: never bounce a user to another host after login.
    # Browsers read "\" as "/" and drop tabs/newlines, so "/\evil.example" or
    # "/<tab>/evil.example" would become "//evil.example": refuse those characters.
    if (target and target.startswith("/") and not target.startswith("//") and not urlsplit(target).netloc
            and "\\" not in target and not any(ord(ch) <= 0x20 or ord(ch) == 0x7F for ch in target)):
        return target
    return url_for("pages.index")


def _unavailable(template: str, form: Any, status: int = 503) -> tuple[str, int]:
    return render_template(template, form=form, store_error=UNAVAILABLE["mongodb"]), status


@bp.route("/register", methods=["GET", "POST"])
def register() -> Response | str | tuple[str, int]:
    form = RegisterForm()
    form.watchlist.choices = _symbol_choices()
    if request.method == "GET":
        return render_template("register.html", form=form)
    if not form.validate_on_submit():
        return render_template("register.html", form=form), 400
    if not stores().ensure_indexes():
        return _unavailable("register.html", form)
    try:
        uid = users.create_user(
            get_mongo(), email=form.email.data, name=form.name.data,
            password_hash=hash_password(form.password.data), watchlist=form.watchlist.data or [],
            digest_opt_in=form.digest_opt_in.data, alert_opt_in=form.alert_opt_in.data,
            created_at=utc_now(),
        )
        user = users.find_by_id(get_mongo(), uid)
    except users.EmailTakenError:
        form.email.errors = [*form.email.errors, "An account with this email already exists; log in instead."]
        return render_template("register.html", form=form), 400
    except MONGO_ERRORS:
        return _unavailable("register.html", form)
    assert user is not None
    _start_session(user)
    flash(f"Welcome, {user['name']}: your account is ready.", "success")
    return redirect(url_for("auth.account"))


def _throttle_keys(email: str) -> list[tuple[str, int]]:
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    return [(f"email:{email}", limit), (f"addr:{request.remote_addr or '?'}", limit * ADDRESS_FACTOR)]


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    form = LoginForm()
    if request.method == "GET":
        return render_template("login.html", form=form, next=request.args.get("next", ""))
    next_url = request.form.get("next", "")
    if not form.validate_on_submit():
        return render_template("login.html", form=form, next=next_url), 400
    email = form.email.data
    now = utc_now()
    window = timedelta(seconds=current_app.config["LOGIN_LOCKOUT_SECONDS"])
    try:
        db = get_mongo()
        for key, limit in _throttle_keys(email):
            count, until = users.failed_login_count(db, key, now)
            if count >= limit and until is not None:
                minutes = max(1, int((until - now).total_seconds() + 59) // 60)
                form.form_errors.append(
                    f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
                return render_template("login.html", form=form, next=next_url), 429
        user = users.find_by_email(db, email)
        # Check a dummy hash for unknown emails: same work, so timing does not tell.
        ok = verify_password(user["password_hash"] if user else dummy_hash(), form.password.data)
        if not (user and ok):
            for key, _limit in _throttle_keys(email):
                users.record_failed_login(db, key, now, window)
            form.form_errors.append("Wrong email or password.")
            return render_template("login.html", form=form, next=next_url), 401
        users.clear_failed_logins(db, f"email:{email}")
    except MONGO_ERRORS:
        return render_template("login.html", form=form, next=next_url, store_error=UNAVAILABLE["mongodb"]), 503
    _start_session(user)
    flash(f"Logged in as {user['email']}.", "success")
    return redirect(_safe_next(next_url))


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response | str:
    form = LogoutForm()
    if request.method == "POST" and form.validate_on_submit():
        session.clear()
        flash("Logged out.", "success")
        return redirect(url_for("pages.index"))
    # GET (or a bad token) only shows the button: logging out changes state,
    # so it takes a POST with a CSRF token.
    return render_template("logout.html", form=form)


def _login_required() -> Response | None:
    if g.user is None:
        return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
    return None


def _account_data(user: dict[str, Any]) -> dict[str, Any]:
    return {"name": user["name"], "watchlist": user.get("watchlist", []),
            "digest_opt_in": user.get("digest_opt_in", False), "alert_opt_in": user.get("alert_opt_in", False),
            **{k: user.get(k) for k in users.ALERT_RULE_FIELDS}}


def _account_page(form: AccountForm, pw_form: PasswordForm, user: dict[str, Any], status: int = 200,
                  store_error: str | None = None) -> tuple[str, int]:
    """The account page with the system's alert settings and the user's latest alerts."""
    recent = None  # unavailable: the form still works; the list says so
    if store_error is None:
        with contextlib.suppress(*MONGO_ERRORS):
            recent = alert_deliveries_of(get_mongo(), str(user["_id"]), limit=20)
    config = current_app.config
    system = {"price": config["PRICE_CHANGE_THRESHOLD"], "volume": config["VOLUME_THRESHOLD_MULTIPLIER"],
              "cap": config["ALERT_USER_DAILY_CAP"]}
    return render_template("account.html", form=form, pw_form=pw_form, user=user, deliveries=recent,
                           system=system, store_error=store_error), status


@bp.route("/account", methods=["GET", "POST"])
def account() -> Response | str | tuple[str, int]:
    if (redirect_to := _login_required()) is not None:
        return redirect_to
    user = g.user
    form = AccountForm(data=None if request.method == "POST" else _account_data(user))
    form.watchlist.choices = _symbol_choices()
    pw_form = PasswordForm()
    if request.method == "GET":
        return _account_page(form, pw_form, user)
    if not form.validate_on_submit():
        return _account_page(form, pw_form, user, 400)
    try:
        users.update_profile(get_mongo(), str(user["_id"]), name=form.name.data, watchlist=form.watchlist.data or [],
                             digest_opt_in=form.digest_opt_in.data, alert_opt_in=form.alert_opt_in.data,
                             alert_rules=form.alert_rules())
    except MONGO_ERRORS:
        return _account_page(form, pw_form, user, 503, UNAVAILABLE["mongodb"])
    flash("Account saved.", "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/password")
def change_password() -> Response | str | tuple[str, int]:
    if (redirect_to := _login_required()) is not None:
        return redirect_to
    user = g.user
    form = AccountForm(data=_account_data(user))
    form.watchlist.choices = _symbol_choices()
    pw_form = PasswordForm()
    pw_form.password_context = (user["email"], user["name"])  # type: ignore[attr-defined]
    if not pw_form.validate_on_submit():
        return _account_page(form, pw_form, user, 400)
    if not verify_password(user["password_hash"], pw_form.current.data):
        pw_form.current.errors = [*pw_form.current.errors, "That is not your current password."]
        return _account_page(form, pw_form, user, 400)
    try:
        new_hash = hash_password(pw_form.password.data)
        users.set_password_hash(get_mongo(), str(user["_id"]), new_hash)
    except MONGO_ERRORS:
        return _account_page(form, pw_form, user, 503, UNAVAILABLE["mongodb"])
    user["password_hash"] = new_hash
    _start_session(user)
    flash("Password changed; other sessions are logged out.", "success")
    return redirect(url_for("auth.account"))
