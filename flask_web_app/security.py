"""Secret key resolution and the security headers every response carries."""

from __future__ import annotations

import contextlib
import os
import secrets
import tempfile
from pathlib import Path

PLACEHOLDER_SECRET = "change-me"
SECRET_FILE = "secret_key"
MIN_SECRET_LENGTH = 32
HSTS = "max-age=31536000; includeSubDomains"


class InsecureConfigError(RuntimeError):
    """The app must not start with this configuration."""


def resolve_secret_key(configured: str, debug: bool, instance_path: str | os.PathLike[str]) -> str:
    """The session signing key.

    - FLASK_SECRET_KEY set: used as is when at least 32 characters; a shorter one
      (or the documented placeholder "change-me") is refused unless FLASK_DEBUG:
      it signs the CSRF tokens and the confirmation links, and a short key can be guessed.
    - empty: a random key generated once and kept in <instance>/secret_key, so
      every gunicorn worker and every restart signs with the same key.
    """
    key = configured.strip()
    if key and len(key) < MIN_SECRET_LENGTH and not debug:
        what = 'the placeholder "change-me"' if key == PLACEHOLDER_SECRET else f"only {len(key)} characters long"
        raise InsecureConfigError(
            f"FLASK_SECRET_KEY is {what}: set a random value of at least {MIN_SECRET_LENGTH} characters "
            "(python -c 'import secrets; print(secrets.token_hex(32))') or leave it empty "
            "to have one generated, or set FLASK_DEBUG=true for local development"
        )
    if key:
        return key
    return _persistent_key(Path(instance_path))


def _persistent_key(folder: Path) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / SECRET_FILE
    if not path.exists():
        # Write to a temporary file, then link it into place: link fails if the
        # file exists, so of several workers starting together exactly one key
        # wins and nobody ever reads a half-written file.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".secret-")
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                fh.write(secrets.token_hex(32))
            os.chmod(tmp, 0o600)
            with contextlib.suppress(FileExistsError):  # another worker won: use its key
                os.link(tmp, path)
        finally:
            os.unlink(tmp)
    key = path.read_text(encoding="ascii").strip()
    if len(key) < 32:
        raise InsecureConfigError(f"{path} holds a key shorter than 32 characters; delete it to have a new one made")
    return key


def content_security_policy(nonce: str) -> str:
    """Scripts only from this origin (or nonce'd); no framing; no plugins.

    style-src allows inline styles: plotly.js injects <style> rules and sets
    style attributes while drawing (tried: a strict style-src blocks part of
    its drawing even with its stylesheet linked). Scripts, the dangerous part,
    stay strict: no inline script, no eval.
    """
    return "; ".join([
        "default-src 'self'",
        f"script-src 'self' 'nonce-{nonce}'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'self'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ])


def security_headers(nonce: str, https: bool = False) -> dict[str, str]:
    headers = {
        "Content-Security-Policy": content_security_policy(nonce),
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        "Referrer-Policy": "same-origin",
        "Cross-Origin-Opener-Policy": "same-origin",
    }
    if https:  # only when served over TLS: a browser then refuses plain http for a year
        headers["Strict-Transport-Security"] = HSTS
    return headers
