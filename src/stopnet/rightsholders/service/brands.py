"""Brands: registered by their holders, approved or refused by the coordinating unit, read by officers."""

from __future__ import annotations

import datetime as dt
import unicodedata
from collections.abc import Iterable

from sqlalchemy import ColumnElement, func, or_, select, true
from sqlalchemy.orm import Session, selectinload

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, NotFound
from stopnet.core.like import LIKE_ESCAPE, contains_pattern
from stopnet.db.models import (
    Organisation,
)
from stopnet.db.models.rightsholders import (
    Brand,
    BrandAlias,
    BrandContact,
    BrandStatus,
    Representative,
    Trademark,
)

from ..schemas import (
    AliasConflict,
    BrandCreate,
    BrandOut,
    BrandSummary,
    ContactIn,
    ContactOut,
    RepresentativeOut,
    TrademarkOut,
)
from .access import _require_coordinator, _require_holder, _require_read, is_private
from .constants import STALE_AFTER, _now


def normalise_brand(name: str) -> str:
    """The matching key of a brand name: Unicode-folded, case-insensitive, without any whitespace.

    >>> normalise_brand("  Brand  X ") == normalise_brand("BRANDX") == "brandx"
    True
    """
    return "".join(unicodedata.normalize("NFKC", name).casefold().split())[:120]


def _split(text: str) -> list[str]:
    return [v for v in text.splitlines() if v.strip()]


def register_brand(
    session: Session, principal: Principal, data: BrandCreate, now: dt.datetime | None = None
) -> Brand:
    """A rights holder registers a brand; it stays ``pending`` until the coordinating unit decides."""
    _require_holder(principal)
    dup = session.scalar(
        select(Brand.id).where(
            Brand.owner_org_id == principal.org_id, func.lower(Brand.name) == data.name.lower()
        )
    )
    if dup is not None:
        raise Conflict(f"you already registered the brand {data.name!r} (brand {dup})")
    at = _now(now)
    brand = Brand(
        owner_org_id=principal.org_id,
        name=data.name,
        status=BrandStatus.PENDING,
        description=data.description,
        product_lines="\n".join(data.product_lines),
        hs_codes=" ".join(data.hs_codes),
        created_by_id=principal.user_id,
        created_at=at,
        updated_at=at,
        trademarks=[Trademark(**t.model_dump()) for t in data.trademarks],
        representatives=[Representative(**r.model_dump()) for r in data.representatives],
    )
    seen: set[str] = set()
    for alias in [data.name, *data.aliases]:
        key = normalise_brand(alias)
        if key and key not in seen:
            seen.add(key)
            brand.aliases.append(BrandAlias(alias=alias[:120], normalised=key))
    session.add(brand)
    session.flush()
    record(session, principal, "brand.register", "brand", brand.id, {"name": brand.name})
    return brand


def decide_brand(
    session: Session,
    principal: Principal,
    brand_id: int,
    decision: str,
    note: str = "",
    now: dt.datetime | None = None,
) -> Brand:
    """The coordinating unit approves or rejects a brand (an approved brand may later be rejected)."""
    _require_coordinator(principal)
    brand = _load_brand(session, brand_id)
    new = BrandStatus(decision)
    if new is BrandStatus.PENDING:
        raise Conflict("a decision is approved or rejected")
    if brand.status is new:
        raise Conflict(f"brand {brand.id} is already {new.value}")
    before = brand.status
    brand.status = new
    brand.decided_at = _now(now)
    brand.decided_by_id = principal.user_id
    brand.decision_note = note
    session.flush()
    record(
        session,
        principal,
        "brand.decide",
        "brand",
        brand.id,
        {"name": brand.name, "decision": new.value, "from": before.value, "note": note},
    )
    return brand


def _load_brand(session: Session, brand_id: int) -> Brand:
    brand = session.scalar(
        select(Brand)
        .where(Brand.id == brand_id)
        .options(
            selectinload(Brand.trademarks),
            selectinload(Brand.aliases),
            selectinload(Brand.representatives),
            selectinload(Brand.contacts),
        )
    )
    if brand is None:
        raise NotFound(f"no brand {brand_id}")
    return brand


def brand_read_clause(principal: Principal) -> ColumnElement[bool]:
    """Brands the principal may read: its own (holders), all (coordinating unit), else approved ones."""
    if is_private(principal):
        return Brand.owner_org_id == principal.org_id
    if principal.is_coordinator:
        return true()
    return Brand.status == BrandStatus.APPROVED


def get_brand(session: Session, principal: Principal, brand_id: int) -> Brand:
    policy.require_record_read(principal)
    brand = _load_brand(session, brand_id)
    if not session.scalar(select(true()).where(Brand.id == brand.id, brand_read_clause(principal))):
        raise NotFound(f"no brand {brand_id}")
    return brand


def list_brands(
    session: Session, principal: Principal, status: BrandStatus | None = None, q: str | None = None
) -> list[Brand]:
    _require_read(principal)
    stmt = select(Brand).where(brand_read_clause(principal))
    if status is not None:
        stmt = stmt.where(Brand.status == status)
    if q:
        key = normalise_brand(q)
        stmt = stmt.where(
            or_(
                func.lower(Brand.name).like(contains_pattern(q), escape=LIKE_ESCAPE),
                Brand.id.in_(
                    select(BrandAlias.brand_id).where(
                        BrandAlias.normalised.like(contains_pattern(key), escape=LIKE_ESCAPE)
                    )
                ),
            )
        )
    return list(
        session.scalars(stmt.options(selectinload(Brand.contacts)).order_by(func.lower(Brand.name), Brand.id))
    )


def alias_conflicts(session: Session, brand: Brand) -> list[AliasConflict]:
    """Approved brands of other holders sharing one of ``brand``'s aliases (shown before approving)."""
    keys = {a.normalised: a.alias for a in brand.aliases}
    if not keys:
        return []
    rows = session.execute(
        select(BrandAlias.normalised, Brand.id, Brand.name, Organisation.code)
        .join(Brand, Brand.id == BrandAlias.brand_id)
        .join(Organisation, Organisation.id == Brand.owner_org_id)
        .where(
            BrandAlias.normalised.in_(keys),
            Brand.id != brand.id,
            Brand.status == BrandStatus.APPROVED,
        )
        .order_by(Brand.id)
    ).all()
    return [AliasConflict(alias=keys[k], brand_id=i, brand=n, owner_org=c) for k, i, n, c in rows]


def _org(session: Session, org_id: int) -> Organisation:
    return session.get_one(Organisation, org_id)


def contact_out(c: BrandContact, now: dt.datetime) -> ContactOut:
    return ContactOut(
        id=c.id,
        brand_id=c.brand_id,
        territory=c.territory,
        name=c.name,
        function=c.function,
        email=c.email,
        phone=c.phone,
        channel=c.channel,
        languages=c.languages,
        response_hours=c.response_hours,
        last_confirmed_at=c.last_confirmed_at,
        stale=is_stale(c, now),
    )


def brand_out(
    session: Session, principal: Principal, brand: Brand, now: dt.datetime | None = None
) -> BrandOut:
    at = _now(now)
    org = _org(session, brand.owner_org_id)
    conflicts = (
        alias_conflicts(session, brand) if principal.is_coordinator and not is_private(principal) else []
    )
    return BrandOut(
        id=brand.id,
        name=brand.name,
        owner_org=org.code,
        owner_name=org.name,
        status=brand.status,
        description=brand.description,
        product_lines=_split(brand.product_lines),
        hs_codes=brand.hs_codes.split(),
        aliases=[a.alias for a in brand.aliases],
        trademarks=[TrademarkOut.model_validate(t) for t in brand.trademarks],
        representatives=[RepresentativeOut.model_validate(r) for r in brand.representatives],
        contacts=[contact_out(c, at) for c in sorted(brand.contacts, key=_contact_order)],
        decided_at=brand.decided_at,
        decision_note=brand.decision_note,
        created_at=brand.created_at,
        alias_conflicts=conflicts,
    )


def brand_summary(
    session: Session, brand: Brand, now: dt.datetime | None = None, codes: dict[int, str] | None = None
) -> BrandSummary:
    at = _now(now)
    code = (codes or {}).get(brand.owner_org_id) or _org(session, brand.owner_org_id).code
    return BrandSummary(
        id=brand.id,
        name=brand.name,
        owner_org=code,
        status=brand.status,
        hs_codes=brand.hs_codes.split(),
        product_lines=_split(brand.product_lines),
        stale_contacts=sum(1 for c in brand.contacts if is_stale(c, at)),
        created_at=brand.created_at,
    )


def org_codes(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    return dict(
        session.execute(select(Organisation.id, Organisation.code).where(Organisation.id.in_(wanted))).all()
    )


def is_stale(contact: BrandContact, now: dt.datetime) -> bool:
    """Not confirmed for more than 180 days."""
    return _now(now) - contact.last_confirmed_at > STALE_AFTER


def _contact_order(c: BrandContact) -> tuple[int, str, int]:
    return (1 if c.territory == "*" else 0, c.territory, c.id)


def _own_brand(session: Session, principal: Principal, brand_id: int) -> Brand:
    brand = _load_brand(session, brand_id)
    if brand.owner_org_id != principal.org_id:
        raise NotFound(f"no brand {brand_id}")
    return brand


def add_contact(
    session: Session, principal: Principal, brand_id: int, data: ContactIn, now: dt.datetime | None = None
) -> BrandContact:
    _require_holder(principal)
    brand = _own_brand(session, principal, brand_id)
    at = _now(now)
    c = BrandContact(
        brand_id=brand.id,
        **data.model_dump(),
        last_confirmed_at=at,
        confirmed_by_id=principal.user_id,
        created_at=at,
        updated_at=at,
    )
    session.add(c)
    session.flush()
    record(session, principal, "brand.contact_add", "brand", brand.id, {"territory": c.territory})
    return c


def _own_contact(session: Session, principal: Principal, contact_id: int) -> BrandContact:
    c = session.get(BrandContact, contact_id)
    if c is None:
        raise NotFound(f"no contact {contact_id}")
    _own_brand(session, principal, c.brand_id)
    return c


def update_contact(
    session: Session, principal: Principal, contact_id: int, data: ContactIn, now: dt.datetime | None = None
) -> BrandContact:
    """Change a contact point; saving it confirms it is current."""
    _require_holder(principal)
    c = _own_contact(session, principal, contact_id)
    at = _now(now)
    for name, value in data.model_dump().items():
        setattr(c, name, value)
    c.last_confirmed_at = at
    c.confirmed_by_id = principal.user_id
    c.updated_at = at
    session.flush()
    return c


def confirm_contact(
    session: Session, principal: Principal, contact_id: int, now: dt.datetime | None = None
) -> BrandContact:
    """The holder confirms a contact point is still current (it is flagged stale after 180 days)."""
    _require_holder(principal)
    c = _own_contact(session, principal, contact_id)
    c.last_confirmed_at = _now(now)
    c.confirmed_by_id = principal.user_id
    session.flush()
    return c


def delete_contact(session: Session, principal: Principal, contact_id: int) -> None:
    _require_holder(principal)
    c = _own_contact(session, principal, contact_id)
    session.delete(c)
    session.flush()


def contacts_for(brand: Brand, territory: str | None, now: dt.datetime | None = None) -> list[ContactOut]:
    """The brand's contact points for ``territory`` (a country code) first, then the worldwide ones."""
    at = _now(now)
    chosen = [c for c in brand.contacts if territory and c.territory == territory.upper()]
    chosen += [c for c in brand.contacts if c.territory == "*"]
    return [contact_out(c, at) for c in chosen] or [
        contact_out(c, at) for c in sorted(brand.contacts, key=_contact_order)
    ]
