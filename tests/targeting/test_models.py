"""Risk models per administration: a model trained on one administration's consignments, and its metrics,
are seen by that administration and the coordinator only, unless shared; each administration is scored by
its own model, else by the operation's pooled model once the coordinator has shared it."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from stopnet.access.service import cli_principal
from stopnet.core.errors import Forbidden
from stopnet.db.models import AuditEntry, Operation, Role
from tests.pages import HTML, csrf_from

from .conftest import API, OP, OPS, stream


def _retrain(session_factory, org: str, role: Role, out: Path, for_org: str | None = None):  # type: ignore[no-untyped-def]
    from stopnet.targeting import service

    with session_factory() as s:
        principal = cli_principal(s, org, role)
        op = s.scalar(select(Operation).where(Operation.code == OP))
        report = service.retrain(s, principal, op, out, max_rounds=20, org_code=for_org)
        s.commit()
        return report


def _versions(client, actor) -> list[str]:  # type: ignore[no-untyped-def]
    r = client.get(f"{OPS}/models", headers=actor.headers)
    assert r.status_code == 200, r.text
    return [m["version"] for m in r.json()]


def _scored_by(post, actor, consignment) -> str | None:  # type: ignore[no-untyped-def]
    r = post(actor, f"{API}/score", {"operation": OP, "consignment": consignment})
    assert r.status_code == 200, r.text
    return r.json()["model_version"]


@pytest.fixture
def histories(ingest, world):  # type: ignore[no-untyped-def]
    fr = stream(700, seed=11, start="2025-04-01", days=30, labels="full")
    de = stream(700, seed=12, start="2025-04-01", days=30, labels="full")
    ingest(world["fr_officer"], fr)
    ingest(world["de_officer"], de)
    one = {k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in fr.row(0, named=True).items()}
    return one


def test_models_are_seen_by_their_administration_and_shared_on_purpose(
    client, post, world, session_factory, histories, tmp_path, signed_in
):
    fr, de, coordinator = world["fr_officer"], world["de_officer"], world["coordinator"]
    # an administration's contact point trains its own model on its own consignments only
    fr_model = _retrain(session_factory, "FR-CUS", Role.CONTACT_POINT, tmp_path / "fr.zip")
    assert fr_model.org_code == "FR-CUS" and fr_model.rows == 700
    # an officer does not; nor does another administration's contact point for FR
    with pytest.raises(Forbidden):
        _retrain(session_factory, "FR-CUS", Role.OFFICER, tmp_path / "x.zip")
    with pytest.raises(Forbidden):
        _retrain(session_factory, "DE-CUS", Role.CONTACT_POINT, tmp_path / "x.zip", for_org="FR-CUS")
    # the coordinator trains the operation's pooled model on every administration's consignments
    pooled = _retrain(session_factory, "WCO-OCU", Role.COORDINATOR, tmp_path / "pooled.zip")
    assert pooled.org_code is None and pooled.rows == 1400

    assert set(_versions(client, coordinator)) == {fr_model.model_version, pooled.model_version}
    assert _versions(client, fr) == [fr_model.model_version]
    assert _versions(client, de) == []
    # nor through the performance twin or page
    assert client.get(f"{OPS}/performance", headers=de.headers).json()["models"] == []
    page = signed_in(de).get(f"/operations/{OP}/targeting/performance", headers=HTML)
    assert page.status_code == 200 and fr_model.model_version not in page.text
    assert pooled.model_version not in page.text
    overview = signed_in(de).get(f"/operations/{OP}/targeting", headers=HTML)
    assert fr_model.model_version not in overview.text and "none registered yet" in overview.text

    # FR is scored by its own model; DE by none until the coordinator shares the pooled one
    assert _scored_by(post, fr, histories) == fr_model.model_version
    assert _scored_by(post, de, histories) is None
    r = post(coordinator, f"{OPS}/models/{pooled.model_version}/sharing", {"shared": True})
    assert r.status_code == 200 and r.json()["shared"] is True, r.text
    assert _scored_by(post, de, histories) == pooled.model_version
    assert _scored_by(post, fr, histories) == fr_model.model_version  # its own model still comes first
    assert _versions(client, de) == [pooled.model_version]
    assert pooled.model_version in signed_in(de).get(f"/operations/{OP}/targeting", headers=HTML).text

    # FR's model is FR's to share: not DE's, not an FR officer's; an unknown version is a 404
    for actor in (de, world["de_ncp"], fr):
        r = post(actor, f"{OPS}/models/{fr_model.model_version}/sharing", {"shared": True})
        assert r.status_code in (403, 404), (actor.email, r.status_code)
    r = post(world["fr_ncp"], f"{OPS}/models/nope/sharing", {"shared": True})
    assert r.status_code == 404
    # FR's contact point shares it from the performance page
    ncp = signed_in(world["fr_ncp"])
    page = ncp.get(f"/operations/{OP}/targeting/performance", headers=HTML)
    assert "Share with every member" in page.text
    r = ncp.post(
        f"/operations/{OP}/targeting/models/{fr_model.model_version}/sharing",
        data={"csrf_token": csrf_from(page.text), "shared": "1"},
        follow_redirects=False,
    )
    assert r.status_code == 303, r.text
    seen = client.get(f"{OPS}/models", headers=de.headers).json()
    assert {m["version"]: m["org_code"] for m in seen} == {
        fr_model.model_version: "FR-CUS",
        pooled.model_version: None,
    }
    assert all(not m["may_share"] for m in seen)  # DE sees them, manages neither
    # a shared FR model still scores FR's consignments only
    assert _scored_by(post, de, histories) == pooled.model_version
    with session_factory() as s:
        actions = list(
            s.scalars(select(AuditEntry.action).where(AuditEntry.action.like("targeting.model.%")))
        )
    assert actions.count("targeting.model.share") == 2 and actions.count("targeting.model.register") == 2
