"""API tokens: stored hashed, shown once, revocable, last use recorded."""

from __future__ import annotations

import hashlib

from sqlalchemy import select

from stopnet.db.models import ApiToken, utcnow


def test_token_is_stored_hashed_and_revocable(client, world, db):
    raw = world["fr_officer"].token
    assert raw.startswith("stn_")
    stored = db.scalars(select(ApiToken.token_hash)).all()
    assert raw not in stored
    assert hashlib.sha256(raw.encode()).hexdigest() in stored
    url = "/api/v1/operations/TEST-OP/cases"
    assert client.get(url, headers=world["fr_officer"].headers).status_code == 200
    tok = db.scalar(select(ApiToken).where(ApiToken.token_hash == hashlib.sha256(raw.encode()).hexdigest()))
    assert tok is not None and tok.last_used_at is not None
    tok.revoked_at = utcnow()
    db.commit()
    r = client.get(url, headers=world["fr_officer"].headers)
    assert r.status_code == 401
    assert "revoked" in r.json()["detail"]
