"""An operation's status follows its dates and phases: planned, active, closed (not a stored "active")."""

from __future__ import annotations

import datetime as dt

import pytest
from fastapi.testclient import TestClient

from stopnet.db.models import Operation, OperationPhase, OperationStatus
from stopnet.operations.service import status_on
from tests.conftest import World

TODAY = dt.date.today()


def _op(
    starts: int, ends: int, phases: list[tuple[int, int]] = (), status=OperationStatus.ACTIVE
) -> Operation:  # type: ignore[assignment]
    day = lambda n: TODAY + dt.timedelta(days=n)  # noqa: E731
    return Operation(
        code="X",
        name="x",
        starts_on=day(starts),
        ends_on=day(ends),
        status=status,
        phases=[
            OperationPhase(name=f"p{i}", starts_on=day(a), ends_on=day(b)) for i, (a, b) in enumerate(phases)
        ],
    )


@pytest.mark.parametrize(
    ("starts", "ends", "phases", "expected"),
    [
        (5, 20, [], OperationStatus.PLANNED),
        (-3, 3, [], OperationStatus.ACTIVE),
        (-30, -10, [], OperationStatus.CLOSED),  # past its dates: no longer "active"
        (5, 20, [(-10, -6)], OperationStatus.ACTIVE),  # the pre-operational workshops have begun
        (-30, -10, [(-9, 10)], OperationStatus.ACTIVE),  # the analysis phase is still running
        (0, 0, [], OperationStatus.ACTIVE),
    ],
)
def test_status_follows_the_dates_and_phases(starts, ends, phases, expected):
    assert status_on(_op(starts, ends, phases)) is expected


def test_closed_by_hand_stays_closed():
    assert status_on(_op(-3, 3, status=OperationStatus.CLOSED)) is OperationStatus.CLOSED


def test_pages_and_api_show_the_derived_status(client: TestClient, world: World):
    """TEST-OP ran in May 2025 and is stored as active: every view says closed."""
    h = world["coordinator"].headers
    api = {o["code"]: o["status"] for o in client.get("/api/v1/operations", headers=h).json()}
    assert api["TEST-OP"] == "closed"
    assert client.get("/operations/TEST-OP?format=json", headers=h).json()["status"] == "closed"
    page = client.get("/operations/TEST-OP", headers={**h, "Accept": "text/html"})
    assert "(closed)" in page.text
    assert client.get("/api/v1/operations/TEST-OP/reports/final", headers=h).json()["status"] == "closed"
