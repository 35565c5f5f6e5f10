"""A GET changes nothing: every GET route of the application (read from its routes through the
authorisation matrix, so a new route is covered), for every target of the matrix, called by a role that
may read it, leaves every table as it was.

Two kinds of writes are part of reading and are left out: the audit trail (reads of restricted cases are
audited, docs/security.md) and an API token's last use. A thread's read mark, for one, is set by a POST
(htmx, once the page is loaded), never by the GET of the page.
"""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import Engine, select

from stopnet.db.models import Base

from .authz_world import ROLES, AuthzWorld
from .test_authorisation_matrix import MATRIX, ROUTES, exercise, matrix  # noqa: F401 - the fixture

WRITTEN_BY_READS = {("audit_entry", None), ("api_token", "last_used_at")}


def _state(engine: Engine) -> dict[str, list[str]]:
    out = {}
    with engine.connect() as c:
        for table in Base.metadata.sorted_tables:
            if (table.name, None) in WRITTEN_BY_READS:
                continue
            cols = [col for col in table.c if (table.name, col.name) not in WRITTEN_BY_READS]
            out[table.name] = sorted(repr(tuple(row)) for row in c.execute(select(*cols)))
    return out


def test_no_get_route_changes_state(matrix: tuple[TestClient, AuthzWorld]) -> None:  # noqa: F811
    client, aw = matrix
    changed = []
    reads = sorted(k for k in MATRIX if k.startswith("GET ") and k in ROUTES)
    assert len(reads) > 50
    for key in reads:
        for target, expect in MATRIX[key].items():
            role = next((r for r in ROLES if expect[r] in ("allow", "public")), None)
            if role is None:
                continue
            before = _state(aw.engine)
            answer = exercise(client, aw.engine, aw, key, target, role)
            after = _state(aw.engine)
            assert answer.status < 500, (key, target, role, answer)
            tables = sorted(t for t in before if before[t] != after[t])
            if tables:
                changed.append((key, target, role, tables))
    assert changed == [], changed
