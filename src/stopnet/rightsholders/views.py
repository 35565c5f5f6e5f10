"""HTML pages of rights holders, guides and verification requests; each has a JSON twin."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from stopnet.access import policy
from stopnet.access.principal import Principal
from stopnet.core.errors import FieldError, Forbidden, InvalidInput, NotFound, ServiceError
from stopnet.core.validation import field_errors
from stopnet.db.models import Case, Operation, OrgKind, Role, Seizure
from stopnet.db.models.rightsholders import (
    Brand,
    BrandStatus,
    GuideKind,
    VerificationAnswer,
    VerificationStatus,
)
from stopnet.operations import service as operations
from stopnet.reporting import service as reporting
from stopnet.web.deps import DB, READ, SESSION_ONLY, CurrentPrincipal, current_time
from stopnet.web.pages import render, require_csrf, wants_json

from . import service
from .api import read_limited, upload_limit
from .schemas import (
    BrandCreate,
    BrandDecision,
    CaseRights,
    ContactIn,
    GuideCreate,
    GuideEdit,
    GuidePage,
    GuideSearch,
    HolderSeizurePage,
    OperationSettingIn,
    VerificationAnswerIn,
    VerificationCreate,
    VerificationPage,
)

router = APIRouter(include_in_schema=False)
TRADEMARK_ROWS = 3
REPRESENTATIVE_ROWS = 2
MAX_PHOTOS = 6
_ROW = re.compile(r"^(tm|rep)-(\d+)-(\w+)$")


# ---------------------------------------------------------------------------------------------- helpers


def _errors(e: ValidationError | InvalidInput) -> list[FieldError]:
    if isinstance(e, InvalidInput):
        return e.errors
    return field_errors(e)


def _role_flags(principal: Principal) -> dict[str, bool]:
    return {
        "is_holder": principal.org_kind is OrgKind.RIGHTS_HOLDER and principal.role is Role.RIGHTS_HOLDER,
        "is_private": service.is_private(principal),
        "is_customs": principal.org_kind is OrgKind.CUSTOMS and principal.role in service.CUSTOMS_ROLES,
        "is_coordinator": principal.is_coordinator and not service.is_private(principal),
    }


async def _read_form(request: Request, limit: int) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    """The form's text fields, and its uploaded files (``files``), each read within ``limit`` bytes."""
    form = await request.form()
    values: dict[str, str] = {}
    files: list[tuple[str, bytes]] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            values[key] = value
        elif key == "files" and value.filename:
            files.append((value.filename or "file", await read_limited(value, limit)))
    require_csrf(request, values.get("csrf_token"))
    return values, files


def _in_session(request: Request, work: Callable[[Session], Response]) -> Response:
    """Run ``work`` in its own session: commit when it answers below 400, else roll back."""
    session: Session = request.app.state.sessionmaker()
    try:
        response = work(session)
        if response.status_code < 400:
            session.commit()
        else:
            session.rollback()
        return response
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def _see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


# ---------------------------------------------------------------------------------------------- index


@router.get("/rights", dependencies=[READ])
def index(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    """Where each role starts: a holder's brands and requests, an officer's guide search and requests,
    the coordinating unit's pending brands."""
    now = current_time(request)
    flags = _role_flags(principal)
    brands = service.list_brands(db, principal)
    codes = service.org_codes(db, {b.owner_org_id for b in brands})
    summaries = [service.brand_summary(db, b, now, codes) for b in brands]
    pending = [b for b in summaries if b.status is BrandStatus.PENDING]
    open_requests: list[Any] = []
    overdue = 0
    if flags["is_holder"] or flags["is_customs"] or flags["is_coordinator"]:
        items, _ = service.list_requests(db, principal, status=VerificationStatus.OPEN, page_size=20, now=now)
        open_requests = [service.request_out(db, principal, r, now) for r in items]
        _, overdue = service.list_requests(db, principal, overdue=True, page_size=1, now=now)
    data = {
        "brands": summaries if flags["is_private"] else [],
        "pending_brands": pending if flags["is_coordinator"] else [],
        "open_requests": open_requests,
        "overdue_requests": overdue,
    }
    return render(
        request,
        "rightsholders/index.html",
        {**data, **flags, "approved_count": sum(1 for b in summaries if b.status is BrandStatus.APPROVED)},
        json=data,
        principal=principal,
    )


# ---------------------------------------------------------------------------------------------- brands


@router.get("/rights/brands", dependencies=[READ])
def brands_page(request: Request, db: DB, principal: CurrentPrincipal, q: str | None = None) -> Response:
    now = current_time(request)
    status = request.query_params.get("status") or ""
    chosen = BrandStatus(status) if status in {s.value for s in BrandStatus} else None
    brands = service.list_brands(db, principal, chosen, q)
    codes = service.org_codes(db, {b.owner_org_id for b in brands})
    out = [service.brand_summary(db, b, now, codes) for b in brands]
    ctx = {"brands": out, "q": q or "", "status": status or "", **_role_flags(principal)}
    return render(request, "rightsholders/brands.html", ctx, json=out, principal=principal)


def _brand_form_page(
    request: Request, principal: Principal, form: dict[str, str], errors: list[FieldError], status: int = 200
) -> Response:
    ctx = {
        "form": form,
        "errors": errors,
        "tm_rows": range(TRADEMARK_ROWS),
        "rep_rows": range(REPRESENTATIVE_ROWS),
    }
    return render(
        request,
        "rightsholders/brand_form.html",
        ctx,
        json={"form": form},
        principal=principal,
        status_code=status,
    )


@router.get("/rights/brands/new", dependencies=[SESSION_ONLY])
def new_brand_page(request: Request, principal: CurrentPrincipal) -> Response:
    if not _role_flags(principal)["is_holder"]:
        raise Forbidden("only rights holders register brands")
    return _brand_form_page(request, principal, {}, [])


def _rows(form: dict[str, str], prefix: str) -> list[dict[str, str]]:
    rows: dict[int, dict[str, str]] = {}
    for key, value in form.items():
        m = _ROW.match(key)
        if m and m.group(1) == prefix and value.strip():
            rows.setdefault(int(m.group(2)), {})[m.group(3)] = value
    return [rows[i] for i in sorted(rows)]


def brand_payload(form: dict[str, str]) -> dict[str, Any]:
    return {
        "name": form.get("name", ""),
        "description": form.get("description", ""),
        "product_lines": form.get("product_lines", ""),
        "hs_codes": form.get("hs_codes", ""),
        "aliases": form.get("aliases", ""),
        "trademarks": _rows(form, "tm"),
        "representatives": _rows(form, "rep"),
    }


@router.post("/rights/brands/new", dependencies=[SESSION_ONLY])
async def create_brand_form(request: Request, principal: CurrentPrincipal) -> Response:
    form, _ = await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        try:
            brand = service.register_brand(
                db, principal, BrandCreate.model_validate(brand_payload(form)), now
            )
        except (ValidationError, InvalidInput) as e:
            return _brand_form_page(request, principal, form, _errors(e), 422)
        except ServiceError as e:
            return _brand_form_page(request, principal, form, [FieldError("name", e.message)], e.status_code)
        return _see_other(f"/rights/brands/{brand.id}")

    return await run_in_threadpool(_in_session, request, work)


@router.get("/rights/brands/{brand_id}", dependencies=[READ])
def brand_page(brand_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    now = current_time(request)
    brand = service.get_brand(db, principal, brand_id)
    out = service.brand_out(db, principal, brand, now)
    flags = _role_flags(principal)
    own = flags["is_holder"] and brand.owner_org_id == principal.org_id
    guides, _ = service.search_guides(
        db, principal, GuideSearch(include_expired=own), 1, 200, now, brand_ids=[brand.id]
    )
    ctx = {"brand": out, "own": own, "guides": guides, "form": {}, "errors": [], **flags}
    return render(request, "rightsholders/brand.html", ctx, json=out, principal=principal)


@router.post("/rights/brands/{brand_id}/decision", dependencies=[SESSION_ONLY])
async def decide_brand_form(brand_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    form, _ = await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        body = _validated(BrandDecision, {"decision": form.get("decision", ""), "note": form.get("note", "")})
        service.decide_brand(db, principal, brand_id, body.decision, body.note, now)
        return _see_other(f"/rights/brands/{brand_id}")

    return await run_in_threadpool(_in_session, request, work)


def _contact_payload(form: dict[str, str]) -> dict[str, Any]:
    return {k: form.get(k, "") for k in ContactIn.model_fields}


@router.post("/rights/brands/{brand_id}/contacts", dependencies=[SESSION_ONLY])
async def add_contact_form(brand_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    form, _ = await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        try:
            service.add_contact(
                db, principal, brand_id, ContactIn.model_validate(_contact_payload(form)), now
            )
        except (ValidationError, InvalidInput) as e:
            brand = service.get_brand(db, principal, brand_id)
            ctx = {
                "brand": service.brand_out(db, principal, brand, now),
                "own": True,
                "guides": [],
                "form": form,
                "errors": _errors(e),
                **_role_flags(principal),
            }
            return render(request, "rightsholders/brand.html", ctx, principal=principal, status_code=422)
        return _see_other(f"/rights/brands/{brand_id}#contacts")

    return await run_in_threadpool(_in_session, request, work)


@router.post("/rights/contacts/{contact_id}/confirm", dependencies=[SESSION_ONLY])
async def confirm_contact_form(contact_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        c = service.confirm_contact(db, principal, contact_id, now)
        return _see_other(f"/rights/brands/{c.brand_id}#contacts")

    return await run_in_threadpool(_in_session, request, work)


# ---------------------------------------------------------------------------------------------- guides


def _search_from(request: Request) -> tuple[GuideSearch, dict[str, str], list[FieldError]]:
    values = {
        k: v.strip()
        for k in ("q", "brand", "product", "hs", "kind", "include_expired")
        if (v := request.query_params.get(k)) is not None and v.strip()
    }
    try:
        return GuideSearch.model_validate(values), values, []
    except ValidationError as e:
        return GuideSearch(), values, _errors(e)


@router.get("/rights/guides", dependencies=[READ])
def guides_page(request: Request, db: DB, principal: CurrentPrincipal, page: int = 1) -> Response:
    """Search guides by words, brand, product or HS code; a holder or platform lists its own."""
    now = current_time(request)
    search, values, errors = _search_from(request)
    page = max(1, min(page, 100_000))
    size = request.app.state.settings.page_size_default
    items, total = ([], 0) if errors else service.search_guides(db, principal, search, page, size, now)
    out = GuidePage(items=items, total=total, page=page, page_size=size)
    ctx = {
        "result": out,
        "fv": values,
        "errors": errors,
        "kinds": list(GuideKind),
        "pages": max(1, -(-total // size)),
        **_role_flags(principal),
    }
    if errors and wants_json(request):
        return JSONResponse(InvalidInput(errors, "the search is invalid").to_dict(), status_code=422)
    return render(
        request,
        "rightsholders/guides.html",
        ctx,
        json=out,
        principal=principal,
        status_code=422 if errors else 200,
    )


def _guide_form_page(
    request: Request,
    db: Session,
    principal: Principal,
    form: dict[str, str],
    errors: list[FieldError],
    *,
    guide_id: int | None = None,
    status: int = 200,
) -> Response:
    own_brands = [b for b in service.list_brands(db, principal) if b.status is not BrandStatus.REJECTED]
    ctx = {
        "form": form,
        "errors": errors,
        "guide_id": guide_id,
        "brands": own_brands,
        "kinds": list(GuideKind) if principal.org_kind is OrgKind.RIGHTS_HOLDER else [GuideKind.RISK_INFO],
    }
    return render(
        request,
        "rightsholders/guide_form.html",
        ctx,
        json={"form": form},
        principal=principal,
        status_code=status,
    )


GUIDE_FIELDS = (
    "title",
    "summary",
    "genuine_features",
    "packaging",
    "fake_indicators",
    "products",
    "hs_codes",
    "valid_from",
    "valid_until",
    "change_note",
)


@router.get("/rights/guides/new", dependencies=[SESSION_ONLY])
def new_guide_page(request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    if principal.org_kind not in service.PRIVATE_KINDS:
        raise Forbidden("guides are written by rights holders and platforms")
    form = {"brand_id": request.query_params.get("brand_id", "")}
    form["kind"] = "product_id" if principal.org_kind is OrgKind.RIGHTS_HOLDER else "risk_info"
    return _guide_form_page(request, db, principal, form, [])


@router.post("/rights/guides/new", dependencies=[SESSION_ONLY])
async def create_guide_form(request: Request, principal: CurrentPrincipal) -> Response:
    form, _ = await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        payload: dict[str, Any] = {k: form.get(k, "") for k in GUIDE_FIELDS}
        payload.update(kind=form.get("kind") or "product_id", brand_id=form.get("brand_id") or None)
        try:
            g = service.create_guide(db, principal, GuideCreate.model_validate(payload), now)
        except (ValidationError, InvalidInput) as e:
            return _guide_form_page(request, db, principal, form, _errors(e), status=422)
        return _see_other(f"/rights/guides/{g.id}")

    return await run_in_threadpool(_in_session, request, work)


@router.get("/rights/guides/{guide_id}", dependencies=[READ])
def guide_page(
    guide_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    version: int | None = None,
    case_id: int | None = None,
    seizure_id: int | None = None,
) -> Response:
    now = current_time(request)
    g, v = service.get_guide(db, principal, guide_id, version)
    out = service.guide_out(db, g, v, now)
    flags = _role_flags(principal)
    ctx = {
        "guide": out,
        "versions": service.guide_versions(db, principal, guide_id),
        "own": g.org_id == principal.org_id and flags["is_private"],
        "case_id": case_id,
        "seizure_id": seizure_id,
        "draft_open": v.version == g.latest_version and v.published_at is None,
        **flags,
    }
    return render(request, "rightsholders/guide.html", ctx, json=out, principal=principal)


@router.get("/rights/guides/{guide_id}/edit", dependencies=[SESSION_ONLY])
def edit_guide_page(guide_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    g, v = service.get_guide(db, principal, guide_id)
    if g.org_id != principal.org_id:
        raise Forbidden("only the organisation that wrote the guide changes it")
    out = service.guide_out(db, g, v)
    form = {
        k: str(getattr(out, k) or "")
        for k in GUIDE_FIELDS
        if k not in ("products", "hs_codes", "change_note")
    }
    form.update(
        products="\n".join(out.products),
        hs_codes=" ".join(out.hs_codes),
        expected_version=str(g.latest_version),
    )
    return _guide_form_page(request, db, principal, form, [], guide_id=guide_id)


@router.post("/rights/guides/{guide_id}/edit", dependencies=[SESSION_ONLY])
async def edit_guide_form(guide_id: int, request: Request, principal: CurrentPrincipal) -> Response:
    form, _ = await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        payload: dict[str, Any] = {k: form.get(k, "") for k in GUIDE_FIELDS}
        payload["expected_version"] = form.get("expected_version") or "0"
        try:
            service.edit_guide(db, principal, guide_id, GuideEdit.model_validate(payload), now)
        except (ValidationError, InvalidInput) as e:
            return _guide_form_page(request, db, principal, form, _errors(e), guide_id=guide_id, status=422)
        return _see_other(f"/rights/guides/{guide_id}")

    return await run_in_threadpool(_in_session, request, work)


@router.post("/rights/guides/{guide_id}/{action}", dependencies=[SESSION_ONLY])
async def guide_action(guide_id: int, action: str, request: Request, principal: CurrentPrincipal) -> Response:
    """``publish`` (the latest version), ``withdraw``, or ``attachments`` (upload files)."""
    limit = upload_limit(request.app.state.settings.max_upload_bytes)
    _, files = await _read_form(request, limit)
    now = current_time(request)
    settings = request.app.state.settings

    def work(db: Session) -> Response:
        if action == "publish":
            service.publish_guide(db, principal, guide_id, None, now)
        elif action == "withdraw":
            service.withdraw_guide(db, principal, guide_id, now)
        elif action == "attachments":
            if not files:
                raise InvalidInput([FieldError("files", "choose a photo or a PDF")])
            for name, data in files:
                service.add_guide_attachment(
                    db, principal, guide_id, name, data, settings.data_dir, settings.max_upload_bytes, now
                )
        else:
            raise NotFound(f"no action {action!r}")
        return _see_other(f"/rights/guides/{guide_id}")

    return await run_in_threadpool(_in_session, request, work)


# ---------------------------------------------------------------------------------------------- requests


@router.get("/rights/requests", dependencies=[READ])
def requests_page(request: Request, db: DB, principal: CurrentPrincipal, page: int = 1) -> Response:
    now = current_time(request)
    status_raw = request.query_params.get("status") or ""
    status = VerificationStatus(status_raw) if status_raw in {s.value for s in VerificationStatus} else None
    overdue = request.query_params.get("overdue") in ("1", "true", "yes", "on") or None
    page = max(1, min(page, 100_000))
    size = request.app.state.settings.page_size_default
    items, total = service.list_requests(
        db, principal, status=status, overdue=overdue, page=page, page_size=size, now=now
    )
    out = VerificationPage(
        items=[service.request_out(db, principal, r, now) for r in items],
        total=total,
        page=page,
        page_size=size,
    )
    ctx = {
        "result": out,
        "status": status_raw,
        "overdue": bool(overdue),
        "pages": max(1, -(-total // size)),
        **_role_flags(principal),
    }
    return render(request, "rightsholders/requests.html", ctx, json=out, principal=principal)


def _prefill(
    db: Session, principal: Principal, case_id: int | None, seizure_id: int | None
) -> dict[str, str]:
    """What a new request starts with: the seizure's goods and the case's route, never the consignee."""
    if case_id is None:
        return {}
    case = reporting.get_case(db, principal, case_id)
    form = {
        "case_id": str(case.id),
        "case_reference": case.reference,
        "detected_on": case.detected_on.isoformat(),
        "origin_country": case.origin_country or "",
        "departure_country": case.departure_country or "",
    }
    seizure: Seizure | None = None
    if seizure_id is not None:
        seizure = next((s for s in case.seizures if s.id == seizure_id), None)
        if seizure is None:
            raise NotFound(f"no seizure {seizure_id} in case {case_id}")
    if seizure is not None:
        product = seizure.description or seizure.commodity_code
        form.update(
            seizure_id=str(seizure.id),
            product=f"{seizure.brand} {product}".strip()[:200],
            hs_code=seizure.hs_code,
            pieces=str(seizure.pieces or ""),
        )
    return form


def _request_form_page(
    request: Request,
    db: Session,
    principal: Principal,
    form: dict[str, str],
    errors: list[FieldError],
    status: int = 200,
) -> Response:
    brand = None
    if form.get("brand_id", "").isdigit():
        try:
            b = service.get_brand(db, principal, int(form["brand_id"]))
            brand = b if b.status is BrandStatus.APPROVED else None
        except NotFound:
            brand = None
    ops = [
        op
        for op in operations.list_operations(db, principal)
        if policy.participation(db, principal, op.id) is not None
    ]
    brands = [b for b in service.list_brands(db, principal, BrandStatus.APPROVED)] if brand is None else []
    days = {op.code: service.response_working_days(db, op.id)[0] for op in ops}
    ctx = {
        "form": form,
        "errors": errors,
        "brand": brand,
        "brands": brands,
        "operations": ops,
        "days": days,
        "max_photos": MAX_PHOTOS,
    }
    public_form = {k: v for k, v in form.items() if k != "csrf_token"}
    return render(
        request,
        "rightsholders/request_form.html",
        ctx,
        json={"form": public_form},
        principal=principal,
        status_code=status,
    )


@router.get("/rights/requests/new", dependencies=[SESSION_ONLY])
def new_request_page(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    brand_id: int | None = None,
    case_id: int | None = None,
    seizure_id: int | None = None,
) -> Response:
    if not _role_flags(principal)["is_customs"]:
        raise Forbidden("only officers and national contact points of a customs administration ask")
    form = _prefill(db, principal, case_id, seizure_id)
    if case_id is not None:
        case = db.get_one(Case, case_id)
        if case.reporting_org_id != principal.org_id:
            raise Forbidden("link a case your administration reported")
        form["operation"] = db.get_one(Operation, case.operation_id).code
    if brand_id is not None:
        form["brand_id"] = str(brand_id)
    db.commit()  # the audit entry of a restricted case read
    return _request_form_page(request, db, principal, form, [])


REQUEST_FIELDS = tuple(VerificationCreate.model_fields)


@router.post("/rights/requests/new", dependencies=[SESSION_ONLY])
async def create_request_form(request: Request, principal: CurrentPrincipal) -> Response:
    settings = request.app.state.settings
    form, files = await _read_form(request, upload_limit(settings.max_upload_bytes))
    now = current_time(request)

    def work(db: Session) -> Response:
        payload = {k: form.get(k, "") for k in REQUEST_FIELDS if form.get(k, "") != ""}
        try:
            if len(files) > MAX_PHOTOS:
                raise InvalidInput([FieldError("files", f"at most {MAX_PHOTOS} files with the request")])
            req = service.create_request(db, principal, VerificationCreate.model_validate(payload), now)
            for name, data in files:
                service.add_request_attachment(
                    db, principal, req.id, name, data, settings.data_dir, settings.max_upload_bytes, now
                )
        except (ValidationError, InvalidInput) as e:
            db.rollback()
            return _request_form_page(request, db, principal, form, _errors(e), 422)
        return _see_other(f"/rights/requests/{req.id}")

    return await run_in_threadpool(_in_session, request, work)


@router.get("/rights/requests/{request_id}", dependencies=[READ])
def request_page(request_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    now = current_time(request)
    req = service.get_request(db, principal, request_id)
    out = service.request_out(db, principal, req, now)
    brand = db.get_one(Brand, req.brand_id)
    can_answer = (
        principal.role is Role.RIGHTS_HOLDER
        and brand.owner_org_id == principal.org_id
        and req.status is VerificationStatus.OPEN
    )
    can_withdraw = (
        req.requesting_org_id == principal.org_id
        and principal.role in service.CUSTOMS_ROLES
        and req.status is VerificationStatus.OPEN
    )
    contacts = (
        [] if service.is_private(principal) else service.contacts_for(brand, principal.country_code, now)
    )
    ctx = {
        "req": out,
        "can_answer": can_answer,
        "can_withdraw": can_withdraw,
        "answers": list(VerificationAnswer),
        "contacts": contacts,
        "form": {},
        "errors": [],
    }
    return render(request, "rightsholders/request.html", ctx, json=out, principal=principal)


@router.post("/rights/requests/{request_id}/{action}", dependencies=[SESSION_ONLY])
async def request_action(
    request_id: int, action: str, request: Request, principal: CurrentPrincipal
) -> Response:
    """``answer`` (the brand's holder) or ``withdraw`` (the requesting administration)."""
    form, _ = await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        if action == "answer":
            try:
                body = VerificationAnswerIn.model_validate(
                    {"answer": form.get("answer", ""), "note": form.get("note", "")}
                )
            except ValidationError as e:
                req = service.get_request(db, principal, request_id)
                ctx = {
                    "req": service.request_out(db, principal, req, now),
                    "can_answer": True,
                    "can_withdraw": False,
                    "answers": list(VerificationAnswer),
                    "contacts": [],
                    "form": form,
                    "errors": _errors(e),
                }
                return render(
                    request, "rightsholders/request.html", ctx, principal=principal, status_code=422
                )
            service.answer_request(db, principal, request_id, body.answer, body.note, now)
        elif action == "withdraw":
            service.withdraw_request(db, principal, request_id, now)
        else:
            raise NotFound(f"no action {action!r}")
        return _see_other(f"/rights/requests/{request_id}")

    return await run_in_threadpool(_in_session, request, work)


# ---------------------------------------------------------------------------------------------- case bridge


@router.get("/rights/cases/{case_id}", dependencies=[READ])
def case_rights_page(case_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    """From a case to its brands: for each seizure the approved brands it names, their guides, their
    contact points, the requests already sent and (for the reporting administration) a button to ask."""
    now = current_time(request)
    if service.is_private(principal):
        raise NotFound(f"no case {case_id}")
    case = reporting.get_case(db, principal, case_id)
    op = db.get_one(Operation, case.operation_id)
    lines = service.case_brand_lines(db, principal, case, now)
    verifications = service.case_verifications(db, principal, case_id, now)
    db.commit()  # the audit entry of a restricted read
    out = CaseRights(
        case_id=case.id,
        reference=case.reference,
        operation=op.code,
        own=case.reporting_org_id == principal.org_id and principal.role in service.CUSTOMS_ROLES,
        lines=lines,
        verifications=verifications,
    )
    return render(request, "rightsholders/case.html", {"view": out}, json=out, principal=principal)


# ---------------------------------------------------------------------------------------------- seizures, figures


@router.get("/rights/seizures", dependencies=[READ])
def seizures_page(
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    operation: str | None = None,
    brand_id: int | None = None,
    page: int = 1,
) -> Response:
    page = max(1, min(page, 100_000))
    size = request.app.state.settings.page_size_default
    items, total = service.holder_seizures(db, principal, operation or None, brand_id, page, size)
    out = HolderSeizurePage(items=items, total=total, page=page, page_size=size)
    brands = service.list_brands(db, principal, BrandStatus.APPROVED)
    ctx = {
        "result": out,
        "brands": brands,
        "operation": operation or "",
        "brand_id": brand_id,
        "pages": max(1, -(-total // size)),
    }
    return render(request, "rightsholders/seizures.html", ctx, json=out, principal=principal)


@router.get("/rights/outreach", dependencies=[READ])
def outreach_page(
    request: Request, db: DB, principal: CurrentPrincipal, operation: str | None = None
) -> Response:
    now = current_time(request)
    out = service.outreach(db, principal, operation or None, now)
    ops = operations.list_operations(db, principal)
    settings = {op.code: service.response_working_days(db, op.id) for op in ops}
    coordinated = (
        {op.code for op in ops if service.is_coordinator_of(db, principal, op.id)}
        if not service.is_private(principal)
        else set()
    )
    ctx = {
        "out": out,
        "operations": ops,
        "operation": operation or "",
        "settings": settings,
        "coordinated": coordinated,
    }
    return render(request, "rightsholders/outreach.html", ctx, json=out, principal=principal)


@router.post("/rights/operations/{code}/settings", dependencies=[SESSION_ONLY])
async def settings_form(code: str, request: Request, principal: CurrentPrincipal) -> Response:
    form, _ = await _read_form(request, 0)
    now = current_time(request)

    def work(db: Session) -> Response:
        op = operations.get_operation(db, principal, code)
        body = _validated(
            OperationSettingIn, {"response_working_days": form.get("response_working_days", "")}
        )
        service.set_response_working_days(db, principal, op, body.response_working_days, now)
        return _see_other(f"/rights/outreach?operation={op.code}")

    return await run_in_threadpool(_in_session, request, work)


M = TypeVar("M", bound=BaseModel)


def _validated(model: type[M], payload: dict[str, Any]) -> M:
    try:
        return model.model_validate(payload)
    except ValidationError as e:
        raise InvalidInput(_errors(e)) from None
