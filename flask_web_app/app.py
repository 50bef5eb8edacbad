"""The Flask dashboard: `create_app(settings=None)` (served by gunicorn on :5000).

    gunicorn --config flask_web_app/gunicorn.conf.py "flask_web_app.app:create_app()"

With no settings given (the container) it reads them from the environment and
sets up logging for the "flask" service; tests pass their own Settings.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, Response, g, render_template, request, send_file
from flask_wtf.csrf import CSRFError, CSRFProtect
from werkzeug.exceptions import HTTPException
from werkzeug.middleware.proxy_fix import ProxyFix

from common.mailer import SmtpMailer
from common.source_status import configured_sources
from common.webhook import shown_reason
from config import Settings, get_settings
from flask_web_app import db
from flask_web_app.live_feed import LiveFeed
from flask_web_app.plotly_assets import PLOTLY_JS, VERSION
from flask_web_app.present import is_simulated, utc_iso, utc_text
from flask_web_app.security import resolve_secret_key, security_headers
from flask_web_app.sessions import MongoSessionInterface
from flask_web_app.tickers import TickerCheck
from flask_web_app.views import api, auth, levels, pages, stream, symbols
from logs.logger_config import get_logger, setup_logging

log = get_logger("flask_web_app.app")
csrf = CSRFProtect()


def create_app(settings: Settings | None = None, *, instance_path: str | None = None) -> Flask:
    if settings is None:
        settings = get_settings()
        setup_logging("flask", settings)
    app = Flask(__name__, instance_path=instance_path, instance_relative_config=True)
    app.config.update(
        SECRET_KEY=resolve_secret_key(settings.flask_secret_key, settings.flask_debug, app.instance_path),
        DEBUG=settings.flask_debug,
        REFRESH_SECONDS=settings.flask_refresh_seconds,
        QUOTE_SOURCES_TEXT=configured_sources([str(s) for s in settings.quote_sources],
                                              bool(settings.alpha_vantage_api_key)),
        # Pages show times in the viewer's zone and the market's (static/js/localtime.js).
        MARKET_TIMEZONE=settings.market_timezone,
        MAX_SYMBOLS=settings.max_symbols,
        MAX_SYMBOLS_PER_USER=settings.max_symbols_per_user,
        LOGIN_MAX_FAILURES=settings.flask_login_max_failures,
        LOGIN_LOCKOUT_SECONDS=settings.flask_login_lockout_seconds,
        # The floors and defaults of a user's own alert rules (account page).
        PRICE_CHANGE_THRESHOLD=settings.price_change_threshold,
        VOLUME_THRESHOLD_MULTIPLIER=settings.volume_threshold_multiplier,
        ALERT_USER_DAILY_CAP=settings.alert_user_daily_cap,
        USER_MAX_LEVEL_RULES=settings.user_max_level_rules,
        USER_LEVEL_REARM_PERCENT=settings.user_level_rearm_percent,
        USER_LEVEL_MAX_FACTOR=settings.user_level_max_factor,
        WEBHOOK_ALLOWED_HTTP_HOSTS=list(settings.webhook_allowed_http_hosts),
        WEBHOOK_ALLOWED_INTERNAL_HOSTS=list(settings.webhook_allowed_internal_hosts),
        # Confirmation mail: sent through SMTP, or written to the digest's outbox without it.
        EMAIL_SENDER=settings.email_sender,
        OUTBOX_DIR=settings.news_outbox_dir,
        HTTPS=settings.flask_https,
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.flask_https,
        # A session lasts 14 days from login (one database write per login, not per page).
        SESSION_REFRESH_EACH_REQUEST=False,
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        WTF_CSRF_TIME_LIMIT=None,  # the token lives as long as the session
        MAX_CONTENT_LENGTH=64 * 1024,
        JSON_SORT_KEYS=False,
    )
    csrf.init_app(app)
    stores = db.init_app(app, settings)
    stores.ensure_indexes()  # logs and carries on when MongoDB is not up yet
    app.session_interface = MongoSessionInterface(stores.mongo)
    app.extensions["mailer"] = SmtpMailer(settings)
    app.extensions["ticker_check"] = TickerCheck(settings)
    # The push channel: one MongoDB reader per process, started by the first stream.
    app.extensions["live_feed"] = LiveFeed(stores.mongo, settings.stream_max_per_process,
                                           settings.stream_poll_seconds, settings.stream_heartbeat_seconds)
    if settings.flask_trusted_proxies:
        # Client address, scheme and host from X-Forwarded-* only as set by that many proxies:
        # otherwise anyone could pick the address the login throttle counts.
        n = settings.flask_trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]

    app.register_blueprint(pages.bp)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api.bp)
    app.register_blueprint(symbols.bp)
    app.register_blueprint(stream.bp)
    app.register_blueprint(levels.bp)
    app.register_blueprint(api.health_bp)

    @app.get("/vendor/plotly.min.js")
    def plotly_js() -> Response:
        # Served from the installed plotly package: the dashboard works offline.
        return send_file(PLOTLY_JS, mimetype="text/javascript", max_age=86400, conditional=True)

    @app.before_request
    def _nonce() -> None:
        g.csp_nonce = secrets.token_urlsafe(16)

    @app.after_request
    def _headers(response: Response) -> Response:
        for name, value in security_headers(g.get("csp_nonce", "none"), app.config["HTTPS"]).items():
            response.headers.setdefault(name, value)
        if request.path.startswith("/api/") or request.path == "/healthz":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # A webhook failure as users may see it (a generic reason, never the raw error text).
    app.add_template_filter(shown_reason, "webhook_reason")
    # Instants for <time datetime> and their UTC text (static/js/localtime.js localises them).
    app.add_template_filter(utc_iso, "utc_iso")
    app.add_template_filter(utc_text, "utc_text")

    @app.context_processor
    def _globals() -> dict[str, Any]:
        return {"csp_nonce": g.get("csp_nonce", ""), "current_user": g.get("user"), "is_simulated": is_simulated,
                "plotly_version": VERSION,
                "market_tz": app.config["MARKET_TIMEZONE"]}

    @app.errorhandler(CSRFError)
    def _csrf(exc: CSRFError) -> tuple[str, int]:
        return render_template("error.html", code=400, title="Form expired or not sent from this site",
                               message=f"{exc.description} Reload the page and submit the form again."), 400

    @app.errorhandler(HTTPException)
    def _http(exc: HTTPException) -> tuple[Any, int]:
        code = exc.code or 500
        if request.path.startswith("/api/"):
            return api.error(code, exc.description or exc.name)
        return render_template("error.html", code=code, title=exc.name, message=exc.description), code

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> tuple[Any, int]:
        log.exception("unhandled error on %s %s", request.method, request.path)
        if request.path.startswith("/api/"):
            return api.error(500, "internal error")
        return render_template("error.html", code=500, title="Something went wrong",
                               message="The error was logged. Try again in a moment."), 500

    log.info("web app ready: default symbols %s (and those users add, up to %d)",
             ", ".join(settings.stock_symbols), settings.max_symbols)
    return app
