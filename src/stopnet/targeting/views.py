"""Officers' pages of risk targeting (``/operations/{code}/targeting/...``); each has a JSON twin and every
form a CSRF token. The service layer authorises every read and write."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from typing import Annotated, Any
from urllib.parse import parse_qs, urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.core.errors import Conflict, FieldError, InvalidInput
from stopnet.core.validation import FieldHint, field_errors
from stopnet.db.models import Operation
from stopnet.db.models.targeting import InspectionOutcome, ProposalStatus, TargetingRule
from stopnet.operations.service import get_operation
from stopnet.web.deps import DB, READ, SESSION_ONLY, CurrentPrincipal, today
from stopnet.web.pages import render, require_csrf, wants_json

from . import service
from .schemas import InspectionIn, ProposeIn, RuleCreate, RuleDetail, RuleEdit, RuleTestOut, SelectionIn

router = APIRouter(include_in_schema=False)
BASE = "/operations/{code}/targeting"
Text = Annotated[str, Form()]
OptText = Annotated[str | None, Form()]


def _see_other(url: str) -> Response:
    return RedirectResponse(url, status_code=303)


#: What the targeting forms' fields are called, and take
HINTS = {
    "recent_days": FieldHint("Recent days", "a whole number of days from 1 to 120", "14"),
    "baseline_days": FieldHint("Baseline days", "a whole number of days from 1 to 730", "56"),
    "capacity": FieldHint("Capacity", "a number, a share or a number per office", "5%"),
    "exploration_share": FieldHint("Exploration share", "a share from 0 to 1", "0.1"),
    "day": FieldHint("Day", "a date written YYYY-MM-DD", "2025-05-20"),
    "outcome": FieldHint("Result", "one of the results listed"),
    "case_id": FieldHint("Case id", "the number of your administration's case for the seizure", "12"),
    "commodity_code": FieldHint("Commodity", "a commodity code", "MED-NERV"),
    "note": FieldHint("Note", "up to 2,000 characters"),
    "org_code": FieldHint("Administration", "an administration of the operation", "FR-DGDDI"),
}


def _errors(e: ValidationError | InvalidInput) -> list[FieldError]:
    if isinstance(e, InvalidInput):
        return [_labelled(x) for x in e.errors]
    return field_errors(e, HINTS)


def _labelled(e: FieldError) -> FieldError:
    """A service's message about a form field, prefixed with the field's label when it lacks one."""
    hint = HINTS.get(e.field)
    label = hint.label if hint else e.field.replace("_", " ").capitalize()
    if e.field in ("", "form") or e.message.startswith(label + ":"):
        return e
    return replace(e, message=f"{label}: {e.message}")


def _ctx(db: Session, principal: Principal, op: Operation) -> dict[str, Any]:
    scope = service.access(db, principal, op)
    return {
        "op": op,
        "is_coordinator": scope.is_coordinator,
        "orgs": [o.code for o in service.member_orgs(db, scope)],
    }


# ------------------------------------------------------------------------------------------ overview


@router.get(BASE, dependencies=[READ])
def index(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = get_operation(db, principal, code)
    ctx = _ctx(db, principal, op)
    rules = service.list_rules(db, principal, op)
    _, total = service.list_consignments(db, principal, op, limit=1)
    data = {
        "operation": op.code,
        "consignments": total,
        "rules": len(rules),
        "active_rules": sum(1 for r in rules if r.active_version),
        "model": service.scoring_model(db, principal, op),
        "open_proposals": len(service.list_proposals(db, principal, op, ProposalStatus.OPEN)),
    }
    return render(
        request,
        "targeting/index.html",
        {**ctx, **data, "today": today(request)},
        json=data,
        principal=principal,
    )


# ------------------------------------------------------------------------------------------ rules


def _rules_page(
    request: Request,
    db: Session,
    principal: Principal,
    op: Operation,
    form: dict[str, Any],
    errors: list[FieldError],
    status: int = 200,
) -> Response:
    rules = service.list_rules(db, principal, op)
    return render(
        request,
        "targeting/rules.html",
        {**_ctx(db, principal, op), "rules": rules, "form": form, "errors": errors},
        json=rules,
        principal=principal,
        status_code=status,
    )


@router.get(BASE + "/rules", dependencies=[READ])
def rules_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = get_operation(db, principal, code)
    return _rules_page(request, db, principal, op, {"weight": "1"}, [])


@router.post(BASE + "/rules", dependencies=[SESSION_ONLY])
def create_rule(
    code: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    rule_code: Text = "",
    name: Text = "",
    expression: Text = "",
    weight: Text = "1",
    note: Text = "",
    org_code: OptText = None,
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    form = {
        "rule_code": rule_code,
        "name": name,
        "expression": expression,
        "weight": weight,
        "note": note,
        "org_code": org_code,
    }
    try:
        body = RuleCreate(
            code=rule_code,
            name=name,
            expression=expression,
            weight=weight,
            note=note,
            org_code=org_code or None,
        )
        rule = service.create_rule(db, principal, op, body)
    except (ValidationError, InvalidInput) as e:
        db.rollback()
        return _rules_page(request, db, principal, op, form, _errors(e), 422)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/rules/{rule.id}")


def _rule_page(
    request: Request,
    db: Session,
    principal: Principal,
    op: Operation,
    rule: TargetingRule,
    *,
    test: RuleTestOut | None = None,
    form: dict[str, Any] | None = None,
    errors: list[FieldError] | None = None,
    status: int = 200,
) -> Response:
    detail = RuleDetail(**service.rule_out(db, rule).model_dump(), versions=service.rule_versions(db, rule))
    perf = service.rule_performance(db, principal, op, rule.id)
    latest = detail.versions[0]
    data = {"rule": detail, "performance": perf, "test": test}
    return render(
        request,
        "targeting/rule.html",
        {
            **_ctx(db, principal, op),
            **data,
            "form": form
            or {"name": latest.name, "expression": latest.expression, "weight": latest.weight, "note": ""},
            "errors": errors or [],
        },
        json=data,
        principal=principal,
        status_code=status,
    )


@router.get(BASE + "/rules/{rule_id}", dependencies=[READ])
def rule_page(code: str, rule_id: int, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = get_operation(db, principal, code)
    return _rule_page(request, db, principal, op, service.get_rule(db, principal, op, rule_id))


@router.post(BASE + "/rules/{rule_id}/versions", dependencies=[SESSION_ONLY])
def edit_rule(
    code: str,
    rule_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    name: Text = "",
    expression: Text = "",
    weight: Text = "1",
    note: Text = "",
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    rule = service.get_rule(db, principal, op, rule_id, write=True)
    form = {"name": name, "expression": expression, "weight": weight, "note": note}
    try:
        service.edit_rule(
            db, principal, op, rule_id, RuleEdit(name=name, expression=expression, weight=weight, note=note)
        )
    except (ValidationError, InvalidInput) as e:
        db.rollback()
        rule = service.get_rule(db, principal, op, rule_id)
        return _rule_page(request, db, principal, op, rule, form=form, errors=_errors(e), status=422)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/rules/{rule.id}")


@router.post(BASE + "/rules/{rule_id}/test", dependencies=[SESSION_ONLY])
def test_rule(
    code: str,
    rule_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    version: OptText = None,
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    v = int(version) if version and version.isdigit() else None
    result = service.test_rule(db, principal, op, rule_id, v)
    db.commit()
    return _rule_page(request, db, principal, op, service.get_rule(db, principal, op, rule_id), test=result)


@router.post(BASE + "/rules/{rule_id}/activate", dependencies=[SESSION_ONLY])
def activate_rule(
    code: str,
    rule_id: int,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    version: OptText = None,
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    service.activate_rule(db, principal, op, rule_id, int(version) if version and version.isdigit() else None)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/rules/{rule_id}")


@router.post(BASE + "/rules/{rule_id}/deactivate", dependencies=[SESSION_ONLY])
def deactivate_rule(
    code: str, rule_id: int, request: Request, db: DB, principal: CurrentPrincipal, csrf_token: Text = ""
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    service.deactivate_rule(db, principal, op, rule_id)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/rules/{rule_id}")


# ------------------------------------------------------------------------------------------ selection


@router.get(BASE + "/selection", dependencies=[READ])
def selection_page(
    code: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    day: dt.date | None = None,
    org_code: str | None = None,
) -> Response:
    op = get_operation(db, principal, code)
    return _selection_page(request, db, principal, op, day or today(request), org_code or None)


def _selection_page(
    request: Request,
    db: Session,
    principal: Principal,
    op: Operation,
    the_day: dt.date,
    org_code: str | None,
    errors: list[FieldError] | None = None,
    typed: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The day's selections; with ``errors``, the form that was refused (``typed``: ``run`` for the
    selection form, or a consignment id for its inspection form) as typed, and why."""
    selections = [
        service.selection_out(db, s) for s in service.latest_selections(db, principal, op, the_day, org_code)
    ]
    return render(
        request,
        "targeting/selection.html",
        {
            **_ctx(db, principal, op),
            "day": the_day,
            "selections": selections,
            "outcomes": list(InspectionOutcome),
            "errors": errors or [],
            "typed": typed or {},
        },
        json=selections,
        principal=principal,
        status_code=status,
    )


def _day_or(text: str, default: dt.date) -> dt.date:
    try:
        return dt.date.fromisoformat(text.strip())
    except ValueError:
        return default


@router.post(BASE + "/selection", dependencies=[SESSION_ONLY])
def run_selection(
    code: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    day: Text = "",
    capacity: Text = "5%",
    exploration_share: Text = "0.1",
    org_code: OptText = None,
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    typed = {"day": day, "capacity": capacity, "exploration_share": exploration_share, "org_code": org_code}
    try:
        body = SelectionIn(
            day=day, capacity=capacity, exploration_share=exploration_share, org_code=org_code or None
        )
        selection = service.run_selection(db, principal, op, body)
    except (ValidationError, InvalidInput) as e:
        db.rollback()
        if wants_json(request):
            raise InvalidInput(_errors(e), "the selection form is not valid") from e
        the_day = _day_or(day, today(request))
        return _selection_page(request, db, principal, op, the_day, None, _errors(e), {"run": typed}, 422)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/selection?day={selection.day}")


@router.post(BASE + "/consignments/{consignment_id}/inspection", dependencies=[SESSION_ONLY])
def record_inspection(
    code: str,
    consignment_id: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    outcome: Text = "",
    case_id: OptText = None,
    commodity_code: OptText = None,
    note: Text = "",
    back: Text = "",
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    typed = {
        "outcome": outcome,
        "case_id": case_id or "",
        "commodity_code": commodity_code or "",
        "note": note,
    }
    try:
        body = InspectionIn(
            outcome=outcome,
            case_id=case_id.strip() if case_id and case_id.strip() else None,
            commodity_code=commodity_code or None,
            note=note,
        )
        service.record_inspection(db, principal, op, consignment_id, body, today(request))
    except (ValidationError, InvalidInput, Conflict) as e:
        db.rollback()
        if isinstance(e, Conflict):  # recorded meanwhile (another tab or officer): say so on the page
            e = InvalidInput([FieldError("outcome", f"Result: {e.message}", code="conflict")], e.message)
        if wants_json(request):
            raise InvalidInput(_errors(e), "the inspection result is not valid") from e
        the_day = _day_or(parse_qs(urlsplit(back).query).get("day", [""])[0], today(request))
        typed_for = {consignment_id: typed}
        return _selection_page(request, db, principal, op, the_day, None, _errors(e), typed_for, 422)
    db.commit()
    target = (
        back
        if back.startswith(f"/operations/{op.code}/targeting/")
        else f"/operations/{op.code}/targeting/selection"
    )
    return _see_other(target)


# ------------------------------------------------------------------------------------------ performance


@router.get(BASE + "/performance", dependencies=[READ])
def performance_page(
    code: str, request: Request, db: DB, principal: CurrentPrincipal, org_code: str | None = None
) -> Response:
    op = get_operation(db, principal, code)
    perf = service.performance(db, principal, op, org_code or None)
    return render(
        request,
        "targeting/performance.html",
        {**_ctx(db, principal, op), "perf": perf},
        json=perf,
        principal=principal,
    )


@router.post(BASE + "/models/{version}/sharing", dependencies=[SESSION_ONLY])
def share_model(
    code: str,
    version: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    shared: Text = "",
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    service.share_model(db, principal, op, version, shared == "1")
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/performance")


# ------------------------------------------------------------------------------------------ proposals


@router.get(BASE + "/proposals", dependencies=[READ])
def proposals_page(code: str, request: Request, db: DB, principal: CurrentPrincipal) -> Response:
    op = get_operation(db, principal, code)
    return _proposals_page(request, db, principal, op)


def _proposals_page(
    request: Request,
    db: Session,
    principal: Principal,
    op: Operation,
    errors: list[FieldError] | None = None,
    typed: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    items = service.list_proposals(db, principal, op)
    return render(
        request,
        "targeting/proposals.html",
        {
            **_ctx(db, principal, op),
            "proposals": items,
            "today": today(request),
            "errors": errors or [],
            "form": typed or {"recent_days": "14", "baseline_days": "56"},
        },
        json=items,
        principal=principal,
        status_code=status,
    )


@router.post(BASE + "/proposals", dependencies=[SESSION_ONLY])
def propose(
    code: str,
    request: Request,
    db: DB,
    principal: CurrentPrincipal,
    csrf_token: Text = "",
    recent_days: Text = "14",
    baseline_days: Text = "56",
    org_code: OptText = None,
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    typed = {"recent_days": recent_days, "baseline_days": baseline_days, "org_code": org_code}
    try:
        body = ProposeIn(recent_days=recent_days, baseline_days=baseline_days, org_code=org_code or None)
        service.propose(db, principal, op, body, today(request))
    except (ValidationError, InvalidInput) as e:
        db.rollback()
        if wants_json(request):
            raise InvalidInput(_errors(e), "the proposal form is not valid") from e
        return _proposals_page(request, db, principal, op, _errors(e), typed, 422)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/proposals")


@router.post(BASE + "/proposals/{proposal_id}/accept", dependencies=[SESSION_ONLY])
def accept_proposal(
    code: str, proposal_id: int, request: Request, db: DB, principal: CurrentPrincipal, csrf_token: Text = ""
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    _, rule = service.accept_proposal(db, principal, op, proposal_id)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/rules/{rule.id}")


@router.post(BASE + "/proposals/{proposal_id}/dismiss", dependencies=[SESSION_ONLY])
def dismiss_proposal(
    code: str, proposal_id: int, request: Request, db: DB, principal: CurrentPrincipal, csrf_token: Text = ""
) -> Response:
    require_csrf(request, csrf_token)
    op = get_operation(db, principal, code)
    service.dismiss_proposal(db, principal, op, proposal_id)
    db.commit()
    return _see_other(f"/operations/{op.code}/targeting/proposals")
