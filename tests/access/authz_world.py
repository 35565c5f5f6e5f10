"""The world of the authorisation matrix: one operation, records of every kind, one user per role.

Built once per test module (``build``) through the real API, so the records are exactly what users make.
``call`` makes one request as a role, signed in with a session cookie (as a person in a browser), and
returns what the matrix judges: the status and, for redirects, where to.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from stopnet.access.service import create_token, principal_for
from stopnet.db.models import (
    Case,
    Operation,
    OperationPhase,
    OperationStatus,
    Organisation,
    Participant,
    Role,
    User,
    Visibility,
)
from stopnet.web.sessions import csrf_token, make_cookie
from tests.conftest import ACTORS, ORGS, PARTICIPATION, Actor, World, _empty_all, case_payload, password_hash

# The user acting for each role in the matrix (None: nobody signed in).
ROLE_ACTORS: dict[str, str | None] = {
    "admin": "admin",
    "coordinator": "coordinator",
    "analyst": "analyst_we",  # RILO Western Europe: region EUR, as FR-CUS
    "contact_point": "fr_ncp",
    "officer": "fr_officer",
    "partner": "partner",
    "rights_holder": "rights_holder",
    "anonymous": None,
}
ROLES = tuple(ROLE_ACTORS)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
HTML = {"Accept": "text/html,application/xhtml+xml"}
JSON = {"Accept": "application/json"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


@dataclass
class AuthzWorld:
    """The records whose ids fill the routes' path parameters."""

    world: World
    engine: Engine
    ids: dict[str, int] = field(default_factory=dict)
    texts: dict[str, str] = field(default_factory=dict)  # path parameters that are not numbers
    user_ids: dict[str, int] = field(default_factory=dict)


def _base_world(session_factory: sessionmaker[Session]) -> World:
    """The organisations, operation TEST-OP and actors of tests/conftest.py's ``world``."""
    with session_factory() as s:
        orgs = {}
        for code, name, kind, country, region in ORGS:
            o = Organisation(code=code, name=name, kind=kind, country_code=country, region_code=region)
            s.add(o)
            orgs[code] = o
        s.flush()
        op = Operation(
            code="TEST-OP",
            name="Operation Test",
            scope="Counterfeit medicines and IPR goods sold online",
            starts_on=dt.date(2025, 5, 12),
            ends_on=dt.date(2025, 5, 30),
            status=OperationStatus.ACTIVE,
            default_visibility=Visibility.PARTICIPANTS,
            coordinator_org_id=orgs["WCO-OCU"].id,
            phases=[
                OperationPhase(
                    name="Operational phase",
                    starts_on=dt.date(2025, 5, 12),
                    ends_on=dt.date(2025, 5, 30),
                    accepts_reports=True,
                )
            ],
        )
        s.add(op)
        s.flush()
        for code, role in PARTICIPATION.items():
            s.add(Participant(operation_id=op.id, org_id=orgs[code].id, role=role))
        w = World(op=op, orgs=orgs)
        for name, org_code, role in ACTORS:
            org = orgs[org_code]
            user = User(
                org_id=org.id,
                email=f"{name}@example.test",
                display_name=name,
                role=role,
                password_hash=password_hash(),
            )
            s.add(user)
            s.flush()
            _, raw = create_token(s, None, org, f"{name} token", role, user=user)
            w.actors[name] = Actor(user.email, role, org_code, raw, principal_for(user, org))
        s.commit()
        s.expunge_all()
    return w


def _ok(r: Any, *codes: int) -> dict[str, Any]:
    assert r.status_code in (codes or (200, 201)), (r.request.method, r.request.url, r.status_code, r.text)
    body: dict[str, Any] = r.json()
    return body


def build(engine: Engine, client: TestClient) -> AuthzWorld:
    """Empty the database and build the world through the API (tokens of the acting users)."""
    _empty_all(engine)
    factory = client.app.state.sessionmaker  # type: ignore[attr-defined]  # the app's: with the audit keys
    w = _base_world(factory)
    aw = AuthzWorld(w, engine)
    h = {name: a.headers for name, a in w.actors.items()}
    cases = "/api/v1/operations/TEST-OP/cases"

    def case(actor: str, ref: str, **kw: Any) -> int:
        return int(_ok(client.post(cases, json=case_payload(ref, **kw), headers=h[actor]))["id"])

    # cases: FR shared with participants; DE restricted to its own administration; an FR draft; an FR case
    # submitted for validation; a DE case shared with partners (a partner reads it)
    aw.ids["case_shared"] = case("fr_officer", "FR-SHARED", submit=True, visibility="participants")
    aw.ids["case_restricted"] = case("de_officer", "DE-OWN", submit=True, visibility="own")
    aw.ids["case_draft"] = case("fr_officer", "FR-DRAFT", submit=False)
    aw.ids["case_submitted"] = case("fr_officer", "FR-SUBMITTED", submit=True)
    aw.ids["case_partners"] = case("de_officer", "DE-PARTNERS", submit=True, visibility="partners")

    # accounts: a spare officer of FR-CUS (managed by admin and FR's contact point) and one of DE-CUS
    with factory() as s:
        for name, org_code in (("fr_spare", "FR-CUS"), ("de_spare", "DE-CUS")):
            org = s.scalar(select(Organisation).where(Organisation.code == org_code))
            assert org is not None
            user = User(
                org_id=org.id,
                email=f"{name}@example.test",
                display_name=name,
                role=Role.OFFICER,
                password_hash=password_hash(),
            )
            s.add(user)
            s.flush()
            aw.ids[f"user_{name}"] = user.id
            token, _ = create_token(s, None, org, f"{name} machine", Role.OFFICER)
            aw.ids[f"token_{name}"] = token.id
        for name, actor in w.actors.items():
            u = s.scalar(select(User).where(User.email == actor.email))
            assert u is not None
            aw.user_ids[name] = u.id
        s.commit()

    # sharing: an attachment, an alert to the whole operation, a conversation
    up = client.post(
        "/api/v1/operations/TEST-OP/attachments",
        files={"file": ("label.png", PNG, "image/png")},
        headers=h["fr_officer"],
    )
    aw.ids["attachment"] = int(_ok(up)["id"])
    alert = {"kind": "concealment", "title": "Pens in toy boxes", "body": "Seen at Roissy."}
    aw.ids["alert"] = int(
        _ok(client.post("/api/v1/operations/TEST-OP/alerts", json=alert, headers=h["coordinator"]))["id"]
    )
    thread = {"title": "Pens via HK", "body": "Anyone else seeing these?"}
    aw.ids["thread"] = int(
        _ok(client.post("/api/v1/operations/TEST-OP/threads", json=thread, headers=h["fr_officer"]))["id"]
    )
    # the conversations of the shared case and of the restricted one
    for key, actor in (("case_shared", "fr_officer"), ("case_restricted", "de_officer")):
        note = {"body": "Consignee known from an earlier case."}
        _ok(client.post(f"/api/v1/cases/{aw.ids[key]}/thread/messages", json=note, headers=h[actor]))

    # rights holders: an approved brand with a contact point and a published guide (with a photo), and a
    # verification request of FR-CUS about its shared case
    from tests.rightsholders.conftest import BRAND, GUIDE

    rh = h["rights_holder"]
    brand = _ok(client.post("/api/v1/rights/brands", json=BRAND, headers=rh))
    aw.ids["brand"] = int(brand["id"])
    _ok(
        client.post(
            f"/api/v1/rights/brands/{brand['id']}/decision",
            json={"decision": "approved", "note": "checked"},
            headers=h["coordinator"],
        )
    )
    # two contact points, two published guides, two requests: the second of each is deleted or withdrawn
    for key, territory in (("contact", "FR"), ("contact_spare", "ES")):
        contact = {"territory": territory, "name": f"Brand X {territory}", "email": "x@brandx.test"}
        aw.ids[key] = int(
            _ok(client.post(f"/api/v1/rights/brands/{brand['id']}/contacts", json=contact, headers=rh))["id"]
        )
    for key, title in (("guide", GUIDE["title"]), ("guide_spare", "Brand X needles")):
        guide = _ok(
            client.post(
                "/api/v1/rights/guides", json={**GUIDE, "title": title, "brand_id": brand["id"]}, headers=rh
            )
        )
        aw.ids[key] = int(guide["id"])
        if key == "guide":
            photo = client.post(
                f"/api/v1/rights/guides/{guide['id']}/attachments",
                files={"file": ("cap.png", PNG, "image/png")},
                headers=rh,
            )
            aw.ids["rights_attachment"] = int(_ok(photo)["id"])
        _ok(client.post(f"/api/v1/rights/guides/{guide['id']}/publish", json={}, headers=rh))
    for key in ("request", "request_spare"):
        req = {"brand_id": brand["id"], "case_id": aw.ids["case_shared"], "product": "weight-loss pens"}
        aw.ids[key] = int(
            _ok(client.post("/api/v1/rights/requests", json=req, headers=h["fr_officer"]))["id"]
        )
    _targeting(client, h, aw, factory)
    return aw


TARGETING = "/api/v1/targeting/operations/TEST-OP"


def consignments(n: int = 40) -> list[dict[str, Any]]:
    """Simulated consignments of FR-CUS as API records."""
    from stopnet.risk.simulation import generate_consignments

    frame = generate_consignments(n, start="2025-05-12", days=5, seed=4)
    return [
        {k: v.isoformat() if isinstance(v, dt.date) else v for k, v in row.items()}
        for row in frame.iter_rows(named=True)
    ]


def _targeting(
    client: TestClient, h: dict[str, dict[str, str]], aw: AuthzWorld, factory: sessionmaker[Session]
) -> None:
    """FR-CUS's risk-targeting data: consignments, a tested and active rule, a selection, two proposals and
    a risk model (its record: sharing it does not read the file)."""
    from stopnet.db.models.targeting import RuleProposal, TargetingModel

    fr = h["fr_officer"]
    records = consignments()
    body = {"operation": "TEST-OP", "consignments": records}
    _ok(client.post("/api/v1/targeting/consignments", json=body, headers=fr), 201)
    aw.texts["consignment"] = str(records[0]["consignment_id"])
    rule = {"code": "FR-1", "name": "express", "expression": 'channel == "EXPRESS"'}
    aw.ids["rule"] = int(_ok(client.post(f"{TARGETING}/rules", json=rule, headers=fr), 201)["id"])
    _ok(client.post(f"{TARGETING}/rules/{aw.ids['rule']}/test", json={}, headers=fr))
    _ok(client.post(f"{TARGETING}/rules/{aw.ids['rule']}/activate", json={}, headers=fr))
    selection = {"day": "2025-05-14", "capacity": "5"}
    aw.ids["selection"] = int(
        _ok(client.post(f"{TARGETING}/selections", json=selection, headers=fr), 201)["id"]
    )
    with factory() as s:
        for key, origin in (("proposal", "CN"), ("proposal_spare", "TR")):
            p = RuleProposal(
                operation_id=aw.world.op.id,
                org_id=aw.world.orgs["FR-CUS"].id,
                kind="new",
                origin_country=origin,
                destination_country="FR",
                commodity_group="medicines",
                expression=f'origin_country == "{origin}"',
                evidence={},
            )
            s.add(p)
            s.flush()
            aw.ids[key] = p.id
        s.add(
            TargetingModel(
                operation_id=aw.world.op.id,
                org_id=aw.world.orgs["FR-CUS"].id,
                version="consignment-lgbm-fr-1",
                path="/nonexistent/fr-1.zip",
                sha256="0" * 64,
                active=True,
            )
        )
        aw.texts["model"] = "consignment-lgbm-fr-1"
        s.commit()


def case_version(aw: AuthzWorld, key: str) -> int:
    """The current version of case ``aw.ids[key]`` (what a write must name as ``expected_version``)."""
    with Session(aw.engine) as s:
        case = s.get(Case, aw.ids[key])
        assert case is not None
        return int(case.version)


def session_cookie(client: TestClient, engine: Engine, actor: Actor) -> str:
    """A valid session cookie of ``actor`` (its current session epoch: sign-outs earlier do not matter)."""
    with Session(engine) as s:
        user = s.scalar(select(User).where(User.email == actor.email))
        assert user is not None
        return make_cookie(client.app.state.secret, user.id, user.session_epoch)  # type: ignore[attr-defined]


def csrf_for(client: TestClient, cookie: str | None) -> str:
    return csrf_token(client.app.state.secret, cookie) if cookie else ""  # type: ignore[attr-defined]
