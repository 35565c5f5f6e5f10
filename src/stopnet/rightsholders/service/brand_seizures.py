"""Seizures of a holder's brands: brand names normalised and matched to the seizures reported."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Collection, Sequence

from sqlalchemy import ColumnElement, and_, false, func, select
from sqlalchemy.orm import Session, selectinload

from stopnet.access.principal import Principal
from stopnet.core.errors import Forbidden, NotFound
from stopnet.db.models import (
    Case,
    CaseStatus,
    Operation,
    OrgKind,
    Participant,
    Seizure,
)
from stopnet.db.models.rightsholders import (
    Brand,
    BrandAlias,
    BrandStatus,
)

from ..schemas import (
    HolderSeizureOut,
)
from .access import _require_read
from .brands import normalise_brand
from .constants import SHARED


def brands_for_seizures(session: Session, seizures: Sequence[Seizure]) -> dict[int, list[Brand]]:
    """The approved brands each seizure's ``brand`` text names, by seizure id.

    Seizure reports are not changed: the brand text an officer typed is normalised
    (:func:`normalise_brand`: case, Unicode forms and whitespace ignored) and matched against the
    :class:`BrandAlias` rows of approved brands. A seizure may match several brands (two holders
    claiming one alias) or none. This is a system lookup: callers check that the principal may read
    the seizures.
    """
    keys = {s.id: normalise_brand(s.brand or "") for s in seizures}
    wanted = {k for k in keys.values() if k}
    if not wanted:
        return {s.id: [] for s in seizures}
    rows = session.execute(
        select(BrandAlias.normalised, Brand)
        .join(Brand, Brand.id == BrandAlias.brand_id)
        .where(BrandAlias.normalised.in_(wanted), Brand.status == BrandStatus.APPROVED)
        .options(selectinload(Brand.contacts))
        .order_by(Brand.id)
    ).all()
    by_key: dict[str, list[Brand]] = defaultdict(list)
    for key, brand in rows:
        if brand not in by_key[key]:
            by_key[key].append(brand)
    return {sid: list(by_key.get(key, [])) for sid, key in keys.items()}


def reported_brand_texts(session: Session, brand_ids: Collection[int]) -> dict[str, set[int]]:
    """Every distinct ``Seizure.brand`` text that names one of ``brand_ids`` (approved or not), with
    the brands it names. Portable: the distinct texts are normalised in Python, not in SQL."""
    if not brand_ids:
        return {}
    alias_rows = session.execute(
        select(BrandAlias.normalised, BrandAlias.brand_id).where(BrandAlias.brand_id.in_(brand_ids))
    ).all()
    by_key: dict[str, set[int]] = defaultdict(set)
    for key, bid in alias_rows:
        by_key[key].add(bid)
    out: dict[str, set[int]] = {}
    for (text,) in session.execute(select(Seizure.brand).where(Seizure.brand != "").distinct()):
        ids = by_key.get(normalise_brand(text))
        if ids:
            out[text] = ids
    return out


def _holder_operations(session: Session, principal: Principal) -> list[int]:
    return list(
        session.scalars(select(Participant.operation_id).where(Participant.org_id == principal.org_id))
    )


def holder_case_clause(op_ids: Collection[int]) -> ColumnElement[bool]:
    """Cases whose seizures a rights holder may count: shared, not drafts, in its operations."""
    if not op_ids:
        return false()
    return and_(
        Case.operation_id.in_(op_ids),
        Case.status != CaseStatus.DRAFT,
        Case.visibility.in_(SHARED),
    )


def holder_seizures(
    session: Session,
    principal: Principal,
    operation: str | None = None,
    brand_id: int | None = None,
    page: int = 1,
    page_size: int = 50,
) -> tuple[list[HolderSeizureOut], int]:
    """Seizures of the holder's approved brands, without case reference, consignee, notes or text.

    Only cases shared with the operation's participants (``participants``/``partners``), not drafts,
    in operations the holder takes part in.
    """
    _require_read(principal)
    if principal.org_kind is not OrgKind.RIGHTS_HOLDER:
        raise Forbidden("only rights holders list the seizures of their brands")
    brands = {
        b.id: b
        for b in session.scalars(
            select(Brand).where(Brand.owner_org_id == principal.org_id, Brand.status == BrandStatus.APPROVED)
        )
    }
    if brand_id is not None:
        if brand_id not in brands:
            raise NotFound(f"no approved brand {brand_id} of yours")
        brands = {brand_id: brands[brand_id]}
    op_ids = _holder_operations(session, principal)
    if operation:
        op = session.scalar(select(Operation).where(Operation.code == operation.upper()))
        if op is None or op.id not in op_ids:
            raise NotFound(f"no operation with code {operation!r}")
        op_ids = [op.id]
    texts = reported_brand_texts(session, list(brands))
    if not texts or not op_ids:
        return [], 0
    stmt = (
        select(Seizure, Case.detected_on, Case.reporting_country, Operation.code)
        .join(Case, Case.id == Seizure.case_id)
        .join(Operation, Operation.id == Case.operation_id)
        .where(Seizure.brand.in_(texts), holder_case_clause(op_ids))
    )
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.execute(
        stmt.order_by(Case.detected_on.desc(), Seizure.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    out = []
    for s, detected_on, country, op_code in rows:
        for bid in sorted(texts[s.brand]):
            out.append(
                HolderSeizureOut(
                    operation=op_code,
                    brand_id=bid,
                    brand=brands[bid].name,
                    reported_brand=s.brand,
                    commodity_code=s.commodity_code,
                    commodity_group=s.commodity_group,
                    pieces=s.pieces,
                    weight_kg=s.weight_kg,
                    detected_on=detected_on,
                    country=country,
                )
            )
    return out, total
