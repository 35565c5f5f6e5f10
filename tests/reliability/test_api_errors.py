"""The bugs the API fuzzing found, pinned down one by one (tests/reliability/test_api_fuzz.py finds them
again only with its seed; these fail on any run where they come back)."""

from __future__ import annotations

import pytest

from tests.conftest import case_payload


def test_every_api_operation_documents_the_common_error_body(client) -> None:
    spec = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in str(spec)
    assert spec["components"]["schemas"]["Error"]["required"] == ["error", "detail"]
    operations = [
        (path, method, op)
        for path, item in spec["paths"].items()
        if path.startswith("/api/")
        for method, op in item.items()
    ]
    assert len(operations) > 50
    for path, method, op in operations:
        for status in ("401", "403", "404", "422"):
            ref = op["responses"][status]["content"]["application/json"]["schema"]["$ref"]
            assert ref == "#/components/schemas/Error", (method, path, status)
        if method in ("post", "put", "delete"):
            assert "409" in op["responses"], (method, path)


def test_starlette_refusals_use_the_common_error_body(client, world) -> None:
    officer = world["fr_officer"].headers
    r = client.post(
        "/api/v1/operations/TEST-OP/cases",
        content=b"\xff{not json",
        headers={**officer, "Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["error"] == "bad_request", r.text
    r = client.get("/api/v1/no-such-thing", headers=officer)
    assert r.status_code == 404 and r.json()["error"] == "not_found"
    r = client.delete("/api/v1/reference", headers=officer)
    assert r.status_code == 405 and r.json()["error"] == "method_not_allowed"


@pytest.mark.parametrize("case_id", [2**31, 2**63, 10**30])
def test_an_id_past_the_database_range_is_refused_not_a_server_error(client, world, case_id: int) -> None:
    for path in (f"/api/v1/cases/{case_id}", f"/api/v1/cases/{case_id}/history"):
        r = client.get(path, headers=world["coordinator"].headers)
        assert r.status_code in (404, 422), (path, r.status_code, r.text)
        assert r.json()["error"] in ("not_found", "invalid")


@pytest.mark.parametrize("value", [False, 3, {"a": 1}, ["AE", 2]])
def test_transit_countries_of_the_wrong_type_are_invalid(client, world, value: object) -> None:
    r = client.post(
        "/api/v1/operations/TEST-OP/cases",
        json=case_payload(transit_countries=value),
        headers=world["fr_officer"].headers,
    )
    assert r.status_code == 422, r.text
    assert [e["field"] for e in r.json()["errors"]] == ["transit_countries"]
