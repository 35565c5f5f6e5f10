"""The demo's risk-targeting data, so that the officer's targeting pages have something to show.

:func:`seed_demo_targeting` stores, for the home administration of the demo (``FR-CUS``), two weeks of
simulated e-commerce consignments arriving up to and after ``today`` (with their planted fraud patterns,
see :mod:`stopnet.risk.simulation`; :func:`demo_consignments`) and the results of the inspections made on
those that arrived before ``today``; then,
through the targeting service as any user would: the coordinator retrains the model on them, the
contact point writes, tests and activates one rule, and today's consignments are scored and selected
within a capacity of 5 %. Idempotent: an administration that already has consignments in the operation
is left as it is. Flushes, never commits.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from stopnet.access.service import cli_principal
from stopnet.db.models import Operation, Organisation, Role
from stopnet.db.models.targeting import Consignment

#: Offices of the demo administration the simulated consignments arrive at (airport, postal hub, port).
DEMO_OFFICES = ("FRCDG01", "FRPAR02", "FRLEH01")
#: The rule the demo activates (a planted pattern of the simulation: pens posted from CN via TR).
DEMO_RULE = (
    "R-PENS-TR",
    "Pens posted from CN via TR",
    'origin_country == "CN" and departure_country == "TR" and description ~ "pen"',
)


@dataclass
class TargetingDemoInfo:
    consignments: int = 0
    model_version: str | None = None
    rule: str | None = None
    day: dt.date | None = None
    selected: int = 0
    proposals: int = 0


def demo_consignments(
    org_country: str,
    today: dt.date,
    n: int,
    days: int,
    seed: int,
    inspection_rate: float = 0.12,
    profiled_rate: float = 0.7,
) -> pl.DataFrame:
    """``n`` simulated consignments for an administration (destination ``org_country``, its offices),
    declared over the ``days`` days ending two days before ``today``. They arrive one to eleven days after
    their declaration, so some are still on their way (advance data); only those that arrived before
    ``today`` can have been inspected. Past inspections followed the officers' profiling, as real ones
    do: ``profiled_rate`` of the fraudulent consignments were inspected, ``inspection_rate`` of the
    others, so the model is trained and validated on enough seizures to mean something (and the
    historic labels carry the selection bias that the selection's exploration share corrects)."""
    from stopnet.risk.simulation import generate_consignments

    frame = generate_consignments(
        n, start=today - dt.timedelta(days=days + 2), days=days, seed=seed, labels="none", truth=True
    )
    rng = np.random.default_rng(seed + 1)
    fraud = frame.get_column("truth_fraud").to_numpy()
    inspected = rng.random(frame.height) < np.where(fraud, profiled_rate, inspection_rate)
    seized = pl.Series("seized", inspected & fraud)
    frame = frame.with_columns(
        pl.Series("inspected", inspected),
        seized,
        pl.when(seized).then(pl.col("truth_commodity_code")).otherwise(None).alias("commodity_code"),
    ).drop("truth_fraud", "truth_commodity_code", "truth_pattern")
    offices = sorted(frame.get_column("office").unique().to_list())
    not_yet = pl.col("arrival_date") >= pl.lit(today)
    return frame.with_columns(
        pl.lit(org_country).alias("destination_country"),
        pl.col("office").replace_strict(
            {o: DEMO_OFFICES[i % len(DEMO_OFFICES)] for i, o in enumerate(offices)}
        ),
        pl.when(not_yet).then(False).otherwise(pl.col("inspected")).alias("inspected"),
        pl.when(not_yet).then(False).otherwise(pl.col("seized")).alias("seized"),
        pl.when(not_yet).then(None).otherwise(pl.col("commodity_code")).alias("commodity_code"),
    )


def seed_demo_targeting(
    session: Session,
    *,
    operation: str,
    org_code: str,
    key_master: bytes,
    model_dir: Path,
    today: dt.date,
    n: int = 30_000,
    days: int = 14,
    seed: int = 42,
    capacity: str = "5%",
) -> TargetingDemoInfo:
    """Load the demo's targeting data for ``org_code`` in ``operation`` (see the module docstring)."""
    from stopnet.targeting import service
    from stopnet.targeting.schemas import ProposeIn, RuleCreate, SelectionIn

    info = TargetingDemoInfo()
    op = session.scalar(select(Operation).where(Operation.code == operation.upper()))
    org = session.scalar(select(Organisation).where(Organisation.code == org_code.upper()))
    if op is None or org is None or op.coordinator_org_id is None:
        raise ValueError(f"no operation {operation!r} with a coordinator, or no organisation {org_code!r}")
    stored = session.scalar(
        select(func.count())
        .select_from(Consignment)
        .where(Consignment.operation_id == op.id, Consignment.org_id == org.id)
    )
    if stored:
        return info
    officer = cli_principal(session, org.code, Role.CONTACT_POINT)
    coordinator = cli_principal(
        session, session.get_one(Organisation, op.coordinator_org_id).code, Role.COORDINATOR
    )
    frame = demo_consignments(org.country_code or "FR", today, n, days, seed)
    info.consignments = service.ingest_frame(session, officer, op, frame, key_master).stored
    model_dir.mkdir(parents=True, exist_ok=True)
    out = service.retrain(
        session, coordinator, op, model_dir / f"{op.code.lower()}-demo.zip", seed=seed, org_code=org.code
    )
    info.model_version = out.model_version
    code, name, expression = DEMO_RULE
    rule = service.create_rule(
        session, officer, op, RuleCreate(code=code, name=name, expression=expression, weight=2.0)
    )
    service.test_rule(session, officer, op, rule.id)
    service.activate_rule(session, officer, op, rule.id)
    info.rule = code
    selection = service.run_selection(session, officer, op, SelectionIn(day=today, capacity=capacity))
    info.day = selection.day
    info.selected = selection.n_selected
    # criteria proposed from the operation's own seizures: its last week against the days before it
    info.proposals = len(service.propose(session, officer, op, ProposeIn(recent_days=7), today))
    return info
