"""Signed session cookies and CSRF tokens (HMAC-SHA256, stdlib only).

The cookie carries ``user_id.epoch.issued_at.signature``; bumping the user's ``session_epoch`` signs them
out everywhere. The CSRF token of a form is an HMAC of the session cookie, so it is bound to the session;
an API call that changes state with the cookie sends it as ``X-CSRF-Token``, or comes from this site's
``Origin`` (:func:`same_site_write`).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass

from stopnet.config import Settings
from stopnet.core.keys import installation_secret

COOKIE = "stopnet_session"
CSRF_HEADER = "x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def secret_key(settings: Settings) -> bytes:
    """The key that signs cookies: the installation's secret (:mod:`stopnet.core.keys`)."""
    return installation_secret(settings)


@dataclass(frozen=True)
class SessionData:
    user_id: int
    epoch: int
    issued_at: int


def _sign(key: bytes, payload: str) -> str:
    return hmac.new(key, payload.encode(), hashlib.sha256).hexdigest()


def make_cookie(key: bytes, user_id: int, epoch: int) -> str:
    payload = f"{user_id}.{epoch}.{int(time.time())}"
    return f"{payload}.{_sign(key, payload)}"


def read_cookie(key: bytes, value: str | None, max_age_s: int) -> SessionData | None:
    if not value or value.count(".") != 3:
        return None
    payload, sig = value.rsplit(".", 1)
    if not hmac.compare_digest(sig, _sign(key, payload)):
        return None
    try:
        user_id, epoch, issued = (int(x) for x in payload.split("."))
    except ValueError:
        return None
    if time.time() - issued > max_age_s:
        return None
    return SessionData(user_id, epoch, issued)


def csrf_token(key: bytes, cookie: str) -> str:
    return _sign(key, "csrf:" + cookie)


def check_csrf(key: bytes, cookie: str | None, token: str | None) -> bool:
    return bool(cookie and token and hmac.compare_digest(csrf_token(key, cookie), token))


def same_site_write(key: bytes, cookie: str, origin: str | None, own_origin: str, token: str | None) -> bool:
    """May a request that changes state on the strength of the session ``cookie`` go ahead?

    A foreign ``Origin`` (another site, or ``null``) never; this site's own ``Origin`` (sent by browsers
    with every POST, PUT, PATCH and DELETE) or the session's CSRF token in ``X-CSRF-Token`` is needed.
    """
    if origin is not None:
        return origin.rstrip("/").lower() == own_origin.lower()
    return check_csrf(key, cookie, token)
