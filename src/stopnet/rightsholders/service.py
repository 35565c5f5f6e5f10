"""Rights holders and platforms: brands, guides, contact points, verification requests and figures.

Every function that acts for someone takes the acting :class:`Principal` and checks it here, whatever
the caller (API, page, CLI). Functions flush, never commit. Time is never read from the wall clock
when a caller passes ``now`` (tests and replays control it); ``now=None`` means "now".

Who sees what (docs/rights-holders.md):

* private-sector organisations (``OrgKind.RIGHTS_HOLDER`` / ``OrgKind.PLATFORM``) see only their own
  brands, guides (drafts included), contact points and the verification requests about their brands,
  never a case, a case reference, a consignee or another holder's data;
* public-sector users (customs, coordinating unit, RILO, partners) see approved brands and published
  guides; verification requests are seen by the requesting administration, the brand's holder and the
  operation's coordinating unit.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import statistics
import tempfile
import unicodedata
from collections import defaultdict
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Literal, NamedTuple

from sqlalchemy import ColumnElement, and_, false, func, or_, select, true
from sqlalchemy.orm import Session, selectinload

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound, TooLarge
from stopnet.core.like import LIKE_ESCAPE, contains_pattern
from stopnet.core.pdf import refuse_active_content
from stopnet.db.models import (
    Case,
    CaseStatus,
    Operation,
    Organisation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    Seizure,
    User,
    utcnow,
)
from stopnet.db.models.rightsholders import (
    Brand,
    BrandAlias,
    BrandContact,
    BrandStatus,
    Guide,
    GuideKind,
    GuideVersion,
    OperationVerificationSetting,
    Representative,
    RightsFile,
    Trademark,
    VerificationAnswer,
    VerificationRequest,
    VerificationStatus,
)

from . import deadlines
from .schemas import (
    AliasConflict,
    AttachmentOut,
    BrandCreate,
    BrandOut,
    BrandSummary,
    CaseBrandLine,
    CaseVerificationOut,
    ContactIn,
    ContactOut,
    GuideCreate,
    GuideEdit,
    GuideHit,
    GuideOut,
    GuideSearch,
    GuideVersionOut,
    HolderSeizureOut,
    Outreach,
    OutreachRow,
    RepresentativeOut,
    TrademarkOut,
    VerificationCreate,
    VerificationOut,
)

PRIVATE_KINDS = (OrgKind.RIGHTS_HOLDER, OrgKind.PLATFORM)
CUSTOMS_ROLES = (Role.OFFICER, Role.CONTACT_POINT)
SHARED = policy.SHARED
STALE_AFTER = dt.timedelta(days=180)
MAX_ATTACHMENT_BYTES = 10 * 1024 * 1024
MAX_ATTACHMENTS = 20
FILES_DIR = "rightsholders"
GuideStatus = Literal["draft", "published", "withdrawn"]
OutreachScope = Literal["all", "own_brands", "own_administration"]


def _now(now: dt.datetime | None) -> dt.datetime:
    return (now or utcnow()).astimezone(dt.UTC)


# ---------------------------------------------------------------------------------------------- who


def is_private(principal: Principal) -> bool:
    """A rights holder or platform account: sees only its own organisation's data."""
    return principal.org_kind in PRIVATE_KINDS or principal.role is Role.RIGHTS_HOLDER


def _require_read(principal: Principal) -> None:
    policy.require_read(principal)


def _require_write(principal: Principal) -> None:
    if not principal.has_scope("cases:write"):
        raise Forbidden("this API token lacks the scope cases:write")


def _require_holder(principal: Principal) -> None:
    if principal.org_kind is not OrgKind.RIGHTS_HOLDER or principal.role is not Role.RIGHTS_HOLDER:
        raise Forbidden("only rights holders do this")
    _require_write(principal)


def _require_coordinator(principal: Principal) -> None:
    if not principal.is_coordinator or is_private(principal):
        raise Forbidden("only the coordinating unit does this")


def is_coordinator_of(session: Session, principal: Principal, operation_id: int) -> bool:
    if principal.is_admin:
        return True
    return principal.role is Role.COORDINATOR and (
        policy.participation(session, principal, operation_id) is ParticipantRole.COORDINATOR
    )


# ---------------------------------------------------------------------------------------------- brands


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


# ---------------------------------------------------------------------------------------------- seizure ↔ brand


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


def _holder_case_clause(op_ids: Collection[int]) -> ColumnElement[bool]:
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
        .where(Seizure.brand.in_(texts), _holder_case_clause(op_ids))
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


# ---------------------------------------------------------------------------------------------- contacts


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


# ---------------------------------------------------------------------------------------------- files


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png", (".png",)),
    (b"\xff\xd8\xff", "image/jpeg", (".jpg", ".jpeg")),
    (b"%PDF-", "application/pdf", (".pdf",)),
)


def sniff_type(filename: str, data: bytes) -> str:
    """The content type of a photo (PNG, JPEG, WebP) or PDF, from its bytes; anything else refused."""
    name = filename.lower()
    for magic, ctype, suffixes in _SIGNATURES:
        if data.startswith(magic):
            if not name.endswith(suffixes):
                break
            if ctype == "application/pdf":
                refuse_active_content(filename, data)
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and name.endswith(".webp"):
        return "image/webp"
    raise InvalidInput(
        [FieldError("file", "only photos (.png, .jpg, .webp) and .pdf files are accepted", value=filename)]
    )


def file_path(data_dir: Path, sha256: str) -> Path:
    return Path(data_dir) / FILES_DIR / sha256[:2] / sha256


def store_file(data_dir: Path, filename: str, data: bytes, max_bytes: int) -> StoredFile:
    """Check and store a file under ``data_dir/rightsholders/`` by its SHA-256 (stored once)."""
    limit = min(max_bytes, MAX_ATTACHMENT_BYTES)
    if len(data) > limit:
        raise TooLarge(f"file larger than the limit of {limit} bytes")
    if not data:
        raise InvalidInput([FieldError("file", "the file is empty", value=filename)])
    ctype = sniff_type(filename, data)
    sha = hashlib.sha256(data).hexdigest()
    path = file_path(data_dir, sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return StoredFile(sha, len(data), ctype)


def _safe_name(filename: str) -> str:
    base = Path(filename.replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>:|?*;')
    return (cleaned.strip() or "file")[:255]


def attachment_out(a: RightsFile) -> AttachmentOut:
    return AttachmentOut(
        id=a.id,
        filename=a.filename,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        url=f"/api/v1/rights/attachments/{a.id}",
    )


# ---------------------------------------------------------------------------------------------- guides


def _guide_status(g: Guide) -> GuideStatus:
    if g.published_version is not None:
        return "published"
    if any(v.published_at is not None for v in g.versions):
        return "withdrawn"
    return "draft"


def _load_guide(session: Session, guide_id: int) -> Guide:
    g = session.scalar(
        select(Guide)
        .where(Guide.id == guide_id)
        .options(selectinload(Guide.versions).selectinload(GuideVersion.attachments))
    )
    if g is None:
        raise NotFound(f"no guide {guide_id}")
    return g


def _version(g: Guide, n: int) -> GuideVersion:
    for v in g.versions:
        if v.version == n:
            return v
    raise NotFound(f"no version {n} of guide {g.id}")


def _valid_on(v: GuideVersion, day: dt.date) -> bool:
    return (v.valid_from is None or v.valid_from <= day) and (v.valid_until is None or day <= v.valid_until)


def create_guide(
    session: Session, principal: Principal, data: GuideCreate, now: dt.datetime | None = None
) -> Guide:
    """A draft guide (version 1), seen by its organisation only until it is published."""
    if principal.org_kind not in PRIVATE_KINDS:
        raise Forbidden("guides are written by rights holders and platforms")
    _require_write(principal)
    if data.kind is GuideKind.PRODUCT_ID:
        if principal.org_kind is not OrgKind.RIGHTS_HOLDER:
            raise Forbidden("product-identification guides are written by rights holders")
        if data.brand_id is None:
            raise InvalidInput([FieldError("brand_id", "a product-identification guide needs a brand")])
    if data.brand_id is not None:
        _own_brand(session, principal, data.brand_id)
    at = _now(now)
    g = Guide(
        org_id=principal.org_id,
        brand_id=data.brand_id,
        kind=data.kind,
        latest_version=1,
        created_by_id=principal.user_id,
        created_at=at,
        updated_at=at,
    )
    g.versions.append(_new_version(principal, 1, data, at))
    session.add(g)
    session.flush()
    record(session, principal, "guide.create", "guide", g.id, {"kind": g.kind.value, "brand_id": g.brand_id})
    return g


def _new_version(
    principal: Principal, n: int, data: GuideCreate | GuideEdit, at: dt.datetime
) -> GuideVersion:
    return GuideVersion(
        version=n,
        title=data.title,
        summary=data.summary,
        genuine_features=data.genuine_features,
        packaging=data.packaging,
        fake_indicators=data.fake_indicators,
        products="\n".join(data.products),
        hs_codes=" ".join(data.hs_codes),
        valid_from=data.valid_from,
        valid_until=data.valid_until,
        change_note=data.change_note,
        created_by_id=principal.user_id,
        created_at=at,
    )


def _own_guide(session: Session, principal: Principal, guide_id: int) -> Guide:
    g = _load_guide(session, guide_id)
    if g.org_id != principal.org_id or principal.org_kind not in PRIVATE_KINDS:
        if _public_may_read(principal, g):
            raise Forbidden("only the organisation that wrote the guide changes it")
        raise NotFound(f"no guide {guide_id}")
    _require_write(principal)
    return g


def edit_guide(
    session: Session, principal: Principal, guide_id: int, data: GuideEdit, now: dt.datetime | None = None
) -> Guide:
    """Every edit is a new (draft) version; the attachments of the previous one are carried over."""
    g = _own_guide(session, principal, guide_id)
    if data.expected_version != g.latest_version:
        raise Conflict(
            f"guide {g.id} is at version {g.latest_version}, not {data.expected_version}: "
            "reload it and apply your change again"
        )
    at = _now(now)
    prev = _version(g, g.latest_version)
    v = _new_version(principal, g.latest_version + 1, data, at)
    for a in prev.attachments:
        v.attachments.append(
            RightsFile(
                org_id=a.org_id,
                filename=a.filename,
                content_type=a.content_type,
                size_bytes=a.size_bytes,
                sha256=a.sha256,
                uploaded_by_id=a.uploaded_by_id,
                created_at=a.created_at,
            )
        )
    g.versions.append(v)
    g.latest_version = v.version
    g.updated_at = at
    session.flush()
    record(session, principal, "guide.edit", "guide", g.id, {"version": v.version})
    return g


def publish_guide(
    session: Session,
    principal: Principal,
    guide_id: int,
    version: int | None = None,
    now: dt.datetime | None = None,
) -> Guide:
    """Publish a version (default: the latest): officers then see that version."""
    g = _own_guide(session, principal, guide_id)
    v = _version(g, version or g.latest_version)
    if g.brand_id is not None:
        brand = session.get_one(Brand, g.brand_id)
        if brand.status is not BrandStatus.APPROVED:
            raise Conflict(f"the brand {brand.name!r} is {brand.status.value}; it must be approved first")
    if g.published_version == v.version:
        raise Conflict(f"version {v.version} is already published")
    at = _now(now)
    if v.published_at is None:
        v.published_at = at
        v.published_by_id = principal.user_id
    g.published_version = v.version
    g.updated_at = at
    session.flush()
    record(session, principal, "guide.publish", "guide", g.id, {"version": v.version, "title": v.title})
    return g


def withdraw_guide(
    session: Session, principal: Principal, guide_id: int, now: dt.datetime | None = None
) -> Guide:
    g = _own_guide(session, principal, guide_id)
    if g.published_version is None:
        raise Conflict(f"guide {g.id} is not published")
    g.published_version = None
    g.updated_at = _now(now)
    session.flush()
    record(session, principal, "guide.withdraw", "guide", g.id)
    return g


def add_guide_attachment(
    session: Session,
    principal: Principal,
    guide_id: int,
    filename: str,
    data: bytes,
    data_dir: Path,
    max_bytes: int,
    now: dt.datetime | None = None,
) -> RightsFile:
    """Attach a photo or PDF to the guide's latest version, which must be an unpublished draft."""
    g = _own_guide(session, principal, guide_id)
    v = _version(g, g.latest_version)
    if v.published_at is not None:
        raise Conflict("the latest version is published: edit the guide (a new version) to add files")
    if len(v.attachments) >= MAX_ATTACHMENTS:
        raise Conflict(f"at most {MAX_ATTACHMENTS} files per version")
    stored = store_file(data_dir, filename, data, max_bytes)
    a = RightsFile(
        org_id=principal.org_id,
        filename=_safe_name(filename),
        content_type=stored.content_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        uploaded_by_id=principal.user_id,
        created_at=_now(now),
    )
    v.attachments.append(a)
    session.flush()
    return a


def _public_may_read(principal: Principal, g: Guide) -> bool:
    return not is_private(principal) and g.published_version is not None


def _readable_versions(principal: Principal, g: Guide) -> list[GuideVersion]:
    if g.org_id == principal.org_id and is_private(principal):
        return list(g.versions)
    if is_private(principal):
        return []
    return [v for v in g.versions if v.published_at is not None] if g.published_version is not None else []


def get_guide(
    session: Session, principal: Principal, guide_id: int, version: int | None = None
) -> tuple[Guide, GuideVersion]:
    """The guide and the version to show: the author sees every version (the latest by default);
    others see published guides only (the published version by default, earlier published ones on
    request), never drafts."""
    policy.require_record_read(principal)
    g = _load_guide(session, guide_id)
    readable = _readable_versions(principal, g)
    if not readable:
        raise NotFound(f"no guide {guide_id}")
    own = g.org_id == principal.org_id
    wanted = version or (g.latest_version if own else g.published_version)
    for v in readable:
        if v.version == wanted:
            return g, v
    raise NotFound(f"no version {wanted} of guide {guide_id}")


def guide_versions(session: Session, principal: Principal, guide_id: int) -> list[GuideVersionOut]:
    g, _ = get_guide(session, principal, guide_id)
    return [
        GuideVersionOut(
            version=v.version,
            title=v.title,
            change_note=v.change_note,
            created_at=v.created_at,
            published_at=v.published_at,
            is_published=v.version == g.published_version,
        )
        for v in _readable_versions(principal, g)
    ]


def guide_out(session: Session, g: Guide, v: GuideVersion, now: dt.datetime | None = None) -> GuideOut:
    org = _org(session, g.org_id)
    brand = session.get(Brand, g.brand_id) if g.brand_id else None
    return GuideOut(
        id=g.id,
        kind=g.kind,
        org=org.code,
        org_name=org.name,
        brand_id=g.brand_id,
        brand=brand.name if brand else None,
        status=_guide_status(g),
        version=v.version,
        latest_version=g.latest_version,
        published_version=g.published_version,
        title=v.title,
        summary=v.summary,
        genuine_features=v.genuine_features,
        packaging=v.packaging,
        fake_indicators=v.fake_indicators,
        products=_split(v.products),
        hs_codes=v.hs_codes.split(),
        valid_from=v.valid_from,
        valid_until=v.valid_until,
        valid_now=_valid_on(v, _now(now).date()),
        change_note=v.change_note,
        created_at=v.created_at,
        published_at=v.published_at,
        attachments=[attachment_out(a) for a in v.attachments],
    )


def search_guides(
    session: Session,
    principal: Principal,
    search: GuideSearch,
    page: int = 1,
    page_size: int = 50,
    now: dt.datetime | None = None,
    brand_ids: Collection[int] | None = None,
) -> tuple[list[GuideHit], int]:
    """Guides by words, brand (name or alias), product or HS code prefix; portable LIKE matching.

    Officers and other public-sector users search the published version of published guides valid
    today (``include_expired`` adds expired ones); a rights holder or platform searches its own guides
    (latest version, drafts included)."""
    _require_read(principal)
    today = _now(now).date()
    own = is_private(principal)
    version_no = Guide.latest_version if own else Guide.published_version
    stmt = (
        select(Guide, GuideVersion, Brand.name, Organisation.code)
        .join(GuideVersion, and_(GuideVersion.guide_id == Guide.id, GuideVersion.version == version_no))
        .join(Organisation, Organisation.id == Guide.org_id)
        .outerjoin(Brand, Brand.id == Guide.brand_id)
    )
    if own:
        stmt = stmt.where(Guide.org_id == principal.org_id)
    else:
        stmt = stmt.where(Guide.published_version.is_not(None))
        if not search.include_expired:
            stmt = stmt.where(
                or_(GuideVersion.valid_from.is_(None), GuideVersion.valid_from <= today),
                or_(GuideVersion.valid_until.is_(None), GuideVersion.valid_until >= today),
            )
    if search.kind is not None:
        stmt = stmt.where(Guide.kind == search.kind)
    if brand_ids is not None:
        stmt = stmt.where(Guide.brand_id.in_(brand_ids))
    if search.brand:
        key = normalise_brand(search.brand)
        stmt = stmt.where(
            Guide.brand_id.in_(
                select(BrandAlias.brand_id).where(
                    BrandAlias.normalised.like(contains_pattern(key), escape=LIKE_ESCAPE)
                )
            )
        )
    if search.product:
        like = contains_pattern(search.product)
        stmt = stmt.where(
            or_(
                func.lower(GuideVersion.products).like(like, escape=LIKE_ESCAPE),
                func.lower(GuideVersion.title).like(like, escape=LIKE_ESCAPE),
            )
        )
    if search.hs:
        stmt = stmt.where(
            or_(
                (" " + GuideVersion.hs_codes).like(f"% {search.hs}%"),
                (" " + func.coalesce(Brand.hs_codes, "")).like(f"% {search.hs}%"),
            )
        )
    if search.q:
        for word in search.q.split()[:8]:
            like = contains_pattern(word)
            stmt = stmt.where(
                or_(
                    *(
                        func.lower(col).like(like, escape=LIKE_ESCAPE)
                        for col in (
                            GuideVersion.title,
                            GuideVersion.summary,
                            GuideVersion.genuine_features,
                            GuideVersion.packaging,
                            GuideVersion.fake_indicators,
                            GuideVersion.products,
                            GuideVersion.hs_codes,
                            func.coalesce(Brand.name, ""),
                        )
                    )
                )
            )
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    rows = session.execute(
        stmt.order_by(GuideVersion.title, Guide.id).offset((page - 1) * page_size).limit(page_size)
    ).all()
    hits = []
    for g, v, brand_name, org_code in rows:
        status = (
            "published"
            if g.published_version is not None
            else ("draft" if not own else _draft_or_withdrawn(session, g))
        )
        hits.append(
            GuideHit(
                id=g.id,
                kind=g.kind,
                org=org_code,
                brand_id=g.brand_id,
                brand=brand_name,
                title=v.title,
                version=v.version,
                status=status,
                products=_split(v.products),
                hs_codes=v.hs_codes.split(),
                valid_until=v.valid_until,
                valid_now=_valid_on(v, today),
            )
        )
    return hits, total


def _draft_or_withdrawn(session: Session, g: Guide) -> GuideStatus:
    ever = session.scalar(
        select(func.count()).where(GuideVersion.guide_id == g.id, GuideVersion.published_at.is_not(None))
    )
    return "withdrawn" if ever else "draft"


def get_attachment(
    session: Session, principal: Principal, attachment_id: int, data_dir: Path
) -> tuple[RightsFile, Path]:
    """An attachment and its file, if the principal may read the guide version or request it is on."""
    _require_read(principal)
    a = session.get(RightsFile, attachment_id)
    if a is None:
        raise NotFound(f"no attachment {attachment_id}")
    if a.guide_version_id is not None:
        v = session.get_one(GuideVersion, a.guide_version_id)
        g = _load_guide(session, v.guide_id)
        if v.id not in {r.id for r in _readable_versions(principal, g)}:
            raise NotFound(f"no attachment {attachment_id}")
    else:
        assert a.request_id is not None
        try:
            get_request(session, principal, a.request_id)
        except NotFound:
            raise NotFound(f"no attachment {attachment_id}") from None
    path = file_path(data_dir, a.sha256)
    if not path.is_file():
        raise NotFound(f"the file of attachment {attachment_id} is missing")
    return a, path


# ---------------------------------------------------------------------------------------------- verification


def response_working_days(session: Session, operation_id: int) -> tuple[int, bool]:
    """Working days to answer a request in this operation, and whether it is the default."""
    days = session.scalar(
        select(OperationVerificationSetting.response_working_days).where(
            OperationVerificationSetting.operation_id == operation_id
        )
    )
    return (deadlines.DEFAULT_RESPONSE_WORKING_DAYS, True) if days is None else (days, False)


def set_response_working_days(
    session: Session, principal: Principal, op: Operation, days: int, now: dt.datetime | None = None
) -> OperationVerificationSetting:
    """The operation's coordinating unit sets how many working days rights holders have to answer."""
    if not is_coordinator_of(session, principal, op.id) or is_private(principal):
        raise Forbidden("only the operation's coordinating unit sets the answer deadline")
    if not 1 <= days <= 60:
        raise InvalidInput([FieldError("response_working_days", "between 1 and 60", value=str(days))])
    setting = session.scalar(
        select(OperationVerificationSetting).where(OperationVerificationSetting.operation_id == op.id)
    )
    at = _now(now)
    if setting is None:
        setting = OperationVerificationSetting(operation_id=op.id, created_at=at)
        session.add(setting)
    setting.response_working_days = days
    setting.updated_by_id = principal.user_id
    setting.updated_at = at
    session.flush()
    record(session, principal, "verification.settings", "operation", op.code, {"response_working_days": days})
    return setting


def _personal_data_errors(case: Case | None, data: VerificationCreate) -> list[FieldError]:
    """The consignee's name never leaves the reporting administration: refuse it in free text."""
    if case is None or len(case.consignee_name.strip()) < 3:
        return []
    needle = " ".join(case.consignee_name.casefold().split())
    errors = []
    for name in ("product", "details"):
        text = " ".join(str(getattr(data, name)).casefold().split())
        if needle in text:
            errors.append(
                FieldError(name, "remove the consignee's name: personal data is never sent to rights holders")
            )
    return errors


def create_request(
    session: Session,
    principal: Principal,
    data: VerificationCreate,
    now: dt.datetime | None = None,
    holidays: Collection[dt.date] = (),
) -> VerificationRequest:
    """An officer asks the brand's holder to verify suspect goods; due after the operation's working
    days (default 10, weekends skipped). Nothing is copied from the case but what the officer sends,
    and the consignee's name is refused."""
    if principal.role not in CUSTOMS_ROLES or principal.org_kind is not OrgKind.CUSTOMS:
        raise Forbidden("only officers and national contact points of a customs administration ask")
    _require_write(principal)
    case: Case | None = None
    if data.case_id is not None:
        case = session.get(Case, data.case_id)
        if case is None or not policy.can_read_case(session, principal, case):
            raise NotFound(f"no case {data.case_id}")
        if case.reporting_org_id != principal.org_id:
            raise Forbidden("link a case your administration reported")
        op = session.get_one(Operation, case.operation_id)
        if data.operation and data.operation.upper() != op.code:
            raise InvalidInput([FieldError("operation", f"case {case.id} belongs to {op.code}")])
        if data.seizure_id is not None and not session.scalar(
            select(true()).where(Seizure.id == data.seizure_id, Seizure.case_id == case.id)
        ):
            raise InvalidInput([FieldError("seizure_id", f"not a seizure of case {case.id}")])
    else:
        found = session.scalar(select(Operation).where(Operation.code == (data.operation or "").upper()))
        if found is None or policy.participation(session, principal, found.id) is None:
            raise NotFound(f"no operation with code {data.operation!r}")
        op = found
    if policy.participation(session, principal, op.id) is not ParticipantRole.MEMBER:
        raise Forbidden(f"{principal.org_code} does not take part in {op.code}")
    brand = session.get(Brand, data.brand_id)
    if brand is None or brand.status is not BrandStatus.APPROVED:
        raise NotFound(f"no approved brand {data.brand_id}")
    errors = _personal_data_errors(case, data)
    if errors:
        raise InvalidInput(errors, "the request would send personal data")
    at = _now(now)
    days, _ = response_working_days(session, op.id)
    req = VerificationRequest(
        operation_id=op.id,
        brand_id=brand.id,
        requesting_org_id=principal.org_id,
        requested_by_id=principal.user_id,
        case_id=case.id if case else None,
        seizure_id=data.seizure_id,
        status=VerificationStatus.OPEN,
        product=data.product,
        details=data.details,
        hs_code=data.hs_code,
        pieces=data.pieces,
        origin_country=data.origin_country,
        departure_country=data.departure_country,
        detected_on=data.detected_on,
        sent_at=at,
        working_days=days,
        due_on=deadlines.add_working_days(at.date(), days, holidays),
        created_at=at,
        updated_at=at,
    )
    session.add(req)
    session.flush()
    record(
        session,
        principal,
        "verification.create",
        "verification_request",
        req.id,
        {"brand_id": brand.id, "op": op.code, "case_id": req.case_id, "due_on": req.due_on},
    )
    return req


def request_read_clause(session: Session, principal: Principal) -> ColumnElement[bool]:
    """Requests the principal may read: its administration's, its brands', or (coordinating unit)
    those of the operations it coordinates."""
    if principal.is_admin:
        return true()
    if is_private(principal):
        if principal.org_kind is not OrgKind.RIGHTS_HOLDER:
            return false()
        return VerificationRequest.brand_id.in_(
            select(Brand.id).where(Brand.owner_org_id == principal.org_id)
        )
    if principal.role is Role.COORDINATOR:
        coordinated = select(Participant.operation_id).where(
            Participant.org_id == principal.org_id, Participant.role == ParticipantRole.COORDINATOR
        )
        return VerificationRequest.operation_id.in_(coordinated)
    if principal.role in CUSTOMS_ROLES:
        return VerificationRequest.requesting_org_id == principal.org_id
    return false()


def _load_request(session: Session, request_id: int) -> VerificationRequest:
    req = session.scalar(
        select(VerificationRequest)
        .where(VerificationRequest.id == request_id)
        .options(selectinload(VerificationRequest.attachments))
    )
    if req is None:
        raise NotFound(f"no verification request {request_id}")
    return req


def get_request(session: Session, principal: Principal, request_id: int) -> VerificationRequest:
    policy.require_record_read(principal)
    req = _load_request(session, request_id)
    if not session.scalar(
        select(true()).where(VerificationRequest.id == req.id, request_read_clause(session, principal))
    ):
        raise NotFound(f"no verification request {request_id}")
    return req


def is_request_overdue(req: VerificationRequest, now: dt.datetime | None = None) -> bool:
    return req.status is VerificationStatus.OPEN and deadlines.is_overdue(req.due_on, _now(now))


def list_requests(
    session: Session,
    principal: Principal,
    *,
    status: VerificationStatus | None = None,
    overdue: bool | None = None,
    brand_id: int | None = None,
    operation: str | None = None,
    page: int = 1,
    page_size: int = 50,
    now: dt.datetime | None = None,
) -> tuple[list[VerificationRequest], int]:
    _require_read(principal)
    at = _now(now)
    stmt = select(VerificationRequest).where(request_read_clause(session, principal))
    if status is not None:
        stmt = stmt.where(VerificationRequest.status == status)
    if brand_id is not None:
        stmt = stmt.where(VerificationRequest.brand_id == brand_id)
    if operation:
        stmt = stmt.where(
            VerificationRequest.operation_id.in_(
                select(Operation.id).where(Operation.code == operation.upper())
            )
        )
    if overdue is not None:
        # overdue: open and past the end of its due day (UTC): due_on < today
        late = and_(
            VerificationRequest.status == VerificationStatus.OPEN, VerificationRequest.due_on < at.date()
        )
        stmt = stmt.where(late if overdue else ~late)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = session.scalars(
        stmt.options(selectinload(VerificationRequest.attachments))
        .order_by(VerificationRequest.sent_at.desc(), VerificationRequest.id.desc())
        .offset((page - 1) * page_size)
        .limit(page_size)
    ).all()
    return list(items), total


def answer_request(
    session: Session,
    principal: Principal,
    request_id: int,
    answer: VerificationAnswer,
    note: str = "",
    now: dt.datetime | None = None,
) -> VerificationRequest:
    """The brand's holder answers genuine, counterfeit or inconclusive; the request is closed and
    the answer is attached to the linked case (``case_verifications``, ``verification_labels``)."""
    req = get_request(session, principal, request_id)
    brand = session.get_one(Brand, req.brand_id)
    if principal.role is not Role.RIGHTS_HOLDER or brand.owner_org_id != principal.org_id:
        raise Forbidden("only the brand's rights holder answers")
    _require_write(principal)
    if req.status is not VerificationStatus.OPEN:
        raise Conflict(f"request {req.id} is {req.status.value}")
    at = _now(now)
    late = deadlines.is_overdue(req.due_on, at)
    req.status = VerificationStatus.ANSWERED
    req.answer = VerificationAnswer(answer)
    req.answer_note = note
    req.answered_at = at
    req.answered_by_id = principal.user_id
    req.updated_at = at
    session.flush()
    record(
        session,
        principal,
        "verification.answer",
        "verification_request",
        req.id,
        {"answer": req.answer.value, "case_id": req.case_id, "late": late},
    )
    return req


def withdraw_request(
    session: Session, principal: Principal, request_id: int, now: dt.datetime | None = None
) -> VerificationRequest:
    req = get_request(session, principal, request_id)
    if req.requesting_org_id != principal.org_id or principal.role not in CUSTOMS_ROLES:
        raise Forbidden("only the requesting administration withdraws a request")
    _require_write(principal)
    if req.status is not VerificationStatus.OPEN:
        raise Conflict(f"request {req.id} is {req.status.value}")
    req.status = VerificationStatus.WITHDRAWN
    req.updated_at = _now(now)
    session.flush()
    record(session, principal, "verification.withdraw", "verification_request", req.id)
    return req


def add_request_attachment(
    session: Session,
    principal: Principal,
    request_id: int,
    filename: str,
    data: bytes,
    data_dir: Path,
    max_bytes: int,
    now: dt.datetime | None = None,
) -> RightsFile:
    """The requesting administration adds a photo or PDF while the request is open."""
    req = get_request(session, principal, request_id)
    if req.requesting_org_id != principal.org_id or principal.role not in CUSTOMS_ROLES:
        raise Forbidden("only the requesting administration adds files")
    _require_write(principal)
    if req.status is not VerificationStatus.OPEN:
        raise Conflict(f"request {req.id} is {req.status.value}")
    if len(req.attachments) >= MAX_ATTACHMENTS:
        raise Conflict(f"at most {MAX_ATTACHMENTS} files per request")
    stored = store_file(data_dir, filename, data, max_bytes)
    a = RightsFile(
        org_id=principal.org_id,
        filename=_safe_name(filename),
        content_type=stored.content_type,
        size_bytes=stored.size,
        sha256=stored.sha256,
        uploaded_by_id=principal.user_id,
        created_at=_now(now),
    )
    req.attachments.append(a)
    session.flush()
    return a


def request_out(
    session: Session, principal: Principal, req: VerificationRequest, now: dt.datetime | None = None
) -> VerificationOut:
    brand = session.get_one(Brand, req.brand_id)
    codes = org_codes(session, {req.requesting_org_id, brand.owner_org_id})
    op = session.get_one(Operation, req.operation_id)
    requester = req.requesting_org_id == principal.org_id and not is_private(principal)
    coordinator = not is_private(principal) and principal.is_coordinator
    reference = None
    requested_by = None
    if requester:
        if req.case_id is not None:
            reference = session.scalar(select(Case.reference).where(Case.id == req.case_id))
        if req.requested_by_id is not None:
            requested_by = session.scalar(select(User.email).where(User.id == req.requested_by_id))
    return VerificationOut(
        id=req.id,
        operation=op.code,
        brand_id=brand.id,
        brand=brand.name,
        brand_owner=codes[brand.owner_org_id],
        requesting_org=codes[req.requesting_org_id],
        status=req.status,
        product=req.product,
        details=req.details,
        hs_code=req.hs_code,
        pieces=req.pieces,
        origin_country=req.origin_country,
        departure_country=req.departure_country,
        detected_on=req.detected_on,
        sent_at=req.sent_at,
        working_days=req.working_days,
        due_on=req.due_on,
        overdue=is_request_overdue(req, now),
        answer=req.answer,
        answer_note=req.answer_note,
        answered_at=req.answered_at,
        attachments=[attachment_out(a) for a in req.attachments],
        case_id=req.case_id if (requester or coordinator) else None,
        case_reference=reference,
        seizure_id=req.seizure_id if (requester or coordinator) else None,
        requested_by=requested_by,
    )


def case_verifications(
    session: Session, principal: Principal, case_id: int, now: dt.datetime | None = None
) -> list[CaseVerificationOut]:
    """The verification requests about a case and their answers, for whoever may read the case."""
    _require_read(principal)
    case = session.get(Case, case_id)
    if case is None or is_private(principal) or not policy.can_read_case(session, principal, case):
        raise NotFound(f"no case {case_id}")
    rows = session.execute(
        select(VerificationRequest, Brand.name)
        .join(Brand, Brand.id == VerificationRequest.brand_id)
        .where(VerificationRequest.case_id == case_id)
        .order_by(VerificationRequest.sent_at, VerificationRequest.id)
    ).all()
    return [
        CaseVerificationOut(
            request_id=r.id,
            brand_id=r.brand_id,
            brand=name,
            seizure_id=r.seizure_id,
            status=r.status,
            due_on=r.due_on,
            overdue=is_request_overdue(r, now),
            answer=r.answer,
            answer_note=r.answer_note,
            answered_at=r.answered_at,
        )
        for r, name in rows
    ]


class VerificationLabel(NamedTuple):
    case_id: int
    label: str  # genuine | counterfeit | inconclusive
    answered_at: dt.datetime


def verification_labels(session: Session, since: dt.datetime | None = None) -> list[VerificationLabel]:
    """Answers of verification requests linked to a case, answered at or after ``since``, oldest first:
    the labels the risk engine learns from. A system read (no principal): call it from server-side
    jobs only, never from a route."""
    stmt = select(
        VerificationRequest.case_id, VerificationRequest.answer, VerificationRequest.answered_at
    ).where(
        VerificationRequest.status == VerificationStatus.ANSWERED,
        VerificationRequest.case_id.is_not(None),
        VerificationRequest.answer.is_not(None),
    )
    if since is not None:
        stmt = stmt.where(VerificationRequest.answered_at >= since)
    rows = session.execute(stmt.order_by(VerificationRequest.answered_at, VerificationRequest.id)).all()
    return [
        VerificationLabel(c, a.value, t)
        for c, a, t in rows
        if c is not None and a is not None and t is not None
    ]


# ---------------------------------------------------------------------------------------------- case page


def case_brand_lines(
    session: Session, principal: Principal, case: Case, now: dt.datetime | None = None
) -> list[CaseBrandLine]:
    """For each seizure of a case: the approved brands it names, their published guides and contact
    points for the principal's country. The caller has checked that the principal may read the case."""
    seizures = list(case.seizures)
    matches = brands_for_seizures(session, seizures)
    all_ids = {b.id for bs in matches.values() for b in bs}
    guides: dict[int, list[GuideHit]] = defaultdict(list)
    if all_ids:
        hits, _ = search_guides(session, principal, GuideSearch(), 1, 500, now, brand_ids=all_ids)
        for h in hits:
            if h.brand_id is not None:
                guides[h.brand_id].append(h)
    codes = org_codes(session, {b.owner_org_id for bs in matches.values() for b in bs})
    out = []
    for s in seizures:
        brands = matches.get(s.id, [])
        out.append(
            CaseBrandLine(
                seizure_id=s.id,
                line_no=s.line_no,
                reported_brand=s.brand,
                commodity_code=s.commodity_code,
                hs_code=s.hs_code,
                pieces=s.pieces,
                brands=[brand_summary(session, b, now, codes) for b in brands],
                guides=[h for b in brands for h in guides.get(b.id, [])],
                contacts=[c for b in brands for c in contacts_for(b, principal.country_code, now)],
            )
        )
    return out


# ---------------------------------------------------------------------------------------------- figures


def outreach(
    session: Session, principal: Principal, operation: str | None = None, now: dt.datetime | None = None
) -> Outreach:
    """Seizures, requests sent/answered, median response time and overdue requests per brand and
    operation: everything for the coordinating unit, its own brands for a rights holder, its own
    administration's seizures and requests for customs."""
    _require_read(principal)
    at = _now(now)
    ops_q = select(Operation)
    if principal.is_admin:
        scope: OutreachScope = "all"
    elif principal.role is Role.COORDINATOR and not is_private(principal):
        scope = "all"
        ops_q = ops_q.where(
            Operation.id.in_(
                select(Participant.operation_id).where(
                    Participant.org_id == principal.org_id, Participant.role == ParticipantRole.COORDINATOR
                )
            )
        )
    elif principal.org_kind is OrgKind.RIGHTS_HOLDER:
        scope = "own_brands"
        ops_q = ops_q.where(
            Operation.id.in_(select(Participant.operation_id).where(Participant.org_id == principal.org_id))
        )
    elif principal.role in CUSTOMS_ROLES and principal.org_kind is OrgKind.CUSTOMS:
        scope = "own_administration"
        ops_q = ops_q.where(
            Operation.id.in_(select(Participant.operation_id).where(Participant.org_id == principal.org_id))
        )
    else:
        raise Forbidden("outreach figures are for the coordinating unit, rights holders and customs")
    if operation:
        ops_q = ops_q.where(Operation.code == operation.upper())
    ops = {o.id: o for o in session.scalars(ops_q)}
    if operation and not ops:
        raise NotFound(f"no operation with code {operation!r}")
    brand_q = select(Brand).where(Brand.status == BrandStatus.APPROVED)
    if scope == "own_brands":
        brand_q = brand_q.where(Brand.owner_org_id == principal.org_id)
    brands = {b.id: b for b in session.scalars(brand_q)}
    codes = org_codes(session, {b.owner_org_id for b in brands.values()})

    acc: dict[tuple[int, int], _Tally] = defaultdict(_Tally)
    texts = reported_brand_texts(session, list(brands))
    for op_id in ops if texts else ():
        if scope == "all":
            clause = policy.case_read_clause(session, principal, op_id)
        elif scope == "own_brands":
            clause = _holder_case_clause([op_id])
        else:
            clause = Case.reporting_org_id == principal.org_id
        agg = session.execute(
            select(Seizure.brand, func.count(), func.sum(Seizure.pieces), func.sum(Seizure.weight_kg))
            .join(Case, Case.id == Seizure.case_id)
            .where(
                Case.operation_id == op_id, Case.status != CaseStatus.DRAFT, Seizure.brand.in_(texts), clause
            )
            .group_by(Seizure.brand)
        ).all()
        for text, n, pieces, kg in agg:
            for bid in texts[text]:
                t = acc[(op_id, bid)]
                t.seizures += int(n)
                t.pieces += int(pieces or 0)
                t.kg += Decimal(kg or 0)
    if ops and brands:
        req_q = select(VerificationRequest).where(
            VerificationRequest.operation_id.in_(ops), VerificationRequest.brand_id.in_(brands)
        )
        if scope == "own_administration":
            req_q = req_q.where(VerificationRequest.requesting_org_id == principal.org_id)
        for req in session.scalars(req_q):
            acc[(req.operation_id, req.brand_id)].add_request(req, at)
    out = [
        t.row(ops[op_id].code, brands[bid], codes[brands[bid].owner_org_id])
        for (op_id, bid), t in sorted(acc.items(), key=lambda kv: (ops[kv[0][0]].code, brands[kv[0][1]].name))
    ]
    total = _Tally()
    for t in acc.values():
        total.merge(t)
    return Outreach(
        scope=scope,
        as_of=at,
        rows=out,
        totals=total.row(operation.upper() if operation else "*", None, "", "all brands"),
    )


@dataclass
class _Tally:
    seizures: int = 0
    pieces: int = 0
    kg: Decimal = Decimal(0)
    sent: int = 0
    answered: int = 0
    open: int = 0
    overdue: int = 0
    late: int = 0
    hours: list[float] | None = None

    def add_request(self, req: VerificationRequest, now: dt.datetime) -> None:
        self.sent += 1
        if req.status is VerificationStatus.ANSWERED and req.answered_at is not None:
            self.answered += 1
            self.hours = [*(self.hours or []), (req.answered_at - req.sent_at).total_seconds() / 3600]
            if req.answered_at > deadlines.end_of_day(req.due_on):
                self.late += 1
        elif req.status is VerificationStatus.OPEN:
            self.open += 1
            if deadlines.is_overdue(req.due_on, now):
                self.overdue += 1

    def merge(self, o: _Tally) -> None:
        self.seizures += o.seizures
        self.pieces += o.pieces
        self.kg += o.kg
        self.sent += o.sent
        self.answered += o.answered
        self.open += o.open
        self.overdue += o.overdue
        self.late += o.late
        self.hours = [*(self.hours or []), *(o.hours or [])]

    def row(self, op_code: str, brand: Brand | None, owner: str, name: str = "") -> OutreachRow:
        return OutreachRow(
            operation=op_code,
            brand_id=brand.id if brand else 0,
            brand=brand.name if brand else name,
            owner_org=owner,
            seizures=self.seizures,
            pieces=self.pieces,
            weight_kg=self.kg,
            requests_sent=self.sent,
            requests_answered=self.answered,
            requests_open=self.open,
            overdue=self.overdue,
            answered_late=self.late,
            median_response_hours=round(statistics.median(self.hours), 1) if self.hours else None,
        )
