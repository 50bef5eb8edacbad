"""Server-side sessions in MongoDB (web_sessions): the cookie holds only a random id.

Nothing about the user (email, password hash, flashed messages) travels in the
cookie, and a session ends for real: logout deletes its record, a password change
deletes the user's other records, so an old cookie is refused afterwards.

A request without a cookie costs no database access, and a session is only stored
once something is put in it (a CSRF token, a login).
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from flask import Flask, Request, Response
from flask.sessions import SessionInterface, SessionMixin
from werkzeug.datastructures import CallbackDict

from common.clock import utc_now
from database.mongo import sessions as store
from flask_web_app.db import MONGO_ERRORS
from logs.logger_config import get_logger

log = get_logger("flask.sessions")
# A session before login (a CSRF token, a flashed message) is kept this long on the server;
# its cookie lasts as long as the browser.
ANONYMOUS_LIFETIME = timedelta(hours=12)


class ServerSession(CallbackDict, SessionMixin):  # type: ignore[type-arg]
    def __init__(self, initial: dict[str, Any] | None = None, token: str | None = None) -> None:
        def on_update(_self: Any) -> None:
            self.modified = True

        super().__init__(initial, on_update)
        self.token = token
        self.new = token is None
        self.modified = False
        self.rotate = False  # a new id at the next save (login, logout: no fixation)

    def regenerate(self) -> None:
        """Empty the session and give it a new id; the old record is deleted."""
        self.clear()
        self.rotate = True

    @property
    def user_id(self) -> str | None:
        uid = self.get("uid")
        return uid if isinstance(uid, str) else None


class MongoSessionInterface(SessionInterface):
    def __init__(self, db_getter: Any) -> None:
        self.db = db_getter  # () -> Database, resolved per request (the app's pooled client)

    def open_session(self, app: Flask, request: Request) -> ServerSession:
        token = request.cookies.get(self.get_cookie_name(app))
        if not token or len(token) > 100:
            return ServerSession()
        try:
            data = store.load(self.db(), token, utc_now())
        except MONGO_ERRORS as exc:
            log.warning("session not read (MongoDB): %s", exc)
            return ServerSession()
        return ServerSession() if data is None else ServerSession(data, token)

    def save_session(self, app: Flask, session: SessionMixin, response: Response) -> None:
        assert isinstance(session, ServerSession)
        name, domain, path = self.get_cookie_name(app), self.get_cookie_domain(app), self.get_cookie_path(app)
        try:
            if session.token and (session.rotate or not session):
                store.delete(self.db(), session.token)  # the old id is refused from now on
            if not session:
                if session.token or session.rotate:
                    response.delete_cookie(name, domain=domain, path=path)
                return
            if session.token is None or session.rotate:
                session.token = secrets.token_urlsafe(32)
                session.rotate, session.modified = False, True
            if not (session.modified or self.should_set_cookie(app, session)):
                return
            expires = self.get_expiration_time(app, session)
            store.save(self.db(), session.token, dict(session), session.user_id,
                       expires or utc_now() + ANONYMOUS_LIFETIME)
        except MONGO_ERRORS as exc:
            log.warning("session not saved (MongoDB): %s", exc)
            return
        response.vary.add("Cookie")
        response.set_cookie(name, session.token, expires=expires, httponly=self.get_cookie_httponly(app),
                            domain=domain, path=path, secure=self.get_cookie_secure(app),
                            samesite=self.get_cookie_samesite(app))
