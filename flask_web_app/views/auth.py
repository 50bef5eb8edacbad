"""Accounts: /register, /confirm, /login, /logout, /account (users live in MongoDB,
sessions too: flask_web_app/sessions.py)."""

from __future__ import annotations

import contextlib
import smtplib
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, session, url_for
from werkzeug.wrappers import Response

from common.clock import utc_now
from database.mongo import sessions as web_sessions
from database.mongo import user_rules as level_rules_db
from database.mongo import users
from database.mongo.alerts import deliveries_for as alert_deliveries_of
from flask_web_app import account_mail
from flask_web_app.db import MONGO_ERRORS, UNAVAILABLE, get_mongo, known_symbols, stores
from flask_web_app.forms import (
    AccountForm,
    ConfirmAgainForm,
    DeleteLevelForm,
    LevelRuleForm,
    LoginForm,
    LogoutForm,
    PasswordForm,
    RegisterForm,
)
from flask_web_app.sessions import ServerSession
from flask_web_app.validation import dummy_hash, hash_password, verify_password
from logs.logger_config import get_logger

bp = Blueprint("auth", __name__)
log = get_logger("flask.auth")

# A client address may make this many times more attempts than one (email, address)
# pair may: several people can share an address (NAT), but not without bound.
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
    if user is None:
        session.clear()
        return
    g.user = user


def _server_session() -> ServerSession:
    assert isinstance(session, ServerSession)
    return session


def _start_session(user: dict[str, Any]) -> None:
    _server_session().regenerate()  # a new id on login: no fixation
    session["uid"] = str(user["_id"])
    session.permanent = True


def _symbol_choices() -> list[tuple[str, str]]:
    return [(s, s) for s in known_symbols()]


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


def _send(msg: Any, filename: str) -> None:
    """Mail from a request: a failure is logged, never shown (the page must not differ)."""
    config = current_app.config
    try:
        where = account_mail.deliver(current_app.extensions["mailer"], config["OUTBOX_DIR"], msg, filename)
    except (smtplib.SMTPException, OSError) as exc:
        log.error("account mail to %r not sent: %s", msg["To"], exc)
        return
    log.info("account mail %r to %r: %s", msg["Subject"], msg["To"], where)


def _send_confirmation(user_id: str, email: str, name: str) -> None:
    token = account_mail.make_token(current_app.config["SECRET_KEY"], user_id, email)
    link = url_for("auth.confirm", token=token, _external=True)
    _send(account_mail.confirmation_message(current_app.config["EMAIL_SENDER"], email, name, link),
          f"confirm-{email}-{utc_now():%Y%m%dT%H%M%S%f}.eml")


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
    email = form.email.data
    password_hash = hash_password(form.password.data)  # also for a taken address: the same work
    try:
        uid = users.create_user(
            get_mongo(), email=email, name=form.name.data, password_hash=password_hash,
            watchlist=form.watchlist.data or [], digest_opt_in=form.digest_opt_in.data,
            alert_opt_in=form.alert_opt_in.data, created_at=utc_now(),
        )
    except users.EmailTakenError:
        # One answer whether or not the address has an account: its owner gets a mail instead.
        _send(account_mail.already_registered_message(current_app.config["EMAIL_SENDER"], email,
                                                      url_for("auth.login", _external=True)),
              f"registered-again-{email}-{utc_now():%Y%m%dT%H%M%S%f}.eml")
    except MONGO_ERRORS:
        return _unavailable("register.html", form)
    else:
        _send_confirmation(uid, email, form.name.data)
    return render_template("registered.html", email=email)


@bp.get("/confirm/<token>")
def confirm(token: str) -> str | tuple[str, int]:
    found = account_mail.read_token(current_app.config["SECRET_KEY"], token)
    try:
        ok = found is not None and users.confirm_email(get_mongo(), found[0], found[1], utc_now())
    except MONGO_ERRORS:
        return render_template("error.html", code=503, title="Try again in a moment",
                               message=UNAVAILABLE["mongodb"]), 503
    if not ok:
        return render_template("error.html", code=400, title="Link invalid or expired",
                               message="This confirmation link is not valid (or is older than two days). "
                                       "Log in and ask for a new one on your account page."), 400
    return render_template("confirmed.html")


def _throttle_keys(email: str) -> list[tuple[str, int]]:
    """(key, limit) of the counters one login attempt adds to: this (account, client address)
    pair, and this client address. The owner at another address is never slowed by them."""
    limit = current_app.config["LOGIN_MAX_FAILURES"]
    addr = request.remote_addr or "?"
    return [(f"pair:{email}|{addr}", limit), (f"addr:{addr}", limit * ADDRESS_FACTOR)]


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
    keys = _throttle_keys(email)
    try:
        db = get_mongo()
        # Counted before the check, atomically: of parallel attempts only `limit` are checked.
        # In order, stopping at the first counter over its limit: an attempt refused by the
        # pair's counter costs no check, so it is not counted against the address (counting
        # both for every attempt would let parallel attempts block each other below the limit).
        blocked = None
        for key, limit in keys:
            count, until = users.count_attempt(db, key, now, window)
            if count > limit:
                blocked = until
                break
        if blocked is not None:
            minutes = max(1, int((blocked - now).total_seconds() + 59) // 60)
            form.form_errors.append(
                f"Too many failed logins. Try again in {minutes} minute{'s' if minutes > 1 else ''}.")
            return render_template("login.html", form=form, next=next_url), 429
        user = users.find_by_email(db, email)
        # Check a dummy hash for unknown emails: same work, so timing does not tell.
        ok = verify_password(user["password_hash"] if user else dummy_hash(), form.password.data)
        if not (user and ok):
            form.form_errors.append("Wrong email or password.")
            return render_template("login.html", form=form, next=next_url), 401
        users.clear_attempts(db, keys[0][0])
        users.forgive_attempt(db, keys[1][0])  # a success is not a failure of the address
    except MONGO_ERRORS:
        return render_template("login.html", form=form, next=next_url, store_error=UNAVAILABLE["mongodb"]), 503
    _start_session(user)
    flash(f"Logged in as {user['email']}.", "success")
    return redirect(_safe_next(next_url))


@bp.route("/logout", methods=["GET", "POST"])
def logout() -> Response | str:
    form = LogoutForm()
    if request.method == "POST" and form.validate_on_submit():
        _server_session().regenerate()  # the record is deleted: the old cookie is refused from now on
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
                  store_error: str | None = None, level_form: LevelRuleForm | None = None) -> tuple[str, int]:
    """The account page with the system's alert settings, the user's price levels and latest alerts."""
    recent = levels = None  # unavailable: the forms still work; the lists say so
    if store_error is None:
        with contextlib.suppress(*MONGO_ERRORS):
            recent = alert_deliveries_of(get_mongo(), str(user["_id"]), limit=20)
            levels = level_rules_db.level_rules_of(get_mongo(), str(user["_id"]))
    config = current_app.config
    system = {"price": config["PRICE_CHANGE_THRESHOLD"], "volume": config["VOLUME_THRESHOLD_MULTIPLIER"],
              "cap": config["ALERT_USER_DAILY_CAP"]}
    return render_template("account.html", form=form, pw_form=pw_form, user=user, deliveries=recent,
                           system=system, store_error=store_error, confirm_form=ConfirmAgainForm(),
                           levels=levels, level_form=level_form or LevelRuleForm(formdata=None, back="account"),
                           delete_form=DeleteLevelForm(formdata=None, back="account"),
                           level_symbols=known_symbols()), status


def account_page_with(level_form: LevelRuleForm, status: int) -> tuple[str, int]:
    """The account page showing a refused price-level form (flask_web_app/views/levels.py)."""
    form, pw_form = _account_forms(g.user, posted_profile=False)
    return _account_page(form, pw_form, g.user, status, level_form=level_form)


def _account_forms(user: dict[str, Any], posted_profile: bool) -> tuple[AccountForm, PasswordForm]:
    """The account page's two forms: the profile (as posted, or as stored) and the password form."""
    # Not posted (a GET, or the page shown again after another form's POST, e.g. a refused price
    # level): the stored profile, never that POST's fields, or its absent checkboxes read as unticked.
    form = AccountForm() if posted_profile else AccountForm(formdata=None, data=_account_data(user))
    form.watchlist.choices = _symbol_choices()
    pw_form = PasswordForm()
    pw_form.password_context = (user["email"], user["name"])  # type: ignore[attr-defined]
    return form, pw_form


@bp.route("/account", methods=["GET", "POST"])
def account() -> Response | str | tuple[str, int]:
    if (redirect_to := _login_required()) is not None:
        return redirect_to
    user = g.user
    form, pw_form = _account_forms(user, posted_profile=request.method == "POST")
    if request.method == "GET":
        return _account_page(form, pw_form, user)
    if not form.validate_on_submit():
        return _account_page(form, pw_form, user, 400)
    try:
        users.update_profile(get_mongo(), str(user["_id"]), name=form.name.data, watchlist=form.watchlist.data or [],
                             digest_opt_in=form.digest_opt_in.data, alert_opt_in=form.alert_opt_in.data,
                             alert_rules=form.alert_rules())
        level_rules_db.bump_version(get_mongo())  # the alerts service reads the thresholds again
    except MONGO_ERRORS:
        return _account_page(form, pw_form, user, 503, UNAVAILABLE["mongodb"])
    flash("Account saved.", "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/password")
def change_password() -> Response | str | tuple[str, int]:
    if (redirect_to := _login_required()) is not None:
        return redirect_to
    user = g.user
    form, pw_form = _account_forms(user, posted_profile=False)
    if not pw_form.validate_on_submit():
        return _account_page(form, pw_form, user, 400)
    if not verify_password(user["password_hash"], pw_form.current.data):
        pw_form.current.errors = [*pw_form.current.errors, "That is not your current password."]
        return _account_page(form, pw_form, user, 400)
    try:
        new_hash = hash_password(pw_form.password.data)
        users.set_password_hash(get_mongo(), str(user["_id"]), new_hash)
        # Every session of the user ends (this one continues under a new id below).
        web_sessions.delete_user_sessions(get_mongo(), str(user["_id"]))
    except MONGO_ERRORS:
        return _account_page(form, pw_form, user, 503, UNAVAILABLE["mongodb"])
    user["password_hash"] = new_hash
    _start_session(user)
    flash("Password changed; other sessions are logged out.", "success")
    return redirect(url_for("auth.account"))


@bp.post("/account/confirm")
def confirm_again() -> Response | str | tuple[str, int]:
    """A new confirmation link for the logged-in user's address."""
    if (redirect_to := _login_required()) is not None:
        return redirect_to
    if not ConfirmAgainForm().validate_on_submit():
        return render_template("error.html", code=400, title="Form expired",
                               message="Reload the account page and try again."), 400
    user = g.user
    if not user.get("email_confirmed"):
        _send_confirmation(str(user["_id"]), user["email"], user["name"])
    flash(f"A confirmation link was sent to {user['email']}.", "success")
    return redirect(url_for("auth.account"))
