"""Two-step sign-in: enrolment with a QR code, the code after the password, recovery codes, lock-out.

Real HTTP through the TestClient against a real database; codes are computed with pyotp from the secret
the enrolment page shows, as an authenticator app does.
"""

from __future__ import annotations

import html
import re
import time

import pyotp
from sqlalchemy import func, select

from stopnet.access import totp
from stopnet.access.ratelimit import (
    ACCOUNT_BACKOFF,
    ADDRESS_BACKOFF,
    FREE_FAILURES,
    FailureBackoff,
    SignInGuard,
    SignInLimits,
    SlidingWindowLimiter,
    too_many_failures,
)
from stopnet.access.service import CODE_USED
from stopnet.db.models import AuditEntry
from stopnet.db.models.access import RecoveryCode
from tests.access.conftest import (
    HTML,
    JSON,
    code_step,
    csrf_from,
    enrol,
    next_code,
    page_csrf,
    password_step,
    user_row,
)
from tests.conftest import PASSWORD


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def wrong_code(authenticator: pyotp.TOTP) -> str:
    """Six digits that are no code of the steps around now."""
    now = time.time()
    valid = {authenticator.at(now + d) for d in (-60, -30, 0, 30, 60)}
    return next(c for c in (f"{n:06d}" for n in range(123456, 999999, 7919)) if c not in valid)


def test_enrolment_page_shows_a_qr_code_and_the_secret(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    page = client.get("/account/totp", headers=HTML)
    assert page.status_code == 200
    assert "<svg" in page.text and 'class="segno"' in page.text  # inline SVG, no external image
    assert "style=" not in page.text and "<script>" not in page.text  # the CSP allows neither
    twin = client.get("/account/totp", headers=JSON).json()
    assert twin["otpauth_uri"].startswith("otpauth://totp/stopnet:fr_officer%40example.test?secret=")
    assert len(twin["secret"]) == 32
    # nothing is stored until a code confirms the enrolment
    assert user_row(db, world["fr_officer"].email).totp_secret is None


def test_enrolment_needs_a_right_code_and_shows_recovery_codes_once(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    enrolment = client.get("/account/totp", headers=JSON).json()
    authenticator = pyotp.TOTP(enrolment["secret"])
    data = {
        "enrolment_token": enrolment["enrolment_token"],
        "password": PASSWORD,
        "csrf_token": page_csrf(client),
    }
    bad = client.post("/account/totp", data={**data, "code": wrong_code(authenticator)}, headers=HTML)
    assert bad.status_code == 422
    assert "wrong code" in bad.text
    assert not user_row(db, world["fr_officer"].email).totp_enabled
    forged = {
        **data,
        "enrolment_token": enrolment["enrolment_token"].replace(enrolment["secret"][:4], "AAAA"),
    }
    r = client.post("/account/totp", data={**forged, "code": authenticator.now()}, headers=HTML)
    assert r.status_code == 409  # a token signed for another secret is refused
    ok = client.post("/account/totp", data={**data, "code": authenticator.now()}, headers=HTML)
    assert ok.status_code == 200
    assert ok.headers["cache-control"] == "no-store"
    codes = [c for c in ok.text.split("<code>")[1:]]
    assert len(codes) == 10
    user = user_row(db, world["fr_officer"].email)
    assert user.totp_enabled and user.totp_secret == enrolment["secret"]
    stored = db.scalars(select(RecoveryCode.code_hash).where(RecoveryCode.user_id == user.id)).all()
    assert len(stored) == 10
    first = codes[0].split("</code>")[0]
    assert first not in stored and totp.hash_recovery_code(first) in stored  # hashed, never in clear
    account = client.get("/account", headers=JSON).json()
    assert account["totp_enabled"] is True and account["recovery_codes_left"] == 10
    assert first not in client.get("/account", headers=HTML).text  # shown once only
    actions = db.scalars(select(AuditEntry.action).where(AuditEntry.object_id == str(user.id))).all()
    assert "totp.enable" in actions


def test_sign_in_asks_for_the_code_after_the_password(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)
    client.cookies.clear()
    r = password_step(client, officer.email, next="/operations/TEST-OP")
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login/code?next=")
    cookies = r.headers.get_list("set-cookie")
    assert not any(c.startswith("stopnet_session=") for c in cookies)  # not a session yet
    pending = next(c for c in cookies if c.startswith("stopnet_pending="))
    assert "httponly" in pending.lower() and "samesite=strict" in pending.lower()
    assert "path=/login" in pending.lower() and "max-age=300" in pending.lower()
    # the pending cookie opens nothing
    assert client.get("/", headers=HTML, follow_redirects=False).status_code == 303
    assert client.get("/api/v1/operations").status_code == 401
    done = code_step(client, next_code(authenticator), next="/operations/TEST-OP")
    assert done.status_code == 303, done.text
    assert done.headers["location"] == "/operations/TEST-OP"
    assert client.get("/", headers=HTML).status_code == 200
    entry = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.sign_in").order_by(AuditEntry.id.desc())
    ).first()
    assert entry is not None and entry.details["factor"] == "totp" and entry.actor_label == officer.email


def test_a_code_is_not_accepted_twice(client, world, signed_in):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)
    code = next_code(authenticator)
    client.cookies.clear()
    password_step(client, officer.email)
    assert code_step(client, code).status_code == 303
    client.cookies.clear()
    password_step(client, officer.email)
    replay = code_step(client, code)
    assert replay.status_code == 401
    assert "this code has already been used" in replay.text and "wrong code" not in replay.text


def test_the_code_that_turned_totp_on_says_it_was_used_and_the_next_one_signs_in(
    client, world, signed_in, db
):
    """Signing in at once after the enrolment, with the code the app still shows (same 30-second step):
    refused, saying why; the next code signs in."""
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)  # confirmed with authenticator.now()
    client.cookies.clear()
    password_step(client, officer.email)
    step = user_row(db, officer.email).totp_last_step
    same = authenticator.at(step * 30)
    r = code_step(client, same)
    assert r.status_code == 401
    assert CODE_USED in html.unescape(r.text)
    assert code_step(client, authenticator.at((step + 1) * 30)).status_code == 303


def test_password_and_code_failures_give_one_message(client, world, signed_in, app):
    """Five wrong passwords, or five wrong codes: the same answer, which says how long to wait."""
    officer, other = world["fr_officer"], world["de_officer"]
    for _ in range(5):
        assert password_step(client, other.email, "guess").status_code == 401
    password_wait = password_step(client, other.email)
    signed_in(officer)
    authenticator, _ = enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    for _ in range(5):
        assert code_step(client, wrong_code(authenticator)).status_code == 401
    code_wait = code_step(client, next_code(authenticator))
    assert password_wait.status_code == code_wait.status_code == 401

    def message(r) -> str:
        m = re.search(r'role="alert"[^>]*>([^<]*)<', r.text)
        assert m, r.text
        return re.sub(r"\d+", "N", m.group(1).strip())

    assert message(password_wait) == message(code_wait) == re.sub(r"\d+", "N", too_many_failures(60))


def test_wrong_code_is_refused_counted_and_audited(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    r = code_step(client, wrong_code(authenticator))
    assert r.status_code == 401
    assert 'id="code-error"' in r.text
    assert "stopnet_session" not in client.cookies
    user = user_row(db, officer.email)
    assert user.totp_failures == 1
    failure = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.failure").order_by(AuditEntry.id.desc())
    ).first()
    assert failure is not None and failure.object_id == str(user.id)
    assert failure.details["factor"] == "totp" and failure.details["failures"] == 1
    # the right code still works from the same page; the count starts again
    assert code_step(client, next_code(authenticator)).status_code == 303
    assert user_row(db, officer.email).totp_failures == 0


def test_five_wrong_codes_make_the_code_step_wait_with_back_off(client, world, signed_in, db, app):
    clock = Clock()
    limits = SignInLimits(SlidingWindowLimiter(1000, 60), SlidingWindowLimiter(1000, 300))
    app.state.sign_in_limits = limits
    app.state.sign_in_guard = SignInGuard(
        limits,
        per_address=FailureBackoff(FREE_FAILURES, *ADDRESS_BACKOFF, clock=clock),
        per_account=FailureBackoff(FREE_FAILURES, *ACCOUNT_BACKOFF, clock=clock),
    )
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, codes = enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    for _ in range(5):
        assert code_step(client, wrong_code(authenticator)).status_code == 401
    waiting = code_step(client, next_code(authenticator))
    assert waiting.status_code == 401
    assert too_many_failures(60) in waiting.text
    assert code_step(client, codes[0]).status_code == 401  # nor does a recovery code get past the wait
    user = user_row(db, officer.email)
    assert user.totp_failures == 5 and user.locked_until is not None  # shown to administrators
    # a right password does not clear the code failures
    client.cookies.clear()
    assert password_step(client, officer.email).status_code == 303
    assert too_many_failures(60) in code_step(client, next_code(authenticator)).text
    # once the wait has passed, one more wrong code waits twice as long (back-off)
    clock.now += 60
    assert "wrong code" in code_step(client, wrong_code(authenticator)).text
    assert too_many_failures(120) in code_step(client, next_code(authenticator)).text
    clock.now += 120
    assert code_step(client, next_code(authenticator)).status_code == 303
    assert user_row(db, officer.email).totp_failures == 0
    assert (
        db.scalar(select(func.count()).select_from(RecoveryCode).where(RecoveryCode.used_at.is_not(None)))
        == 0
    )


def test_a_recovery_code_works_once(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    _, codes = enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    ok = code_step(client, codes[3].upper().replace("-", " "))  # typed loosely: case and separators
    assert ok.status_code == 303
    entry = db.scalars(
        select(AuditEntry).where(AuditEntry.action == "auth.sign_in").order_by(AuditEntry.id.desc())
    ).first()
    assert entry is not None and entry.details["factor"] == "recovery_code"
    assert client.get("/account", headers=JSON).json()["recovery_codes_left"] == 9
    client.cookies.clear()
    password_step(client, officer.email)
    again = code_step(client, codes[3])
    assert again.status_code == 401
    assert user_row(db, officer.email).totp_failures == 1
    assert code_step(client, codes[4]).status_code == 303


def test_recovery_codes_of_another_user_do_not_work(client, world, signed_in):
    signed_in(world["fr_ncp"])
    _, ncp_codes = enrol(client)
    signed_in(world["fr_officer"])
    enrol(client)
    client.cookies.clear()
    password_step(client, world["fr_officer"].email)
    assert code_step(client, ncp_codes[0]).status_code == 401


def test_code_step_without_a_valid_pending_cookie(client, world, signed_in, app):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)
    client.cookies.clear()
    page = client.get("/login/code", headers=HTML)
    assert page.status_code == 401 and "expired" in page.text  # straight to the code page: sign in first
    password_step(client, officer.email)
    raw = client.cookies.get("stopnet_pending")
    assert raw is not None
    csrf = csrf_from(client.get("/login/code", headers=HTML).text)
    forged = "password" + raw[len("totp") :]  # another stage, same signature
    (held,) = [c for c in client.cookies.jar if c.name == "stopnet_pending"]
    client.cookies.set("stopnet_pending", forged, domain=held.domain, path=held.path)  # replaces it
    assert [c.value for c in client.cookies.jar if c.name == "stopnet_pending"] == [forged]
    r = client.post("/login/code", data={"code": next_code(authenticator), "csrf_token": csrf}, headers=HTML)
    assert r.status_code == 401 and "stopnet_session" not in client.cookies
    stale = totp.make_pending(app.state.secret, "totp", 1, 0)
    parts = stale.split(".")
    assert totp.read_pending(app.state.secret, stale) is not None
    assert totp.read_pending(app.state.secret, stale, max_age_s=-1) is None
    assert totp.read_pending(b"another key", stale) is None
    assert totp.read_pending(app.state.secret, ".".join([*parts[:-1], "0" * 64])) is None


def test_pending_sign_in_ends_when_signed_out_everywhere(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, _ = enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    user = user_row(db, officer.email)
    user.session_epoch += 1  # e.g. an administrator reset the password meanwhile
    db.commit()
    r = code_step_raw(client, next_code(authenticator))
    assert r.status_code == 401 and "expired" in r.text


def code_step_raw(client, code):  # type: ignore[no-untyped-def]
    """POST a code with whatever CSRF token the page gives (the page itself may say the sign-in expired)."""
    page = client.get("/login/code", headers=HTML)
    token = csrf_from(page.text)
    return client.post("/login/code", data={"code": code, "csrf_token": token}, headers=HTML)


def test_turn_off_needs_password_and_code(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    authenticator, codes = enrol(client)
    csrf = page_csrf(client)
    url = "/account/totp/disable"
    bad_pw = client.post(url, data={"password": "nope", "code": next_code(authenticator), "csrf_token": csrf})
    assert bad_pw.status_code == 422 and "wrong password" in bad_pw.text
    bad_code = client.post(
        url, data={"password": PASSWORD, "code": wrong_code(authenticator), "csrf_token": csrf}
    )
    assert bad_code.status_code == 422 and "wrong code" in bad_code.text
    assert user_row(db, officer.email).totp_enabled
    ok = client.post(
        url, data={"password": PASSWORD, "code": codes[0], "csrf_token": csrf}, follow_redirects=False
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/account?done=totp-off"
    user = user_row(db, officer.email)
    assert not user.totp_enabled and user.totp_secret is None
    assert (
        db.scalar(select(func.count()).select_from(RecoveryCode).where(RecoveryCode.user_id == user.id)) == 0
    )
    assert "totp.disable" in db.scalars(select(AuditEntry.action)).all()
    client.cookies.clear()
    assert password_step(client, officer.email).status_code == 303  # password alone again
    assert client.get("/", headers=HTML).status_code == 200


def test_new_recovery_codes_replace_the_old(client, world, signed_in, db):
    signed_in(world["fr_officer"])
    _, old = enrol(client)
    csrf = page_csrf(client)
    refused = client.post("/account/recovery-codes", data={"password": "nope", "csrf_token": csrf})
    assert refused.status_code == 422
    r = client.post("/account/recovery-codes", data={"password": PASSWORD, "csrf_token": csrf}, headers=JSON)
    assert r.status_code == 200
    new = r.json()["recovery_codes"]
    assert len(new) == 10 and not set(new) & set(old)
    client.cookies.clear()
    password_step(client, world["fr_officer"].email)
    assert code_step(client, old[0]).status_code == 401
    assert code_step(client, new[0]).status_code == 303
    assert "totp.recovery_codes" in db.scalars(select(AuditEntry.action)).all()


def test_administrator_turns_off_a_lost_device(client, world, signed_in, db):
    officer = world["fr_officer"]
    signed_in(officer)
    enrol(client)
    user_id = user_row(db, officer.email).id
    signed_in(world["admin"])
    csrf = page_csrf(client, f"/admin/users/{user_id}")
    r = client.post(f"/admin/users/{user_id}/reset-totp", data={"csrf_token": csrf}, follow_redirects=False)
    assert r.status_code == 303
    assert not user_row(db, officer.email).totp_enabled
    entry = db.scalars(select(AuditEntry).where(AuditEntry.action == "totp.reset")).one()
    assert entry.actor_label == world["admin"].email and entry.object_id == str(user_id)
    client.cookies.clear()
    assert password_step(client, officer.email).headers["location"] == "/"
