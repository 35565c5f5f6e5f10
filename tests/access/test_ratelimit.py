"""Rate limits: sign-in per address and per account, API tokens per token; 429 with Retry-After."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from stopnet.access.ratelimit import RateLimited, SignInLimits, SlidingWindowLimiter
from stopnet.db.models import User
from tests.access.conftest import HTML, code_step, csrf_from, enrol, password_step, signed_in_as


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_sliding_window_counts_accepted_hits_only():
    clock = Clock()
    limiter = SlidingWindowLimiter(3, 60, clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    assert limiter.hit("a") == pytest.approx(60)
    assert limiter.hit("b") is None  # keys are counted apart
    clock.now += 30
    assert limiter.hit("a") == pytest.approx(30)  # refused hits do not extend the wait
    clock.now += 30.5
    assert limiter.hit("a") is None  # the window slid past the first three
    assert limiter.hit("a") is None
    with pytest.raises(RateLimited) as e:
        for _ in range(3):
            limiter.check("a", "requests")
    assert e.value.status_code == 429 and e.value.headers["Retry-After"] == str(e.value.retry_after)


def test_memory_is_bounded():
    limiter = SlidingWindowLimiter(1, 60, max_keys=100)
    for i in range(1000):
        limiter.hit(f"k{i}")
    assert len(limiter._hits) == 100
    assert limiter.hit("k999") is not None and limiter.hit("k0") is None  # the stalest were dropped


def test_too_many_sign_ins_for_one_account_answer_429(client, world, db):
    officer = world["fr_officer"]
    statuses = [password_step(client, officer.email, "wrong password").status_code for _ in range(20)]
    assert set(statuses) == {401}  # wrong password, then locked after five: still a 401 each
    r = password_step(client, officer.email)
    assert r.status_code == 429
    assert 1 <= int(r.headers["retry-after"]) <= 300
    assert "too many sign-in attempts for this account" in r.text
    assert r.headers["content-security-policy"]  # the usual headers
    db.expire_all()
    user = db.scalar(select(User).where(User.email == officer.email))
    assert user is not None and user.failed_logins == 5  # locked, then refused: no more password checks
    assert password_step(client, world["fr_ncp"].email).status_code == 303  # other accounts go on


def test_too_many_sign_ins_from_one_address_answer_429(client, world, app):
    app.state.sign_in_limits = SignInLimits(SlidingWindowLimiter(3, 60), SlidingWindowLimiter(100, 60))
    names = ["fr_officer", "de_officer", "ke_officer"]
    for n in names:
        client.cookies.clear()
        assert password_step(client, world[n].email).status_code == 303
    client.cookies.clear()
    r = password_step(client, world["partner"].email)
    assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1


def test_the_code_step_counts_too(client, world, app):
    officer = world["fr_officer"]
    signed_in_as(client, officer)
    enrol(client)
    client.cookies.clear()
    password_step(client, officer.email)
    app.state.sign_in_limits = SignInLimits(SlidingWindowLimiter(100, 60), SlidingWindowLimiter(2, 60))
    assert code_step(client, "000000").status_code in (401, 303)
    assert code_step(client, "000001").status_code in (401, 303)
    page = client.get("/login/code", headers=HTML)
    r = client.post("/login/code", data={"code": "000002", "csrf_token": csrf_from(page.text)}, headers=HTML)
    assert r.status_code == 429 and "retry-after" in r.headers


def test_too_many_requests_with_one_token_answer_429(app, client, world):
    app.state.settings.token_requests_per_minute = 3  # the app makes its limiter from the setting
    app.state.__dict__.pop("token_limiter", None)
    url = "/api/v1/operations/TEST-OP/cases"
    h = world["fr_officer"].headers
    assert [client.get(url, headers=h).status_code for _ in range(3)] == [200, 200, 200]
    r = client.get(url, headers=h)
    assert r.status_code == 429
    assert r.json()["error"] == "rate_limited" and r.json()["retry_after"] >= 1
    assert client.get(url, headers=world["de_officer"].headers).status_code == 200  # per token
