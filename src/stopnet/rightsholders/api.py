"""REST API of rights holders, platforms and verification requests (``/api/v1/rights``)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, Query, Request, UploadFile
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile as StarletteUpload

from stopnet.core.errors import InvalidInput, TooLarge
from stopnet.core.pagination import PagingDep
from stopnet.core.validation import field_errors
from stopnet.db.models.rightsholders import BrandStatus, GuideKind, VerificationStatus
from stopnet.operations.service import get_operation
from stopnet.web.deps import DB, READ, WRITE, AppSettings, CurrentPrincipal, Now, current_time

from . import service
from .schemas import (
    AttachmentOut,
    BrandCreate,
    BrandDecision,
    BrandOut,
    BrandSummary,
    CaseVerificationOut,
    ContactIn,
    ContactOut,
    GuideCreate,
    GuideEdit,
    GuideOut,
    GuidePage,
    GuidePublish,
    GuideSearch,
    GuideVersionOut,
    HolderSeizurePage,
    OperationSettingIn,
    OperationSettingOut,
    Outreach,
    VerificationAnswerIn,
    VerificationCreate,
    VerificationOut,
    VerificationPage,
)

router = APIRouter(prefix="/api/v1/rights", tags=["rights holders"])
T = TypeVar("T")


async def read_limited(file: StarletteUpload, limit: int) -> bytes:
    chunks = []
    size = 0
    while True:
        chunk = await file.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"file larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def upload_limit(max_upload_bytes: int) -> int:
    return min(max_upload_bytes, service.MAX_ATTACHMENT_BYTES)


# ---------------------------------------------------------------------------------------------- brands


@router.get("/brands", response_model=list[BrandSummary], dependencies=[READ])
def list_brands(
    db: DB,
    principal: CurrentPrincipal,
    now: Now,
    status: BrandStatus | None = None,
    q: Annotated[str | None, Query(max_length=120)] = None,
) -> list[BrandSummary]:
    """Brands: a holder's own; every brand for the coordinating unit; approved ones for others."""
    brands = service.list_brands(db, principal, status, q)
    codes = service.org_codes(db, {b.owner_org_id for b in brands})
    return [service.brand_summary(db, b, now, codes) for b in brands]


@router.post("/brands", response_model=BrandOut, status_code=201, dependencies=[WRITE])
def register_brand(body: BrandCreate, db: DB, principal: CurrentPrincipal, now: Now) -> JSONResponse:
    """A rights holder registers a brand (trademarks, product lines, HS codes, aliases, representatives);
    the coordinating unit approves it before officers see it."""
    brand = service.register_brand(db, principal, body, now)
    out = service.brand_out(db, principal, brand, now).model_dump(mode="json")
    db.commit()
    return JSONResponse(out, status_code=201, headers={"Location": f"/api/v1/rights/brands/{brand.id}"})


@router.get("/brands/{brand_id}", response_model=BrandOut, dependencies=[READ])
def get_brand(brand_id: int, db: DB, principal: CurrentPrincipal, now: Now) -> BrandOut:
    return service.brand_out(db, principal, service.get_brand(db, principal, brand_id), now)


@router.post("/brands/{brand_id}/decision", response_model=BrandOut, dependencies=[WRITE])
def decide_brand(
    brand_id: int, body: BrandDecision, db: DB, principal: CurrentPrincipal, now: Now
) -> BrandOut:
    """The coordinating unit approves or rejects a brand (audited)."""
    brand = service.decide_brand(db, principal, brand_id, body.decision, body.note, now)
    out = service.brand_out(db, principal, brand, now)
    db.commit()
    return out


@router.post("/brands/{brand_id}/contacts", response_model=ContactOut, status_code=201, dependencies=[WRITE])
def add_contact(brand_id: int, body: ContactIn, db: DB, principal: CurrentPrincipal, now: Now) -> ContactOut:
    c = service.add_contact(db, principal, brand_id, body, now)
    out = service.contact_out(c, now)
    db.commit()
    return out


@router.put("/contacts/{contact_id}", response_model=ContactOut, dependencies=[WRITE])
def update_contact(
    contact_id: int, body: ContactIn, db: DB, principal: CurrentPrincipal, now: Now
) -> ContactOut:
    c = service.update_contact(db, principal, contact_id, body, now)
    out = service.contact_out(c, now)
    db.commit()
    return out


@router.post("/contacts/{contact_id}/confirm", response_model=ContactOut, dependencies=[WRITE])
def confirm_contact(contact_id: int, db: DB, principal: CurrentPrincipal, now: Now) -> ContactOut:
    """Confirm the contact point is still current (flagged stale 180 days after the last confirmation)."""
    c = service.confirm_contact(db, principal, contact_id, now)
    out = service.contact_out(c, now)
    db.commit()
    return out


@router.delete("/contacts/{contact_id}", status_code=204, dependencies=[WRITE])
def delete_contact(contact_id: int, db: DB, principal: CurrentPrincipal) -> Response:
    service.delete_contact(db, principal, contact_id)
    db.commit()
    return Response(status_code=204)


# ---------------------------------------------------------------------------------------------- guides


def guide_search(
    q: Annotated[str | None, Query(max_length=100)] = None,
    brand: Annotated[str | None, Query(max_length=120)] = None,
    product: Annotated[str | None, Query(max_length=100)] = None,
    hs: Annotated[str | None, Query(max_length=12, pattern=r"^\d{2,10}$")] = None,
    kind: GuideKind | None = None,
    include_expired: bool = False,
) -> GuideSearch:
    values = {k: v for k, v in locals().items() if v is not None and v != ""}
    try:
        return GuideSearch.model_validate(values)
    except ValidationError as e:
        errors = field_errors(e)
        raise InvalidInput(errors, "the search is invalid") from None


Search = Annotated[GuideSearch, Depends(guide_search)]


@router.get("/guides", response_model=GuidePage, dependencies=[READ])
def search_guides(
    search: Search, paging: PagingDep, db: DB, principal: CurrentPrincipal, now: Now
) -> GuidePage:
    """Search guides by words, brand, product or HS code prefix. Officers see published guides valid
    today; a holder or platform sees its own guides, drafts included."""
    items, total = service.search_guides(db, principal, search, paging.page, paging.page_size, now)
    return GuidePage(items=items, total=total, page=paging.page, page_size=paging.page_size)


@router.post("/guides", response_model=GuideOut, status_code=201, dependencies=[WRITE])
def create_guide(body: GuideCreate, db: DB, principal: CurrentPrincipal, now: Now) -> JSONResponse:
    """A draft guide (version 1): only its organisation sees it until it is published."""
    g = service.create_guide(db, principal, body, now)
    out = service.guide_out(db, g, g.versions[-1], now).model_dump(mode="json")
    db.commit()
    return JSONResponse(out, status_code=201, headers={"Location": f"/api/v1/rights/guides/{g.id}"})


@router.get("/guides/{guide_id}", response_model=GuideOut, dependencies=[READ])
def get_guide(
    guide_id: int,
    db: DB,
    principal: CurrentPrincipal,
    now: Now,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> GuideOut:
    g, v = service.get_guide(db, principal, guide_id, version)
    return service.guide_out(db, g, v, now)


@router.get("/guides/{guide_id}/versions", response_model=list[GuideVersionOut], dependencies=[READ])
def guide_versions(guide_id: int, db: DB, principal: CurrentPrincipal) -> list[GuideVersionOut]:
    return service.guide_versions(db, principal, guide_id)


@router.post("/guides/{guide_id}/versions", response_model=GuideOut, status_code=201, dependencies=[WRITE])
def edit_guide(guide_id: int, body: GuideEdit, db: DB, principal: CurrentPrincipal, now: Now) -> GuideOut:
    """Edit a guide: a new draft version (publish it to show it to officers)."""
    g = service.edit_guide(db, principal, guide_id, body, now)
    out = service.guide_out(db, g, g.versions[-1], now)
    db.commit()
    return out


@router.post("/guides/{guide_id}/publish", response_model=GuideOut, dependencies=[WRITE])
def publish_guide(
    guide_id: int, body: GuidePublish, db: DB, principal: CurrentPrincipal, now: Now
) -> GuideOut:
    g = service.publish_guide(db, principal, guide_id, body.version, now)
    _, v = service.get_guide(db, principal, g.id, g.published_version)
    out = service.guide_out(db, g, v, now)
    db.commit()
    return out


@router.post("/guides/{guide_id}/withdraw", response_model=GuideOut, dependencies=[WRITE])
def withdraw_guide(guide_id: int, db: DB, principal: CurrentPrincipal, now: Now) -> GuideOut:
    g = service.withdraw_guide(db, principal, guide_id, now)
    _, v = service.get_guide(db, principal, g.id)
    out = service.guide_out(db, g, v, now)
    db.commit()
    return out


@router.post(
    "/guides/{guide_id}/attachments", response_model=AttachmentOut, status_code=201, dependencies=[WRITE]
)
async def add_guide_attachment(
    guide_id: int, file: UploadFile, request: Request, settings: AppSettings, principal: CurrentPrincipal
) -> AttachmentOut:
    """Attach a photo (.png, .jpg, .webp) or a .pdf to the guide's latest (draft) version."""
    data = await read_limited(file, upload_limit(settings.max_upload_bytes))
    name = file.filename or "file"
    now = current_time(request)

    def work(db: Session) -> AttachmentOut:
        a = service.add_guide_attachment(
            db, principal, guide_id, name, data, settings.data_dir, settings.max_upload_bytes, now
        )
        return service.attachment_out(a)

    return await run_in_threadpool(_in_session, request, work)


def _in_session(request: Request, work: Callable[[Session], T]) -> T:
    session = request.app.state.sessionmaker()
    try:
        out = work(session)
        session.commit()
        return out
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


@router.get("/attachments/{attachment_id}", response_class=FileResponse, dependencies=[READ])
def get_attachment(
    attachment_id: int, db: DB, principal: CurrentPrincipal, settings: AppSettings
) -> Response:
    """Download a photo or PDF of a guide or a request the principal may read."""
    a, path = service.get_attachment(db, principal, attachment_id, settings.data_dir)
    inline = a.content_type.startswith("image/")
    return FileResponse(
        Path(path),
        media_type=a.content_type,
        filename=a.filename,
        content_disposition_type="inline" if inline else "attachment",
        headers={"Cache-Control": "private, no-store", "X-Checksum-SHA256": a.sha256},
    )


# ---------------------------------------------------------------------------------------------- requests


@router.get("/requests", response_model=VerificationPage, dependencies=[READ])
def list_requests(
    paging: PagingDep,
    db: DB,
    principal: CurrentPrincipal,
    now: Now,
    status: VerificationStatus | None = None,
    overdue: bool | None = None,
    brand_id: int | None = None,
    operation: Annotated[str | None, Query(max_length=32)] = None,
) -> VerificationPage:
    """Verification requests: the administration's own, the holder's brands', or (coordinating unit)
    those of its operations."""
    items, total = service.list_requests(
        db,
        principal,
        status=status,
        overdue=overdue,
        brand_id=brand_id,
        operation=operation,
        page=paging.page,
        page_size=paging.page_size,
        now=now,
    )
    return VerificationPage(
        items=[service.request_out(db, principal, r, now) for r in items],
        total=total,
        page=paging.page,
        page_size=paging.page_size,
    )


@router.post("/requests", response_model=VerificationOut, status_code=201, dependencies=[WRITE])
def create_request(body: VerificationCreate, db: DB, principal: CurrentPrincipal, now: Now) -> JSONResponse:
    """Ask a brand's rights holder whether goods are genuine. Never send personal data: the consignee's
    name of a linked case is refused."""
    req = service.create_request(db, principal, body, now)
    out = service.request_out(db, principal, req, now).model_dump(mode="json")
    db.commit()
    return JSONResponse(out, status_code=201, headers={"Location": f"/api/v1/rights/requests/{req.id}"})


@router.get("/requests/{request_id}", response_model=VerificationOut, dependencies=[READ])
def get_request(request_id: int, db: DB, principal: CurrentPrincipal, now: Now) -> VerificationOut:
    return service.request_out(db, principal, service.get_request(db, principal, request_id), now)


@router.post("/requests/{request_id}/answer", response_model=VerificationOut, dependencies=[WRITE])
def answer_request(
    request_id: int, body: VerificationAnswerIn, db: DB, principal: CurrentPrincipal, now: Now
) -> VerificationOut:
    """The brand's holder answers genuine, counterfeit or inconclusive (audited)."""
    req = service.answer_request(db, principal, request_id, body.answer, body.note, now)
    out = service.request_out(db, principal, req, now)
    db.commit()
    return out


@router.post("/requests/{request_id}/withdraw", response_model=VerificationOut, dependencies=[WRITE])
def withdraw_request(request_id: int, db: DB, principal: CurrentPrincipal, now: Now) -> VerificationOut:
    req = service.withdraw_request(db, principal, request_id, now)
    out = service.request_out(db, principal, req, now)
    db.commit()
    return out


@router.post(
    "/requests/{request_id}/attachments", response_model=AttachmentOut, status_code=201, dependencies=[WRITE]
)
async def add_request_attachment(
    request_id: int, file: UploadFile, request: Request, settings: AppSettings, principal: CurrentPrincipal
) -> AttachmentOut:
    """Add a photo or PDF to an open request (crop labels: no personal data)."""
    data = await read_limited(file, upload_limit(settings.max_upload_bytes))
    name = file.filename or "file"
    now = current_time(request)

    def work(db: Session) -> AttachmentOut:
        a = service.add_request_attachment(
            db, principal, request_id, name, data, settings.data_dir, settings.max_upload_bytes, now
        )
        return service.attachment_out(a)

    return await run_in_threadpool(_in_session, request, work)


@router.get("/cases/{case_id}/verifications", response_model=list[CaseVerificationOut], dependencies=[READ])
def case_verifications(
    case_id: int, db: DB, principal: CurrentPrincipal, now: Now
) -> list[CaseVerificationOut]:
    """The verification answers attached to a case (for whoever may read the case)."""
    return service.case_verifications(db, principal, case_id, now)


@router.get("/operations/{code}/settings", response_model=OperationSettingOut, dependencies=[READ])
def get_settings(code: str, db: DB, principal: CurrentPrincipal) -> OperationSettingOut:
    op = get_operation(db, principal, code)
    days, default = service.response_working_days(db, op.id)
    return OperationSettingOut(operation=op.code, response_working_days=days, is_default=default)


@router.put("/operations/{code}/settings", response_model=OperationSettingOut, dependencies=[WRITE])
def put_settings(
    code: str, body: OperationSettingIn, db: DB, principal: CurrentPrincipal, now: Now
) -> OperationSettingOut:
    """The coordinating unit sets the working days rights holders have to answer in this operation."""
    op = get_operation(db, principal, code)
    service.set_response_working_days(db, principal, op, body.response_working_days, now)
    db.commit()
    return OperationSettingOut(
        operation=op.code, response_working_days=body.response_working_days, is_default=False
    )


# ---------------------------------------------------------------------------------------------- seizures, figures


@router.get("/seizures", response_model=HolderSeizurePage, dependencies=[READ])
def holder_seizures(
    paging: PagingDep,
    db: DB,
    principal: CurrentPrincipal,
    operation: Annotated[str | None, Query(max_length=32)] = None,
    brand_id: int | None = None,
) -> HolderSeizurePage:
    """Seizures of the holder's approved brands: brand, commodity, pieces, kg, date and country only."""
    items, total = service.holder_seizures(db, principal, operation, brand_id, paging.page, paging.page_size)
    return HolderSeizurePage(items=items, total=total, page=paging.page, page_size=paging.page_size)


@router.get("/outreach", response_model=Outreach, dependencies=[READ])
def outreach(
    db: DB,
    principal: CurrentPrincipal,
    now: Now,
    operation: Annotated[str | None, Query(max_length=32)] = None,
) -> Outreach:
    """Per brand and operation: seizures, requests sent/answered, median response time, overdue."""
    return service.outreach(db, principal, operation, now)
