"""The sharing pages: live activity, alerts (publish with files, acknowledge), conversations."""

from __future__ import annotations

import re

from stopnet.web.assets import static_url
from tests.pages import HTML, csrf_from, sign_in

from .test_alerts import PNG
from .test_messages import PDF, report


def signed(client, actor):
    client.cookies.clear()
    r = sign_in(client, actor)
    assert r.status_code == 303, r.text
    return client


def test_live_page_lists_what_the_viewer_may_see_and_carries_the_cursor(world, client):
    report(client, world["fr_officer"], "FR-PART")
    report(client, world["fr_officer"], "FR-OWN", visibility="own")
    c = signed(client, world["de_officer"])
    page = c.get("/operations/TEST-OP/live", headers=HTML)
    assert page.status_code == 200
    assert "FR-PART" in page.text and "FR-OWN" not in page.text
    assert f'src="{static_url("live.js")}"' in page.text and "<script>" not in page.text
    m = re.search(r'id="live-feed" data-op="TEST-OP" data-cursor="(\d+)"', page.text)
    assert m and int(m.group(1)) >= 2
    data = c.get("/operations/TEST-OP/live?format=json").json()
    assert [e["case"]["reference"] for e in data["events"]] == ["FR-PART"]
    filtered = c.get("/operations/TEST-OP/live?format=json&region=ESA").json()
    assert filtered["events"] == []
    assert c.get("/static/live.js").status_code == 200


def test_publishing_an_alert_with_a_file_and_acknowledging_it_through_the_pages(world, client):
    c = signed(client, world["coordinator"])
    page = c.get("/operations/TEST-OP/alerts", headers=HTML)
    assert page.status_code == 200 and 'action="/operations/TEST-OP/alerts"' in page.text
    token = csrf_from(page.text)
    form = {
        "csrf_token": token,
        "kind": "shipper",
        "title": "Shipper ACME Ltd",
        "body": "Watch it.",
        "scope": "administrations",
    }
    bad = c.post("/operations/TEST-OP/alerts", data=form, headers=HTML)
    assert bad.status_code == 422 and "administrations" in bad.text and "Shipper ACME Ltd" in bad.text
    r = c.post(
        "/operations/TEST-OP/alerts",
        data={**form, "administrations": ["FR-CUS", "DE-CUS"]},
        files=[("files", ("photo.png", PNG, "image/png"))],
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    url = r.headers["location"]
    sender = c.get(url, headers=HTML)
    assert "photo.png" in sender.text and "0 of 2" in sender.text
    forged = c.post(
        "/operations/TEST-OP/alerts",
        data={**form, "csrf_token": "x", "administrations": "FR-CUS"},
        headers=HTML,
    )
    assert forged.status_code == 403

    c = signed(client, world["fr_officer"])
    page = c.get(url, headers=HTML)
    assert 'id="ack-form"' in page.text and "photo.png" in page.text
    listed = c.get("/operations/TEST-OP/alerts?unacknowledged=1", headers=HTML)
    assert "Shipper ACME Ltd" in listed.text
    r = c.post(url + "/ack", data={"csrf_token": csrf_from(page.text)}, headers=HTML, follow_redirects=False)
    assert r.status_code == 303
    assert 'id="acknowledged"' in c.get(url, headers=HTML).text
    assert c.get(f"{url}?format=json").json()["acknowledged_at"]
    assert "Shipper ACME Ltd" not in c.get("/operations/TEST-OP/alerts?unacknowledged=1", headers=HTML).text

    c = signed(client, world["coordinator"])
    assert "1 of 2" in c.get(url, headers=HTML).text


def test_conversations_through_the_pages(world, client):
    c = signed(client, world["de_officer"])
    page = c.get("/operations/TEST-OP/threads", headers=HTML)
    assert page.status_code == 200
    r = c.post(
        "/operations/TEST-OP/threads",
        data={"csrf_token": csrf_from(page.text), "title": "Pens via HK", "body": "@fr_officer see the file"},
        files=[("files", ("report.pdf", PDF, "application/pdf"))],
        headers=HTML,
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    thread_url = r.headers["location"]
    c = signed(client, world["fr_officer"])
    listing = c.get("/operations/TEST-OP/threads?format=json").json()
    assert [(t["title"], t["unread"]) for t in listing] == [("Pens via HK", 1)]
    page = c.get(thread_url, headers=HTML)
    assert "see the file" in page.text and "report.pdf" in page.text and "fr_officer (FR-CUS)" in page.text
    c.get(thread_url + "?format=json")

    def unread() -> int:
        return c.get("/operations/TEST-OP/threads?format=json").json()[0]["unread"]

    assert unread() == 1  # a GET (page or JSON) changes nothing
    mark = re.search(
        r'<form method="post" action="([^"]+/read)" id="mark-read" hx-post="\1" hx-trigger="load"', page.text
    )
    assert mark, page.text
    upto = re.search(r'name="upto" value="(\d+)"', page.text)
    assert upto
    forged = c.post(mark.group(1), data={"csrf_token": "x", "upto": upto.group(1)}, headers=HTML)
    assert forged.status_code == 403 and unread() == 1
    r = c.post(
        mark.group(1),
        data={"csrf_token": csrf_from(page.text), "upto": upto.group(1)},
        headers={**HTML, "HX-Request": "true"},
    )
    assert r.status_code == 204 and unread() == 0  # the page's POST marks what it showed read
    assert 'id="mark-read"' not in c.get(thread_url, headers=HTML).text  # nothing left unread
    wrong = c.post(
        thread_url + "/messages",
        data={"csrf_token": csrf_from(page.text), "body": "a virus"},
        files=[("files", ("virus.exe", b"MZ", "application/octet-stream"))],
        headers=HTML,
    )
    assert wrong.status_code == 422 and "not accepted" in wrong.text
    ok = c.post(
        thread_url + "/messages",
        data={"csrf_token": csrf_from(page.text), "body": "thanks"},
        headers=HTML,
        follow_redirects=False,
    )
    assert ok.status_code == 303 and "#m" in ok.headers["location"]

    case = report(client, world["fr_officer"], "FR-1")
    empty = c.get(f"/cases/{case['id']}/thread", headers=HTML)
    assert empty.status_code == 200 and 'action="/cases/' in empty.text
    posted = c.post(
        f"/cases/{case['id']}/thread/messages",
        data={"csrf_token": csrf_from(empty.text), "body": "first word"},
        headers=HTML,
        follow_redirects=False,
    )
    assert posted.status_code == 303
    assert c.get(f"/cases/{case['id']}/thread", follow_redirects=False).status_code == 303
    c = signed(client, world["rights_holder"])
    assert c.get(f"/cases/{case['id']}/thread", headers=HTML).status_code == 404
