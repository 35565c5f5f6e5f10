"""Product-identification guides: drafted, versioned, published and withdrawn by their holders."""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection
from pathlib import Path

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, selectinload

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from stopnet.core.like import LIKE_ESCAPE, contains_pattern
from stopnet.db.models import (
    Organisation,
    OrgKind,
)
from stopnet.db.models.rightsholders import (
    Brand,
    BrandAlias,
    BrandStatus,
    Guide,
    GuideKind,
    GuideVersion,
    RightsFile,
)

from ..schemas import (
    GuideCreate,
    GuideEdit,
    GuideHit,
    GuideOut,
    GuideSearch,
    GuideVersionOut,
)
from .access import _require_read, _require_write, is_private
from .brands import _org, _own_brand, _split, normalise_brand
from .constants import MAX_ATTACHMENTS, PRIVATE_KINDS, GuideStatus, _now
from .files import _safe_name, attachment_out, file_path, store_file
from .verification import get_request


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
