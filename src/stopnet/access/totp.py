"""The second factor: TOTP (RFC 6238), recovery codes, and the short-lived signed tokens of sign-in steps.

* TOTP: SHA-1, 6 digits, 30-second steps (what every authenticator app reads from the QR code); a code is
  accepted for the step before, the current one and the one after (clock drift), and never twice: the
  last accepted step is stored, so a code seen over a shoulder cannot be replayed.
* Recovery codes: 10 per user, 80 random bits each (``abcd-efgh-ijkl-mnop``), stored as SHA-256 only
  (80 bits cannot be brute-forced from the hash), each usable once.
* Signed tokens (HMAC-SHA256 with the application's secret key, a purpose label in the signed text): the
  "pending sign-in" cookie between the password and the code, and the enrolment token that carries a
  new secret from the enrolment page to its confirmation without storing anything before it is confirmed.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass

import pyotp
import segno

ISSUER = "stopnet"
STEP_S = 30
DIGITS = 6
DRIFT_STEPS = 1
RECOVERY_CODES = 10
PENDING_MAX_AGE_S = 300  # the code (or the new password) must follow the password within 5 minutes
ENROL_MAX_AGE_S = 900


def new_secret() -> str:
    """A random 160-bit TOTP secret, base32 (32 characters)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str) -> str:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S).provisioning_uri(
        name=account, issuer_name=ISSUER
    )


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as inline SVG (no script, no style attribute: the CSP allows it)."""
    return str(
        segno.make(uri, error="m").svg_inline(
            scale=4, dark="#000", light="#fff", title="QR code for your authenticator app"
        )
    )


def group_secret(secret: str) -> str:
    """The secret as typed by hand: groups of four characters."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def matching_step(secret: str, code: str, last_step: int | None, now: float | None = None) -> int | None:
    """The time step ``code`` belongs to (within the drift), or None; steps <= ``last_step`` never match."""
    code = "".join(code.split())
    if len(code) != DIGITS or not code.isdigit():
        return None
    totp = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_S)
    current = int((time.time() if now is None else now) // STEP_S)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code) and (last_step is None or step > last_step):
            found = step
    return found


def looks_like_totp(code: str) -> bool:
    code = "".join(code.split())
    return len(code) == DIGITS and code.isdigit()


# ------------------------------------------------------------------------------------------ recovery codes


def new_recovery_codes(n: int = RECOVERY_CODES) -> list[str]:
    out = []
    for _ in range(n):
        raw = base64.b32encode(secrets.token_bytes(10)).decode().lower()  # 16 characters, 80 bits
        out.append("-".join(raw[i : i + 4] for i in range(0, 16, 4)))
    return out


def normalise_recovery_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def hash_recovery_code(code: str) -> str:
    return hashlib.sha256(("recovery:" + normalise_recovery_code(code)).encode()).hexdigest()


# ------------------------------------------------------------------------------------------ signed tokens


def _sign(key: bytes, purpose: str, payload: str) -> str:
    return hmac.new(key, f"{purpose}:{payload}".encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Pending:
    """A sign-in between its steps: the password was right; ``stage`` is what is still asked."""

    stage: str  # "totp" | "password"
    user_id: int
    epoch: int
    issued_at: int


PENDING_STAGES = ("totp", "password")


def make_pending(key: bytes, stage: str, user_id: int, epoch: int) -> str:
    if stage not in PENDING_STAGES:
        raise ValueError(stage)
    payload = f"{stage}.{user_id}.{epoch}.{int(time.time())}.{secrets.token_hex(8)}"
    return f"{payload}.{_sign(key, 'pending', payload)}"


def read_pending(key: bytes, value: str | None, max_age_s: int = PENDING_MAX_AGE_S) -> Pending | None:
    if not value or value.count(".") != 5:
        return None
    payload, sig = value.rsplit(".", 1)
    if not hmac.compare_digest(sig, _sign(key, "pending", payload)):
        return None
    stage, user_id, epoch, issued, _nonce = payload.split(".")
    if stage not in PENDING_STAGES:
        return None
    try:
        p = Pending(stage, int(user_id), int(epoch), int(issued))
    except ValueError:
        return None
    if not 0 <= time.time() - p.issued_at <= max_age_s:
        return None
    return p


def make_enrolment(key: bytes, user_id: int, secret: str) -> str:
    payload = f"{secret}.{int(time.time())}"
    return f"{payload}.{_sign(key, f'totp-enrol:{user_id}', payload)}"


def read_enrolment(key: bytes, user_id: int, value: str, max_age_s: int = ENROL_MAX_AGE_S) -> str | None:
    """The secret carried by an enrolment token of ``user_id``, or None (forged, another user's, expired)."""
    if value.count(".") != 2:
        return None
    payload, sig = value.rsplit(".", 1)
    if not hmac.compare_digest(sig, _sign(key, f"totp-enrol:{user_id}", payload)):
        return None
    secret, issued = payload.split(".")
    try:
        age = time.time() - int(issued)
    except ValueError:
        return None
    return secret if 0 <= age <= max_age_s else None
