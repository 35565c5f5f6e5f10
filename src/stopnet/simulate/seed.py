"""Load simulated operations into a database: organisations, operations, users and cases.

:func:`seed_operation` loads one :class:`~stopnet.simulate.specs.OperationSpec` (STOP III or IV);
:func:`seed_demo` loads the demo: the operations asked for (STOP IV, the current one, and STOP III, the
earlier one its final report compares with, by default), one user per role and an API token. Cases go through :func:`stopnet.reporting.service.create_case` with an officer of the
reporting administration, and about 70 % are validated with
:func:`stopnet.reporting.service.validate_case` by its national contact point, so the schema checks,
permissions, versions and the audit trail all apply as for real reports.

Both are idempotent: what exists (organisations by code, the operation by code, participants, contact
points, cases by administration and reference, validations, users by e-mail, the demo token by name) is
left as it is, so a second run creates nothing new. Like every service, they flush and never commit:
the caller (``stopnet demo`` runs them in :func:`stopnet.db.engine.session_scope`) owns the transaction.

Passwords are generated per demo with :func:`secrets.token_urlsafe` and returned once in
:class:`DemoInfo`; none is stored in the repository. A second run leaves existing users' passwords
unchanged (and returns ``None`` for them) unless ``reset_passwords=True``.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from stopnet.access.passwords import hash_password
from stopnet.access.principal import Principal
from stopnet.access.service import cli_principal, create_token, create_user
from stopnet.core.errors import Conflict
from stopnet.core.progress import ProgressCallback
from stopnet.db.models import (
    ApiToken,
    Case,
    CaseStatus,
    ContactPoint,
    Operation,
    OperationStatus,
    Organisation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    User,
    utcnow,
)
from stopnet.operations.schemas import OperationCreate, PhaseIn
from stopnet.operations.service import add_participant, create_operation
from stopnet.reference import get_reference
from stopnet.reporting.service import create_case, validate_case

from .operation import RIGHTS_HOLDERS, SimulatedOperation, simulate_operation
from .specs import SPECS, OperationSpec

__all__ = [
    "COORDINATOR_CODE",
    "DEMO_OPERATIONS",
    "DEMO_TOKEN_NAME",
    "DemoInfo",
    "DemoUser",
    "OperationInfo",
    "customs_code",
    "seed_demo",
    "seed_operation",
]

COORDINATOR_CODE = "WCO-OCU"
COORDINATOR_NAME = "WCO Operational Coordination Unit"
DEMO_TOKEN_NAME = "Demo national system"  # noqa: S105 - a token name, not a secret
DEMO_EMAIL_DOMAIN = "stopnet-demo.example"
#: Administration that hosts the demo's officer and contact point, if it reports in the operation.
HOME_PREFERENCE = ("FR", "DE", "IT", "ES", "NL", "BE", "GB")
VALIDATED_SHARE = 0.7
#: The demo's operations: the current one first (STOP IV), then the earlier one it is compared with.
DEMO_OPERATIONS: tuple[str, ...] = ("STOP-IV", "STOP-III")


@dataclass(frozen=True)
class DemoUser:
    role: Role
    email: str
    org_code: str
    #: The password, when this run created (or reset) it; ``None`` when the user already existed.
    password: str | None


@dataclass(frozen=True)
class OperationInfo:
    code: str
    created: bool
    participants_added: int
    cases_created: int
    cases_validated: int
    cases_total: int
    seizures_total: int
    seconds: float
    #: ISO-2 codes of the administrations that report in the simulation.
    reporting: tuple[str, ...] = ()


@dataclass
class DemoInfo:
    seed: int
    organisations_created: int = 0
    operations: dict[str, OperationInfo] = field(default_factory=dict)
    users: list[DemoUser] = field(default_factory=list)
    #: Code of the customs administration of the demo's officer and contact point (``FR-CUS``).
    home_org: str = ""
    api_token_org: str = ""
    #: The raw API token secret, when this run created it (it is shown once; only its hash is stored).
    api_token: str | None = None
    seconds: float = 0.0

    @property
    def created_anything(self) -> bool:
        return bool(
            self.organisations_created
            or self.api_token
            or any(u.password for u in self.users)
            or any(o.created or o.participants_added or o.cases_created or o.cases_validated
                   for o in self.operations.values())
        )  # fmt: skip

    def credentials(self) -> dict[str, tuple[str, str | None]]:
        """``role -> (e-mail, password)`` of the demo users."""
        return {u.role.value: (u.email, u.password) for u in self.users}


# ------------------------------------------------------------------------------------------ organisations


def customs_code(iso2: str) -> str:
    """The organisation code of a country's customs administration in the demo (``FR-CUS``)."""
    return f"{iso2.upper()}-CUS"


def _country_name(name: str) -> str:
    """``"Korea, Republic of"`` -> ``"Republic of Korea"`` (ISO names put the qualifier last)."""
    if ", " in name:
        head, tail = name.split(", ", 1)
        return f"{tail} {head}"
    return name


class _Orgs:
    """Get-or-create organisations by code, counting what was created."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self.by_code = {o.code: o for o in session.scalars(select(Organisation))}
        self.created = 0

    def ensure(
        self, code: str, name: str, kind: OrgKind, country: str | None, region: str | None
    ) -> Organisation:
        org = self.by_code.get(code)
        if org is None:
            org = Organisation(code=code, name=name, kind=kind, country_code=country, region_code=region)
            self.session.add(org)
            self.by_code[code] = org
            self.created += 1
        return org

    def ensure_base(self, specs: Iterable[OperationSpec]) -> None:
        ref = get_reference()
        self.ensure(COORDINATOR_CODE, COORDINATOR_NAME, OrgKind.COORDINATOR, "BE", None)
        for rilo in ref.rilos:
            self.ensure(rilo.code, rilo.name, OrgKind.RILO, rilo.country, rilo.region_code)
        for code, (name, country) in RIGHTS_HOLDERS.items():
            self.ensure(code, name, OrgKind.RIGHTS_HOLDER, country, None)
        for spec in specs:
            for p in spec.partners:
                self.ensure(p.code, p.name, OrgKind.PARTNER, p.country_code, None)

    def ensure_customs(self, countries: Iterable[str]) -> None:
        ref = get_reference()
        for iso2 in countries:
            country = ref.countries[iso2]
            self.ensure(
                customs_code(iso2),
                f"{_country_name(country.name)} Customs",
                OrgKind.CUSTOMS,
                iso2,
                country.region_code,
            )


# ------------------------------------------------------------------------------------------ operations


def _ensure_operation(
    session: Session, coordinator: Principal, spec: OperationSpec, status: OperationStatus | None
) -> tuple[Operation, bool]:
    op = session.scalar(select(Operation).where(Operation.code == spec.code))
    if op is not None:
        return op, False
    data = OperationCreate(
        code=spec.code,
        name=spec.name,
        scope=spec.scope,
        starts_on=spec.starts_on,
        ends_on=spec.ends_on,
        phases=[
            PhaseIn(
                name=p.name,
                starts_on=p.starts_on,
                ends_on=p.ends_on,
                description=p.description,
                accepts_reports=p.accepts_reports,
            )
            for p in spec.phases
        ],
    )
    op = create_operation(session, coordinator, data)
    if status is None:
        status = OperationStatus.CLOSED if spec.ends_on < dt.date.today() else OperationStatus.ACTIVE
    op.status = status
    session.flush()
    return op, True


def _ensure_participants(
    session: Session,
    coordinator: Principal,
    op: Operation,
    orgs: _Orgs,
    spec: OperationSpec,
    sim: SimulatedOperation,
) -> int:
    existing = set(session.scalars(select(Participant.org_id).where(Participant.operation_id == op.id)))
    wanted: list[tuple[str, ParticipantRole]] = [
        (customs_code(c), ParticipantRole.MEMBER) for c in sim.administrations
    ]
    if spec.rilo_support:
        wanted += [(r.code, ParticipantRole.RILO) for r in get_reference().rilos]
    wanted += [(p.code, ParticipantRole.PARTNER) for p in spec.partners]
    wanted += [(code, ParticipantRole.RIGHTS_HOLDER) for code in RIGHTS_HOLDERS]
    added = 0
    for code, role in wanted:
        org = orgs.by_code[code]
        if org.id not in existing:
            add_participant(session, coordinator, op, org, role)
            existing.add(org.id)
            added += 1
    return added


def _ensure_contact_points(
    session: Session, op: Operation, orgs: _Orgs, sim: SimulatedOperation, home: str
) -> None:
    """A national contact point for the home administration and the busiest reporter of each region."""
    have = set(session.scalars(select(ContactPoint.org_id).where(ContactPoint.operation_id == op.id)))
    busiest: dict[str, tuple[int, str]] = {}
    counts: dict[str, int] = {}
    for c in sim.cases:
        counts[c.reporting_country] = counts.get(c.reporting_country, 0) + 1
    for iso2, n in sorted(counts.items()):
        region = sim.regions[iso2]
        if region not in busiest or n > busiest[region][0]:
            busiest[region] = (n, iso2)
    countries = [home] + [iso2 for _, (_, iso2) in sorted(busiest.items()) if iso2 != home]
    for iso2 in countries:
        org = orgs.by_code.get(customs_code(iso2))
        if org is None or org.id in have:
            continue
        session.add(
            ContactPoint(
                operation_id=op.id,
                org_id=org.id,
                name=f"National contact point {iso2} (demo)",
                function="National contact point, e-commerce enforcement",
                email=f"ncp.{iso2.lower()}@{DEMO_EMAIL_DOMAIN}",
                phone="",
                languages="en" if iso2 not in ("FR", "SN", "CI", "BJ", "TG", "MA") else "fr,en",
            )
        )
        have.add(org.id)
    session.flush()


def _home_country(sim: SimulatedOperation) -> str:
    for iso2 in HOME_PREFERENCE:
        if iso2 in sim.reporting:
            return iso2
    counts: dict[str, int] = {}
    for c in sim.cases:
        counts[c.reporting_country] = counts.get(c.reporting_country, 0) + 1
    return max(sorted(counts), key=lambda k: counts[k])


def _load_cases(
    session: Session,
    op: Operation,
    orgs: _Orgs,
    sim: SimulatedOperation,
    validated_share: float,
    progress: ProgressCallback | None = None,
) -> tuple[int, int]:
    existing = {
        (org_id, ref): (case_id, version, status)
        for case_id, org_id, ref, version, status in session.execute(
            select(Case.id, Case.reporting_org_id, Case.reference, Case.version, Case.status).where(
                Case.operation_id == op.id
            )
        )
    }
    officers: dict[str, Principal] = {}
    created = 0
    for n, c in enumerate(sim.cases, 1):
        if progress is not None and (n % 50 == 0 or n == len(sim.cases)):
            progress(n, len(sim.cases))
        code = c.org_code
        org = orgs.by_code[code]
        key = (org.id, c.data.reference)
        if key in existing:
            continue
        if code not in officers:
            officers[code] = cli_principal(session, code, Role.OFFICER)
        case = create_case(session, officers[code], op, c.data)
        existing[key] = (case.id, case.version, case.status)
        created += 1
    # validation by the national contact point: the same ~70 % of cases for a seed
    rng = random.Random(f"stopnet.simulate.validate:{sim.spec.code}:{sim.seed}")
    chosen = sorted(rng.sample(range(len(sim.cases)), round(validated_share * len(sim.cases))))
    ncps: dict[str, Principal] = {}
    validated = 0
    for i in chosen:
        c = sim.cases[i]
        code = c.org_code
        case_id, version, status = existing[(orgs.by_code[code].id, c.data.reference)]
        if status is not CaseStatus.SUBMITTED:
            continue
        if code not in ncps:
            ncps[code] = cli_principal(session, code, Role.CONTACT_POINT)
        validate_case(session, ncps[code], case_id, version)
        validated += 1
    return created, validated


def _check_same_simulation(session: Session, sim: SimulatedOperation) -> None:
    """Refuse to top up an operation seeded with another seed (the totals would no longer match).

    Cases whose reference the simulation does not use (reported by hand in the demo) are left alone.
    """
    op_id = session.scalar(select(Operation.id).where(Operation.code == sim.spec.code))
    if op_id is None:
        return
    expected = {(c.org_code, c.data.reference): c.detected_on for c in sim.cases}
    rows = session.execute(
        select(Organisation.code, Case.reference, Case.detected_on)
        .join(Organisation, Organisation.id == Case.reporting_org_id)
        .where(Case.operation_id == op_id)
    )
    for org_code, reference, detected_on in rows:
        want = expected.get((org_code, reference))
        if want is not None and want != detected_on:
            raise Conflict(
                f"operation {sim.spec.code} already holds simulated cases from another seed or generator "
                f"version (case {org_code}/{reference}); seed a fresh database instead"
            )


def seed_operation(
    session: Session,
    spec: OperationSpec | str,
    seed: int = 42,
    *,
    plant_trends: bool = True,
    status: OperationStatus | None = None,
    validated_share: float = VALIDATED_SHARE,
    simulation: SimulatedOperation | None = None,
    progress: ProgressCallback | None = None,
) -> OperationInfo:
    """Load one simulated operation (organisations, operation, participants, contact points, cases).

    ``spec`` is an :class:`OperationSpec` or its code (``"STOP-III"``). ``status`` defaults to
    ``closed`` for an operation whose dates are past, else ``active``; it is only set when the operation
    is created. ``progress(cases loaded, cases simulated)`` follows the cases. Idempotent; flushes, never
    commits.
    """
    t0 = time.perf_counter()
    if isinstance(spec, str):
        spec = SPECS[spec.upper()]
    sim = simulation or simulate_operation(spec, seed, plant_trends=plant_trends)
    _check_same_simulation(session, sim)
    orgs = _Orgs(session)
    orgs.ensure_base([spec])
    orgs.ensure_customs(sim.administrations)
    session.flush()
    coordinator = cli_principal(session, COORDINATOR_CODE, Role.COORDINATOR)
    op, created = _ensure_operation(session, coordinator, spec, status)
    added = _ensure_participants(session, coordinator, op, orgs, spec, sim)
    _ensure_contact_points(session, op, orgs, sim, _home_country(sim))
    cases_created, validated = _load_cases(session, op, orgs, sim, validated_share, progress)
    session.flush()
    return OperationInfo(
        code=spec.code,
        created=created,
        participants_added=added,
        cases_created=cases_created,
        cases_validated=validated,
        cases_total=len(sim.cases),
        seizures_total=sim.seizure_count,
        seconds=round(time.perf_counter() - t0, 3),
        reporting=sim.reporting,
    )


# ------------------------------------------------------------------------------------------ demo


def _ensure_user(
    session: Session, org: Organisation, role: Role, email: str, display_name: str, reset_password: bool
) -> tuple[User, str | None]:
    user = session.scalar(select(User).where(User.email == email))
    if user is None:
        password = secrets.token_urlsafe(12)
        return create_user(session, org, email, display_name, role, password), password
    if reset_password:
        password = secrets.token_urlsafe(12)
        user.password_hash = hash_password(password)
        user.failed_logins = 0
        user.locked_until = None
        session.flush()
        return user, password
    return user, None


def seed_demo(
    session: Session,
    *,
    seed: int = 42,
    operations: Sequence[str] = DEMO_OPERATIONS,
    plant_trends: bool = True,
    reset_passwords: bool = False,
    validated_share: float = VALIDATED_SHARE,
) -> DemoInfo:
    """Load the demo: ``operations`` (codes of :data:`SPECS`), one user per role and an API token.

    The first operation is the demo's current one: it is made ``active`` (the others get their status
    from their dates) and hosts the users: an administrator and a coordinator at ``WCO-OCU``, an analyst
    at the RILO of the home region, a contact point and an officer at the home administration (France if
    it reports, ``FR-CUS``), a partner at INTERPOL (else the first partner) and a rights holder
    (``RH-NOVAFIT``). Idempotent; flushes, never commits.
    """
    t0 = time.perf_counter()
    codes = [c.upper() for c in operations]
    if not codes:
        raise ValueError("seed_demo needs at least one operation")
    unknown = [c for c in codes if c not in SPECS]
    if unknown:
        raise ValueError(f"unknown operation(s) {', '.join(unknown)}; known: {', '.join(SPECS)}")
    info = DemoInfo(seed=seed)
    before = len(session.scalars(select(Organisation.id)).all())
    sims: dict[str, SimulatedOperation] = {}
    for i, code in enumerate(codes):
        spec = SPECS[code]
        sims[code] = sim = simulate_operation(spec, seed, plant_trends=plant_trends)
        info.operations[code] = seed_operation(
            session,
            spec,
            seed,
            status=OperationStatus.ACTIVE if i == 0 else None,
            validated_share=validated_share,
            simulation=sim,
        )
    main = sims[codes[0]]
    spec = main.spec
    home = _home_country(main)
    ref = get_reference()
    home_code = customs_code(home)
    home_region = main.regions[home]
    rilo = next((r.code for r in ref.rilos if r.region_code == home_region), ref.rilos[0].code)
    partner_codes = [p.code for p in spec.partners]
    partner = "INTERPOL" if "INTERPOL" in partner_codes else partner_codes[0]
    people = [
        (Role.ADMIN, COORDINATOR_CODE, "admin", "Demo administrator"),
        (Role.COORDINATOR, COORDINATOR_CODE, "coordinator", "Demo coordinator (WCO OCU)"),
        (Role.ANALYST, rilo, "analyst", f"Demo analyst ({rilo})"),
        (Role.CONTACT_POINT, home_code, "contact-point", f"Demo national contact point ({home})"),
        (Role.OFFICER, home_code, "officer", f"Demo customs officer ({home})"),
        (Role.PARTNER, partner, "partner", f"Demo partner ({partner})"),
        (Role.RIGHTS_HOLDER, "RH-NOVAFIT", "rights-holder", "Demo rights holder (Novafit)"),
    ]
    orgs = {o.code: o for o in session.scalars(select(Organisation))}
    officer: User | None = None
    for role, org_code, local, display in people:
        email = f"{local}@{DEMO_EMAIL_DOMAIN}"
        user, password = _ensure_user(session, orgs[org_code], role, email, display, reset_passwords)
        info.users.append(DemoUser(role, email, org_code, password))
        if role is Role.OFFICER:
            officer = user
    home_org = orgs[home_code]
    info.home_org = info.api_token_org = home_code
    live_tokens = session.scalars(
        select(ApiToken).where(
            ApiToken.org_id == home_org.id, ApiToken.name == DEMO_TOKEN_NAME, ApiToken.revoked_at.is_(None)
        )
    ).all()
    if reset_passwords:  # a new demo run shows a new token: the old one stops working
        for old in live_tokens:
            old.revoked_at = utcnow()
        live_tokens = []
    if not live_tokens:
        _, raw = create_token(
            session,
            None,
            home_org,
            DEMO_TOKEN_NAME,
            Role.OFFICER,
            frozenset({"cases:read", "cases:write", "import", "export"}),
            user=officer,
        )
        info.api_token = raw
    session.flush()
    info.organisations_created = len(session.scalars(select(Organisation.id)).all()) - before
    info.seconds = round(time.perf_counter() - t0, 3)
    return info
