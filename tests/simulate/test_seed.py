"""Seeding a real SQLite database (built from the migrations) through the reporting service."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from decimal import Decimal

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, sessionmaker

from stopnet.access.service import authenticate, resolve_token
from stopnet.audit.service import verify
from stopnet.core.errors import Conflict
from stopnet.db.engine import make_engine, make_sessionmaker, session_scope
from stopnet.db.migrate import upgrade
from stopnet.db.models import (
    ApiToken,
    AuditEntry,
    Base,
    Case,
    CaseStatus,
    CaseVersion,
    ContactPoint,
    Operation,
    OperationStatus,
    Organisation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    Seizure,
    User,
)
from stopnet.simulate import STOP_III, STOP_IV, DemoInfo, OperationSpec, seed_demo, seed_operation


@dataclass
class SimDb:
    engine: Engine
    factory: sessionmaker[Session]
    info: DemoInfo


@pytest.fixture(scope="module")
def sim_db(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimDb]:
    """A fresh database with the demo (STOP IV and STOP III) seeded once (shared by this module's tests)."""
    url = f"sqlite:///{tmp_path_factory.mktemp('simdb') / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        info = seed_demo(s, seed=42)
    yield SimDb(engine, factory, info)
    engine.dispose()


def _row_counts(session: Session) -> dict[str, int]:
    return {
        t.name: session.scalar(select(func.count()).select_from(t)) or 0 for t in Base.metadata.sorted_tables
    }


def _db_totals(session: Session, code: str) -> dict[str, tuple[int, Decimal]]:
    op_id = session.scalar(select(Operation.id).where(Operation.code == code))
    pieces: Counter[str] = Counter()
    kg: dict[str, Decimal] = {}
    for group, p, w in session.execute(
        select(Seizure.commodity_group, Seizure.pieces, Seizure.weight_kg).where(
            Seizure.operation_id == op_id
        )
    ):
        pieces[group] += p
        kg[group] = kg.get(group, Decimal(0)) + Decimal(w).quantize(Decimal("0.001"))
    return {g: (pieces[g], kg[g]) for g in pieces}


def _expected(spec: OperationSpec) -> dict[str, tuple[int, Decimal]]:
    return {g: (t.pieces, t.weight_kg) for g, t in spec.group_totals.items()}


def test_database_totals_equal_the_spec(sim_db: SimDb) -> None:
    with sim_db.factory() as s:
        assert _db_totals(s, "STOP-IV") == _expected(STOP_IV)
        op = s.scalar(select(Operation).where(Operation.code == "STOP-IV"))
        assert op is not None and op.status is OperationStatus.ACTIVE
        assert s.scalar(select(func.count(Case.id)).where(Case.operation_id == op.id)) == STOP_IV.cases
        assert (
            s.scalar(select(func.count(Seizure.id)).where(Seizure.operation_id == op.id)) == STOP_IV.seizures
        )
        ecom = s.scalar(
            select(func.count(Seizure.id)).join(Case).where(Case.operation_id == op.id, Case.is_ecommerce)
        )
        assert abs(ecom / STOP_IV.seizures - 0.63) <= 0.01
        regions = set(s.scalars(select(Case.region_code).where(Case.operation_id == op.id).distinct()))
        assert regions == {"AP", "EUR", "ESA", "WCA", "MENA", "AMS"}


def test_cases_went_through_the_reporting_service(sim_db: SimDb) -> None:
    ops = sim_db.info.operations
    assert list(ops) == ["STOP-IV", "STOP-III"]
    for spec in (STOP_IV, STOP_III):
        assert ops[spec.code].cases_created == spec.cases
        assert ops[spec.code].cases_validated == round(0.7 * spec.cases)
    cases = STOP_IV.cases + STOP_III.cases
    validated = sum(o.cases_validated for o in ops.values())
    with sim_db.factory() as s:
        statuses = Counter(s.scalars(select(Case.status)))
        assert set(statuses) == {CaseStatus.SUBMITTED, CaseStatus.VALIDATED}
        assert statuses[CaseStatus.VALIDATED] == validated
        # one snapshot per creation and per validation, and an audit entry for each
        assert s.scalar(select(func.count(CaseVersion.id))) == cases + validated
        actions = Counter(s.scalars(select(AuditEntry.action)))
        assert actions["case.create"] == cases
        assert actions["case.validate"] == validated
        assert verify(s) == []  # the hash chain is intact
        visibilities = Counter(s.scalars(select(Case.visibility)))
        assert visibilities.most_common(1)[0][0].value == "participants"
        # every simulated case is reported to the operation: restricted ones go to the coordinator
        assert {v.value for v in visibilities} == {"participants", "partners", "coordinator"}


def test_organisations_and_participants(sim_db: SimDb) -> None:
    with sim_db.factory() as s:
        kinds = Counter(s.scalars(select(Organisation.kind)))
        assert kinds[OrgKind.COORDINATOR] == 1
        assert kinds[OrgKind.RILO] == 12
        customs = set(
            s.scalars(select(Organisation.country_code).where(Organisation.kind == OrgKind.CUSTOMS))
        )
        assert len(customs) == kinds[OrgKind.CUSTOMS] >= STOP_IV.participants
        assert kinds[OrgKind.PARTNER] == len({p.code for p in (*STOP_IV.partners, *STOP_III.partners)})
        assert kinds[OrgKind.RIGHTS_HOLDER] == 2
        fr = s.scalar(select(Organisation).where(Organisation.code == "FR-CUS"))
        assert fr is not None and fr.name == "France Customs" and fr.region_code == "EUR"
        op_id = s.scalar(select(Operation.id).where(Operation.code == "STOP-IV"))
        roles = Counter(s.scalars(select(Participant.role).where(Participant.operation_id == op_id)))
        assert roles[ParticipantRole.COORDINATOR] == 1
        assert roles[ParticipantRole.MEMBER] == STOP_IV.participants
        assert roles[ParticipantRole.RILO] == 12
        assert roles[ParticipantRole.PARTNER] == len(STOP_IV.partners)
        assert roles[ParticipantRole.RIGHTS_HOLDER] == 2
        assert s.scalar(select(func.count(ContactPoint.id)).where(ContactPoint.operation_id == op_id)) >= 6
        phases = s.scalar(select(Operation).where(Operation.id == op_id)).phases  # type: ignore[union-attr]
        assert [p.accepts_reports for p in phases] == [False, True, False]


def test_one_user_per_role_with_working_passwords_and_a_token(sim_db: SimDb) -> None:
    info = sim_db.info
    assert {u.role for u in info.users} == set(Role)
    assert info.home_org == "FR-CUS"
    with sim_db.factory() as s:
        roles = Counter(s.scalars(select(User.role)))
        assert all(roles[r] == 1 for r in Role)
        for u in info.users:
            assert u.password and len(u.password) >= 16
            assert authenticate(s, u.email, u.password).role is u.role
        assert info.api_token is not None
        principal = resolve_token(s, info.api_token)
        assert (principal.org_code, principal.role) == ("FR-CUS", Role.OFFICER)
        s.rollback()
    passwords = [u.password for u in info.users]
    assert len(set(passwords)) == len(passwords)


def test_seeding_twice_creates_nothing_new(sim_db: SimDb) -> None:
    with sim_db.factory() as s:
        before = _row_counts(s)
    with session_scope(sim_db.factory) as s:
        again = seed_demo(s, seed=42)
    assert not again.created_anything
    assert again.api_token is None
    assert all(u.password is None for u in again.users)
    with sim_db.factory() as s:
        assert _row_counts(s) == before
        assert s.scalar(select(func.count(ApiToken.id))) == 1


def test_the_demo_loads_stop_iii_beside_stop_iv(sim_db: SimDb) -> None:
    assert sim_db.info.operations["STOP-III"].created
    with session_scope(sim_db.factory) as s:
        info = seed_operation(s, STOP_III, 42)  # already there: nothing new
    assert not info.created and info.cases_created == 0 and info.participants_added == 0
    with sim_db.factory() as s:
        assert _db_totals(s, "STOP-III") == _expected(STOP_III)
        assert _db_totals(s, "STOP-IV") == _expected(STOP_IV)
        op = s.scalar(select(Operation).where(Operation.code == "STOP-III"))
        assert op is not None and op.status is OperationStatus.CLOSED
        assert verify(s) == []


def test_another_seed_on_a_seeded_operation_is_refused(sim_db: SimDb) -> None:
    with sim_db.factory() as s:
        before = _row_counts(s)
        with pytest.raises(Conflict):
            seed_operation(s, STOP_IV, 7)
        s.rollback()
        assert _row_counts(s) == before
