"""Alerts: who publishes, who receives, acknowledgements seen by the sender, files, e-mail, live feed."""

from __future__ import annotations

import hashlib
import time

import httpx2

from .test_feed import feed_url, post_case

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
ALERT = {
    "kind": "falsified_medicine",
    "title": "Falsified semaglutide pens in express parcels",
    "body": "Pens with lot number ABC123; blue caps; declared as cosmetics.",
}


def publish(client, actor, **overrides):
    return client.post(
        "/api/v1/operations/TEST-OP/alerts", json={**ALERT, **overrides}, headers=actor.headers
    )


def upload(client, actor, name="pens.png", data=PNG, ctype="image/png"):
    return client.post(
        "/api/v1/operations/TEST-OP/attachments", files={"file": (name, data, ctype)}, headers=actor.headers
    )


def test_coordinator_alerts_the_whole_operation_and_recipients_acknowledge(world, client):
    r = publish(client, world["coordinator"])
    assert r.status_code == 201, r.text
    alert = r.json()
    assert alert["scope"] == "operation" and alert["is_sender"]
    assert alert["recipient_count"] == 6 and alert["pending_count"] == 6  # FR DE KE, two RILOs, INTERPOL
    assert {x["org"] for x in alert["recipients"]} == {
        "FR-CUS",
        "DE-CUS",
        "KE-CUS",
        "RILO-WE",
        "RILO-ESA",
        "INTERPOL",
    }
    url = f"/api/v1/alerts/{alert['id']}"

    fr = client.get(url, headers=world["fr_officer"].headers).json()
    assert fr["can_acknowledge"] and fr["acknowledged_at"] is None
    assert fr["recipients"] is None and fr["pending_count"] is None  # only the sender's side sees them
    for outsider in ("xx_officer", "rights_holder"):
        assert client.get(url, headers=world[outsider].headers).status_code == 404

    pending = client.get(
        "/api/v1/operations/TEST-OP/alerts?unacknowledged=true", headers=world["fr_ncp"].headers
    )
    assert [a["id"] for a in pending.json()["items"]] == [alert["id"]]
    ack = client.post(url + "/ack", headers=world["fr_ncp"].headers)
    assert ack.status_code == 200 and ack.json()["acknowledged_at"]
    again = client.post(url + "/ack", headers=world["fr_officer"].headers)
    assert again.json()["acknowledged_at"] == ack.json()["acknowledged_at"]  # once per administration
    pending = client.get(
        "/api/v1/operations/TEST-OP/alerts?unacknowledged=true", headers=world["fr_officer"].headers
    )
    assert pending.json()["items"] == []
    assert client.post(url + "/ack", headers=world["de_officer"].headers).status_code == 200

    sender = client.get(url, headers=world["coordinator"].headers).json()
    assert sender["pending_count"] == 4
    by_org = {x["org"]: x for x in sender["recipients"]}
    assert by_org["FR-CUS"]["acknowledged_by"] == "fr_ncp" and by_org["DE-CUS"]["acknowledged_at"]
    assert by_org["KE-CUS"]["acknowledged_at"] is None
    sent = client.get(
        "/api/v1/operations/TEST-OP/alerts?sent=true", headers=world["coordinator"].headers
    ).json()
    assert [(a["id"], a["pending_count"]) for a in sent["items"]] == [(alert["id"], 4)]


def test_regional_and_chosen_administrations_alerts(world, client):
    regional = publish(
        client,
        world["analyst_we"],
        kind="concealment",
        title="Pills in shoe soles",
        scope="region",
        region="EUR",
    )
    assert regional.status_code == 201, regional.text
    assert {x["org"] for x in regional.json()["recipients"]} == {"FR-CUS", "DE-CUS"}
    rid = regional.json()["id"]
    assert client.get(f"/api/v1/alerts/{rid}", headers=world["ke_officer"].headers).status_code == 404
    assert client.get(f"/api/v1/alerts/{rid}", headers=world["de_officer"].headers).status_code == 200
    assert client.get(f"/api/v1/alerts/{rid}", headers=world["coordinator"].headers).json()[
        "is_sender"
    ]  # oversees
    assert client.post(f"/api/v1/alerts/{rid}/ack", headers=world["analyst_esa"].headers).status_code == 404

    chosen = publish(
        client,
        world["coordinator"],
        kind="shipper",
        title="Shipper to watch",
        scope="administrations",
        administrations=["ke-cus"],
    )
    assert chosen.status_code == 201, chosen.text
    assert [x["org"] for x in chosen.json()["recipients"]] == ["KE-CUS"]
    assert (
        client.get(f"/api/v1/alerts/{chosen.json()['id']}", headers=world["fr_officer"].headers).status_code
        == 404
    )

    bad = publish(
        client, world["coordinator"], scope="administrations", administrations=["XX-CUS", "BRAND-X"]
    )
    assert bad.status_code == 422 and {e["value"] for e in bad.json()["errors"]} == {"XX-CUS", "BRAND-X"}
    assert publish(client, world["coordinator"], scope="region", region="ZZZ").status_code == 422
    assert publish(client, world["coordinator"], scope="region").status_code == 422
    assert (
        publish(client, world["coordinator"], scope="region", region="AMS").status_code == 422
    )  # nobody there


def test_only_coordinators_and_analysts_publish(world, client):
    for name in ("fr_officer", "fr_ncp", "partner"):
        assert publish(client, world[name]).status_code == 403, name
    assert publish(client, world["rights_holder"]).status_code in (403, 404)
    assert publish(client, world["xx_officer"]).status_code == 404
    assert (
        client.get("/api/v1/operations/TEST-OP/alerts", headers=world["rights_holder"].headers).json()[
            "items"
        ]
        == []
    )


def test_alert_files_and_email(world, client, smtp_sink):
    up = upload(client, world["coordinator"])
    assert up.status_code == 201, up.text
    att = up.json()
    assert att["sha256"] == hashlib.sha256(PNG).hexdigest() and att["size"] == len(PNG)
    # before the alert is published, the file is private to its uploader's organisation
    assert client.get(att["url"], headers=world["fr_officer"].headers).status_code == 404
    stolen = publish(client, world["analyst_we"], attachments=[att["id"]])
    assert stolen.status_code == 422  # not the analyst's upload
    r = publish(
        client,
        world["coordinator"],
        scope="administrations",
        administrations=["FR-CUS"],
        attachments=[att["id"]],
    )
    assert r.status_code == 201, r.text
    assert [f["id"] for f in r.json()["attachments"]] == [att["id"]]
    got = client.get(att["url"], headers=world["fr_officer"].headers)
    assert got.status_code == 200 and got.content == PNG
    assert got.headers["x-checksum-sha256"] == hashlib.sha256(got.content).hexdigest()
    assert got.headers["content-type"] == "image/png" and "attachment" in got.headers["content-disposition"]
    assert client.get(att["url"], headers=world["de_officer"].headers).status_code == 404
    assert publish(client, world["coordinator"], attachments=[att["id"]]).status_code == 422  # used already

    for user in ("fr_officer", "fr_ncp"):
        mail = smtp_sink.wait_for(lambda m, u=user: m["To"] == f"{u}@example.test")
        assert ALERT["title"] in mail["Subject"] and mail["From"] == "stopnet@example.test"
        assert f"/alerts/{r.json()['id']}" in mail.get_content()
    time.sleep(0.3)
    assert smtp_sink.to("de_officer@example.test") == []


def test_alerts_on_the_live_feed_reach_only_their_recipients(world, live_server, sse):
    base = live_server.url
    streams = {
        n: sse(feed_url(base), world[n].headers)
        for n in ("fr_officer", "ke_officer", "coordinator", "analyst_we")
    }
    with httpx2.Client(base_url=base) as c:
        r = publish(
            c,
            world["analyst_we"],
            kind="concealment",
            title="Pills in shoe soles",
            scope="region",
            region="EUR",
        )
        assert r.status_code == 201, r.text
        ack = c.post(f"/api/v1/alerts/{r.json()['id']}/ack", headers=world["fr_officer"].headers)
        assert ack.status_code == 200
    fr = streams["fr_officer"].take(2)
    assert [e.type for e in fr] == ["alert.published", "alert.acknowledged"]
    assert fr[0].data["alert"]["title"] == "Pills in shoe soles" and "body" not in fr[0].data["alert"]
    sender = streams["analyst_we"].take(2)
    assert sender[1].data == {**sender[1].data, "org": "FR-CUS", "pending": 1}
    coord = streams["coordinator"].take(2)
    assert [e.type for e in coord] == ["alert.published", "alert.acknowledged"]
    post_case(base, world["ke_officer"], "KE-AFTER")  # KE's next event is its own case: no alert before it
    assert [e.type for e in streams["ke_officer"].take(1)] == ["case.created"]
