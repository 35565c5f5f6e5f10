"""Identification guides: drafts, versions, publishing, validity, search, files and risk information."""

from __future__ import annotations

import datetime as dt
import hashlib
import struct
import zlib

from sqlalchemy import select

from stopnet.db.models import AuditEntry
from tests.hostile_pdfs import ACTIVE_PDFS

from .conftest import GUIDE, approve, register_brand

URL = "/api/v1/rights/guides"


def _png() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"\x00\xff\x00\x00"  # one red pixel
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


PNG = _png()
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


def create(client, actor, **kw):  # type: ignore[no-untyped-def]
    r = client.post(URL, json={**GUIDE, **kw}, headers=actor.headers)
    assert r.status_code == 201, r.text
    return r.json()


def test_draft_versions_publish(client, world, clock, other_holder, db):
    holder, officer = world["rights_holder"], world["fr_officer"]
    brand = register_brand(client, holder)
    g = create(client, holder, brand_id=brand["id"])
    assert g["status"] == "draft" and g["version"] == 1 and g["published_version"] is None
    # a draft is seen by its organisation only
    for actor in (officer, world["coordinator"], other_holder):
        assert client.get(f"{URL}/{g['id']}", headers=actor.headers).status_code == 404
        assert client.get(URL, headers=actor.headers).json()["total"] == 0
    assert client.get(URL, headers=holder.headers).json()["items"][0]["status"] == "draft"
    # the brand must be approved before its guide is published
    assert client.post(f"{URL}/{g['id']}/publish", json={}, headers=holder.headers).status_code == 409
    approve(client, world, brand["id"])
    r = client.post(f"{URL}/{g['id']}/publish", json={}, headers=holder.headers)
    assert r.status_code == 200 and r.json()["status"] == "published"
    assert client.get(f"{URL}/{g['id']}", headers=officer.headers).json()["version"] == 1

    # each edit is a new version; officers keep seeing the published one until the next publish
    edit = {
        **GUIDE,
        "expected_version": 1,
        "fake_indicators": "Printed batch numbers; no UV mark.",
        "change_note": "UV",
    }
    edit.pop("kind")
    r = client.post(f"{URL}/{g['id']}/versions", json=edit, headers=holder.headers)
    assert r.status_code == 201 and r.json()["version"] == 2 and r.json()["latest_version"] == 2
    assert (
        client.post(f"{URL}/{g['id']}/versions", json=edit, headers=holder.headers).status_code == 409
    )  # stale
    seen = client.get(f"{URL}/{g['id']}", headers=officer.headers).json()
    assert seen["version"] == 1 and "UV" not in seen["fake_indicators"]
    assert [
        v["version"] for v in client.get(f"{URL}/{g['id']}/versions", headers=officer.headers).json()
    ] == [1]
    assert client.get(f"{URL}/{g['id']}", params={"version": 2}, headers=officer.headers).status_code == 404
    own_versions = client.get(f"{URL}/{g['id']}/versions", headers=holder.headers).json()
    assert [(v["version"], v["published_at"] is not None, v["is_published"]) for v in own_versions] == [
        (1, True, True),
        (2, False, False),
    ]
    assert client.post(f"{URL}/{g['id']}/versions", json=edit, headers=officer.headers).status_code == 403
    client.post(f"{URL}/{g['id']}/publish", json={}, headers=holder.headers)
    seen = client.get(f"{URL}/{g['id']}", headers=officer.headers).json()
    assert seen["version"] == 2 and "UV" in seen["fake_indicators"]
    assert len(client.get(f"{URL}/{g['id']}/versions", headers=officer.headers).json()) == 2
    assert (
        client.get(f"{URL}/{g['id']}", params={"version": 1}, headers=officer.headers).json()["version"] == 1
    )

    # withdrawn: hidden from officers again
    client.post(f"{URL}/{g['id']}/withdraw", headers=holder.headers)
    assert client.get(f"{URL}/{g['id']}", headers=officer.headers).status_code == 404
    assert db.scalars(select(AuditEntry.action).where(AuditEntry.object_type == "guide")).all() == [
        "guide.create",
        "guide.publish",
        "guide.edit",
        "guide.publish",
        "guide.withdraw",
    ]


def test_search_by_brand_product_hs_and_words(client, world, clock, other_holder, platform):
    holder, officer = world["rights_holder"], world["fr_officer"]
    bx = approve(client, world, register_brand(client, holder)["id"])
    by = approve(
        client,
        world,
        register_brand(
            client,
            other_holder,
            name="Runfast",
            aliases=["Run Fast"],
            hs_codes=["6404"],
            product_lines=["shoes"],
        )["id"],
    )
    pens = create(client, holder, brand_id=bx["id"])
    shoes = create(
        client,
        other_holder,
        brand_id=by["id"],
        title="Runfast running shoes",
        products=["running shoes", "trainers"],
        hs_codes=["640411"],
        fake_indicators="glue marks 100% visible",
        genuine_features="stitched sole",
        valid_until="2030-12-31",
        summary="",
        packaging="",
    )
    expired = create(
        client,
        other_holder,
        brand_id=by["id"],
        title="Runfast 2019 sandals",
        valid_until="2020-12-31",
        valid_from="2019-01-01",
        hs_codes=["6402"],
    )
    risk = create(
        client,
        platform,
        kind="risk_info",
        title="Sellers shipping pens from new accounts",
        valid_from=None,
        valid_until=None,
        genuine_features="",
        summary="",
        products=["weight-loss pen"],
        hs_codes=["300490"],
    )
    for g, actor in ((pens, holder), (shoes, other_holder), (expired, other_holder), (risk, platform)):
        assert client.post(f"{URL}/{g['id']}/publish", json={}, headers=actor.headers).status_code == 200

    def ids(**params):  # type: ignore[no-untyped-def]
        r = client.get(URL, params=params, headers=officer.headers)
        assert r.status_code == 200, r.text
        return {i["id"] for i in r.json()["items"]}

    assert ids() == {pens["id"], shoes["id"], risk["id"]}
    assert ids(include_expired="true") == {pens["id"], shoes["id"], risk["id"], expired["id"]}
    assert ids(brand="run fast") == {shoes["id"]}  # alias, case and spaces ignored
    assert ids(brand="RUNFAST") == {shoes["id"]}
    assert ids(brand="brand x") == {pens["id"]}
    assert ids(product="trainers") == {shoes["id"]}
    assert ids(product="pen") == {pens["id"], risk["id"]}
    assert ids(hs="6404") == {shoes["id"]}  # prefix of the guide's 640411
    assert ids(hs="3004") == {pens["id"], risk["id"]}
    assert ids(hs="9018") == {pens["id"]}  # the brand's HS codes count too
    assert ids(q="hologram") == {pens["id"]}
    assert ids(q="glue 100%") == {shoes["id"]}  # LIKE wildcards are taken literally
    assert ids(q="100_") == set()
    assert ids(kind="risk_info") == {risk["id"]}
    assert ids(q="hologram", hs="6404") == set()
    assert client.get(URL, params={"hs": "64a"}, headers=officer.headers).status_code == 422
    # validity follows the clock
    clock.now = dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
    assert ids() == {shoes["id"], risk["id"]}


def test_risk_information_by_platforms(client, world, clock, platform):
    # platforms write risk information only, without needing a brand
    r = client.post(URL, json={**GUIDE, "kind": "product_id"}, headers=platform.headers)
    assert r.status_code == 403
    g = create(client, platform, kind="risk_info", title="Express parcels declared as gifts")
    assert g["brand_id"] is None and g["kind"] == "risk_info"
    # customs do not write guides; holders need a brand for identification guides
    assert client.post(URL, json=GUIDE, headers=world["fr_officer"].headers).status_code == 403
    assert client.post(URL, json=GUIDE, headers=world["rights_holder"].headers).status_code == 422


def test_attachments(client, world, clock, other_holder, settings):
    holder, officer = world["rights_holder"], world["fr_officer"]
    brand = approve(client, world, register_brand(client, holder)["id"])
    g = create(client, holder, brand_id=brand["id"])
    url = f"{URL}/{g['id']}/attachments"
    r = client.post(url, files={"file": ("cap.png", PNG, "image/png")}, headers=holder.headers)
    assert r.status_code == 201, r.text
    photo = r.json()
    assert photo["sha256"] == hashlib.sha256(PNG).hexdigest() and photo["size_bytes"] == len(PNG)
    stored = settings.data_dir / "rightsholders" / photo["sha256"][:2] / photo["sha256"]
    assert stored.read_bytes() == PNG
    r = client.post(url, files={"file": ("leaflet.pdf", PDF, "application/pdf")}, headers=holder.headers)
    assert r.status_code == 201 and r.json()["content_type"] == "application/pdf"
    for name, (data, active) in ACTIVE_PDFS.items():  # scripts and actions are refused
        bad = client.post(url, files={"file": (name, data, "application/pdf")}, headers=holder.headers)
        assert bad.status_code == 422 and active in bad.json()["errors"][0]["message"], (name, bad.text)
    # the type is read from the bytes: a renamed executable or a mismatched suffix is refused
    for name, data in (
        ("x.png", b"MZ\x90\x00not a png"),
        ("photo.pdf", PNG),
        ("x.svg", b"<svg/>"),
        ("e.png", b""),
    ):
        bad = client.post(url, files={"file": (name, data, "image/png")}, headers=holder.headers)
        assert bad.status_code == 422, name
    big = PNG + b"\x00" * (10 * 1024 * 1024)
    assert (
        client.post(url, files={"file": ("big.png", big, "image/png")}, headers=holder.headers).status_code
        == 413
    )
    assert (
        client.post(url, files={"file": ("c.png", PNG, "image/png")}, headers=officer.headers).status_code
        == 404
    )
    # the draft's files are the holder's only
    assert client.get(photo["url"], headers=holder.headers).content == PNG
    assert client.get(photo["url"], headers=officer.headers).status_code == 404
    assert client.get(photo["url"], headers=other_holder.headers).status_code == 404
    client.post(f"{URL}/{g['id']}/publish", json={}, headers=holder.headers)
    got = client.get(photo["url"], headers=officer.headers)
    assert got.status_code == 200 and got.content == PNG and got.headers["content-type"] == "image/png"
    assert got.headers["x-checksum-sha256"] == photo["sha256"]
    assert client.get(photo["url"], headers=other_holder.headers).status_code == 404
    # published versions are frozen; a new version carries the files over
    assert (
        client.post(url, files={"file": ("c.png", PNG, "image/png")}, headers=holder.headers).status_code
        == 409
    )
    edit = {k: v for k, v in GUIDE.items() if k != "kind"} | {"expected_version": 1}
    v2 = client.post(f"{URL}/{g['id']}/versions", json=edit, headers=holder.headers).json()
    assert [a["sha256"] for a in v2["attachments"]] == [photo["sha256"], hashlib.sha256(PDF).hexdigest()]
