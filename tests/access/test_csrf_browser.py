"""A page of another origin on the same site posts a form to a body-less API route, in a real Chromium.

SameSite=Lax does not stop it: ``http://127.0.0.1:<other port>`` is another origin but the same site as
the live server, so Chromium sends the session cookie with the cross-origin POST. The server refuses it
by the ``Origin`` Chromium adds (web/deps.require_same_site), and the account stays active.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from stopnet.db.models import User
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser


def test_a_same_site_page_of_another_origin_cannot_deactivate_an_account(chromium, live_server, world, db):
    victim = db.scalar(select(User).where(User.email == world["fr_officer"].email))
    assert victim is not None and victim.is_active
    host, port = live_server.url.rsplit(":", 1)
    attacker = f"{host}:{int(port) + 1 if int(port) < 65535 else int(port) - 1}"  # same site, other origin
    form = (
        "<!doctype html><title>prize</title>"
        f'<form method="post" action="{live_server.url}/api/v1/users/{victim.id}/deactivate">'
        '<button id="go">Claim your prize</button></form>'
    )
    context = chromium.new_context(viewport={"width": 1000, "height": 700})
    context.set_default_timeout(10_000)
    answers: list[Any] = []

    def route(r: Any) -> None:
        if r.request.url.startswith(attacker + "/"):
            r.fulfill(status=200, content_type="text/html", body=form)
        elif r.request.url.startswith(live_server.url + "/"):
            r.continue_()
        else:
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("response", lambda resp: answers.append(resp) if "/deactivate" in resp.url else None)
    try:
        page.goto(live_server.url + "/login")
        page.fill("input[name=email]", world["admin"].email)
        page.fill("input[name=password]", PASSWORD)
        page.click("button:has-text('Sign in')")
        page.wait_for_selector("header .who")
        page.goto(attacker + "/prize")
        with page.expect_navigation():
            page.click("#go")
        assert answers, "the form was not posted"
        answer = answers[-1]
        sent = answer.request.all_headers()
        assert "stopnet_session=" in sent.get("cookie", ""), (
            "Chromium did not send the cookie: not the case tested"
        )
        assert sent.get("origin") == attacker
        assert answer.status == 403, (answer.status, page.content()[:500])
        assert "another site" in page.content()
    finally:
        context.close()
    db.expire_all()
    assert db.get(User, victim.id).is_active
