"""Message threads: operation and case conversations, mentions, e-mail, attachments, read state."""

from __future__ import annotations

import hashlib
import time
from pathlib import Path

from sqlalchemy import select

from stopnet.core.pdf import active_content
from stopnet.db.models.sharing import Attachment, Mention
from tests.hostile_pdfs import ACTIVE_PDFS, CLEAN_PDF

from .test_alerts import PNG, upload
from .test_feed import feed_url, post_case

PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def new_thread(client, actor, title="Pens via HK", body="Seen anything similar?", **extra):
    return client.post(
        "/api/v1/operations/TEST-OP/threads",
        json={"title": title, "body": body, **extra},
        headers=actor.headers,
    )


def reply(client, actor, thread_id, body, **extra):
    return client.post(
        f"/api/v1/threads/{thread_id}/messages", json={"body": body, **extra}, headers=actor.headers
    )


def report(client, actor, reference, **overrides):
    from tests.conftest import case_payload

    r = client.post(
        "/api/v1/operations/TEST-OP/cases", json=case_payload(reference, **overrides), headers=actor.headers
    )
    assert r.status_code == 201, r.text
    return r.json()


def test_operation_thread_mentions_notify_by_email(world, client, smtp_sink, session_factory):
    r = new_thread(
        client,
        world["de_officer"],
        body="@fr_officer and @ke_officer@example.test: same pens? cc @nobody @rights_holder",
    )
    assert r.status_code == 201, r.text
    thread = r.json()
    msg = thread["messages"][0]
    assert {(m["user"], m["org"]) for m in msg["mentions"]} == {
        ("fr_officer", "FR-CUS"),
        ("ke_officer", "KE-CUS"),
    }
    for user in ("fr_officer", "ke_officer"):
        mail = smtp_sink.wait_for(lambda m, u=user: m["To"] == f"{u}@example.test")
        assert "de_officer mentioned you" in mail["Subject"] and "same pens?" in mail.get_content()
        assert f"/threads/{thread['id']}#m{msg['id']}" in mail.get_content()
    time.sleep(0.3)
    assert smtp_sink.to("rights_holder@example.test") == []  # may not read the thread: not mentioned
    with session_factory() as s:
        assert len(s.scalars(select(Mention)).all()) == 2

    assert client.get(f"/api/v1/threads/{thread['id']}", headers=world["partner"].headers).status_code == 200
    for outsider in ("rights_holder", "xx_officer"):
        assert (
            client.get(f"/api/v1/threads/{thread['id']}", headers=world[outsider].headers).status_code == 404
        )
    assert (
        client.get("/api/v1/operations/TEST-OP/threads", headers=world["rights_holder"].headers).json() == []
    )
    assert new_thread(client, world["rights_holder"]).status_code == 403
    assert reply(client, world["rights_holder"], thread["id"], "hello").status_code == 404


def test_case_threads_follow_the_case_visibility(world, client, smtp_sink):
    own = report(client, world["fr_officer"], "FR-OWN", visibility="own")
    r = client.post(
        f"/api/v1/cases/{own['id']}/thread/messages",
        json={"body": "note for @fr_ncp, not for @de_officer"},
        headers=world["fr_officer"].headers,
    )
    assert r.status_code == 201, r.text
    assert [m["user"] for m in r.json()["mentions"]] == ["fr_ncp"]
    tid = r.json()["thread_id"]
    for name in ("de_officer", "coordinator", "analyst_we", "partner"):
        assert client.get(f"/api/v1/threads/{tid}", headers=world[name].headers).status_code == 404, name
        assert client.get(f"/api/v1/cases/{own['id']}/thread", headers=world[name].headers).status_code == 404
        assert all(
            t["id"] != tid
            for t in client.get("/api/v1/operations/TEST-OP/threads", headers=world[name].headers).json()
        )
        denied = client.post(
            f"/api/v1/cases/{own['id']}/thread/messages", json={"body": "x"}, headers=world[name].headers
        )
        assert denied.status_code == 404
    assert (
        client.get(f"/api/v1/cases/{own['id']}/thread", headers=world["fr_ncp"].headers).json()["id"] == tid
    )
    smtp_sink.wait_for(lambda m: m["To"] == "fr_ncp@example.test")
    time.sleep(0.3)
    assert smtp_sink.to("de_officer@example.test") == []

    shared = report(client, world["fr_officer"], "FR-SHARED")
    r = client.post(
        f"/api/v1/cases/{shared['id']}/thread/messages",
        json={"body": "@de_officer yours?"},
        headers=world["fr_officer"].headers,
    )
    assert [m["user"] for m in r.json()["mentions"]] == ["de_officer"]
    tid2 = r.json()["thread_id"]
    de = client.get(f"/api/v1/threads/{tid2}", headers=world["de_officer"].headers).json()
    assert de["case_reference"] == "FR-SHARED" and de["unread"] == 1
    assert reply(client, world["de_officer"], tid2, "Not ours.").status_code == 201
    assert (
        client.get(f"/api/v1/cases/{shared['id']}/thread", headers=world["fr_officer"].headers).json()[
            "message_count"
        ]
        == 2
    )
    assert (
        client.get(f"/api/v1/cases/{shared['id']}/thread", headers=world["rights_holder"].headers).status_code
        == 404
    )


def test_attachments_are_checked_stored_outside_the_database_and_verified(
    world, client, settings, session_factory
):
    fr = world["fr_officer"]
    pdf = upload(client, fr, "report.pdf", PDF, "application/pdf")
    assert pdf.status_code == 201, pdf.text
    png = upload(client, fr, "../../etc/pens.png", PNG, "application/octet-stream")
    assert png.status_code == 201 and png.json()["filename"] == "pens.png"
    r = new_thread(client, fr, body="files attached", attachments=[pdf.json()["id"], png.json()["id"]])
    assert r.status_code == 201, r.text
    files = r.json()["messages"][0]["attachments"]
    assert [f["filename"] for f in files] == ["report.pdf", "pens.png"]
    for f, data in zip(files, (PDF, PNG), strict=True):
        got = client.get(f["url"], headers=world["de_officer"].headers)
        assert got.status_code == 200 and got.content == data
        assert hashlib.sha256(got.content).hexdigest() == f["sha256"] == got.headers["x-checksum-sha256"]
    with session_factory() as s:
        stored = s.scalars(select(Attachment).order_by(Attachment.id)).all()
    for a in stored:  # outside the database, under data_dir, named by checksum
        path = Path(settings.data_dir) / a.storage_path
        assert path.read_bytes() == (PDF if a.filename.endswith(".pdf") else PNG)
        assert path.name == a.sha256

    too_big = upload(client, fr, "big.png", PNG + b"\x00" * settings.attachment_max_bytes)
    assert too_big.status_code == 413
    for name, data, ctype in [
        ("tool.exe", b"MZ\x90\x00", "application/octet-stream"),  # type not accepted
        ("fake.pdf", b"not a pdf at all", "application/pdf"),  # content is not what the name says
        ("pens.png", PNG, "application/pdf"),  # declared type disagrees with the name
        ("notes.txt", b"\x00\x01binary", "text/plain"),
        ("empty.txt", b"", "text/plain"),
    ]:
        bad = upload(client, fr, name, data, ctype)
        assert bad.status_code == 422, (name, bad.text)
        assert bad.json()["errors"][0]["field"] == "file"
    assert upload(client, world["rights_holder"], "x.png").status_code in (403, 404)

    # the bytes on disk changed behind our back: refused, not served
    path = Path(settings.data_dir) / stored[0].storage_path
    path.write_bytes(PDF.replace(b"1.4", b"1.5"))
    broken = client.get(files[0]["url"], headers=world["de_officer"].headers)
    assert broken.status_code == 500 and broken.json()["error"] == "attachment_corrupt"


def test_pdf_attachments_with_scripts_or_actions_are_refused(world, client, settings):
    fr = world["fr_officer"]
    assert upload(client, fr, "clean.pdf", CLEAN_PDF, "application/pdf").status_code == 201
    for name, (data, active) in ACTIVE_PDFS.items():
        assert active in active_content(data), name
        bad = upload(client, fr, name, data, "application/pdf")
        assert bad.status_code == 422, (name, bad.text)
        error = bad.json()["errors"][0]
        assert error["field"] == "file" and "scripts or actions" in error["message"], error
        assert active in error["message"], (name, error)
    stored = [p for p in (Path(settings.data_dir) / "attachments").rglob("*") if p.is_file()]
    assert len(stored) == 1  # the clean one only


def test_read_state_and_unread_counts(world, client):
    de, fr = world["de_officer"], world["fr_officer"]
    tid = new_thread(client, de).json()["id"]

    def unread(actor):
        threads = client.get("/api/v1/operations/TEST-OP/threads", headers=actor.headers).json()
        return next(t["unread"] for t in threads if t["id"] == tid)

    assert unread(de) == 0  # one's own messages are read
    assert unread(fr) == 1
    first = client.get(f"/api/v1/threads/{tid}", headers=fr.headers).json()
    assert (
        first["unread"] == 1 and first["last_read_message_id"] == 0
    )  # reading through the API does not mark
    mark = client.post(f"/api/v1/threads/{tid}/read", json={}, headers=fr.headers)
    assert mark.status_code == 200 and mark.json()["unread"] == 0
    m2 = reply(client, de, tid, "second").json()
    reply(client, de, tid, "third")
    assert unread(fr) == 2
    partial = client.post(
        f"/api/v1/threads/{tid}/read", json={"last_read_message_id": m2["id"]}, headers=fr.headers
    )
    assert partial.json() == {"thread_id": tid, "last_read_message_id": m2["id"], "unread": 1}
    assert reply(client, fr, tid, "thanks").status_code == 201  # posting marks everything read
    assert unread(fr) == 0 and unread(de) == 1
    assert unread(world["ke_officer"]) == 4


def test_messages_on_the_live_feed_reach_only_thread_readers(world, live_server, sse):
    import httpx2

    base = live_server.url
    streams = {
        n: sse(feed_url(base), world[n].headers)
        for n in ("de_officer", "coordinator", "rights_holder", "fr_ncp")
    }
    own = post_case(base, world["fr_officer"], "FR-OWN", visibility="own")
    with httpx2.Client(base_url=base) as c:
        assert new_thread(c, world["de_officer"], body="general @fr_ncp").status_code == 201
        r = c.post(
            f"/api/v1/cases/{own['id']}/thread/messages",
            json={"body": "private"},
            headers=world["fr_officer"].headers,
        )
        assert r.status_code == 201
    ncp = streams["fr_ncp"].take(3)
    assert [e.type for e in ncp] == ["case.created", "message.posted", "message.posted"]
    assert ncp[1].data["message"]["mentions"] == [world["fr_ncp"].principal.user_id]
    assert ncp[2].data["message"]["excerpt"] == "private"
    for name in ("de_officer", "coordinator"):
        got = streams[name].take(1)
        assert got[0].data["message"]["thread_title"] == "Pens via HK", name
    time.sleep(1.0)
    for name in ("de_officer", "coordinator", "rights_holder"):
        assert streams[name].events.empty(), name
