"""REST API of risk targeting (``/api/v1/targeting``): consignments, rules, scoring, selection,
inspection results, model versions and proposals. Every route needs a signed-in user or an API token."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse

from stopnet.db.models.targeting import ProposalStatus
from stopnet.operations.service import get_operation
from stopnet.web.deps import DB, READ, WRITE, CurrentPrincipal, pseudonym_key, today

from . import service
from .schemas import (
    ActivateIn,
    ConsignmentBatchIn,
    ConsignmentOut,
    IngestOut,
    InspectionIn,
    InspectionOut,
    ModelOut,
    ModelShareIn,
    PerformanceOut,
    ProposalDecisionOut,
    ProposalOut,
    ProposeIn,
    RuleCreate,
    RuleDetail,
    RuleEdit,
    RuleOut,
    RulePerformance,
    RuleTestIn,
    RuleTestOut,
    ScoreIn,
    ScoreOut,
    ScoreRunIn,
    ScoreRunOut,
    SelectionIn,
    SelectionOut,
    StoredScoreOut,
)

router = APIRouter(prefix="/api/v1/targeting", tags=["risk targeting"])
OP = "/operations/{code}"


# ------------------------------------------------------------------------------------------ consignments


@router.post("/consignments", response_model=IngestOut, status_code=201, dependencies=[WRITE])
def ingest(body: ConsignmentBatchIn, request: Request, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Store a batch of consignments (ids already stored are skipped); names are pseudonymised."""
    op = get_operation(db, principal, body.operation)
    out = service.ingest_records(db, principal, op, body.consignments, pseudonym_key(request), body.org_code)
    db.commit()
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.get(OP + "/consignments", response_model=list[ConsignmentOut], dependencies=[READ])
def list_consignments(
    code: str,
    db: DB,
    principal: CurrentPrincipal,
    day: dt.date | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 200,
    offset: Annotated[int, Query(ge=0)] = 0,
) -> JSONResponse:
    op = get_operation(db, principal, code)
    items, total = service.list_consignments(db, principal, op, day=day, limit=limit, offset=offset)
    return JSONResponse([i.model_dump(mode="json") for i in items], headers={"X-Total-Count": str(total)})


@router.get(
    OP + "/consignments/{consignment_id}/score", response_model=StoredScoreOut | None, dependencies=[READ]
)
def stored_score(
    code: str, consignment_id: str, db: DB, principal: CurrentPrincipal, org_code: str | None = None
) -> StoredScoreOut | None:
    """The latest stored score of a consignment (model version, rule versions hit, explanation)."""
    op = get_operation(db, principal, code)
    _, s = service.stored_score(db, principal, op, consignment_id, org_code)
    if s is None:
        return None
    return StoredScoreOut(
        score=s.score,
        model_version=s.model_version,
        rule_hits=s.rule_hits,
        rule_score=s.rule_score,
        explanation=s.explanation,
        scored_at=s.scored_at,
    )


@router.post(
    OP + "/consignments/{consignment_id}/inspection",
    response_model=InspectionOut,
    status_code=201,
    dependencies=[WRITE],
)
def record_inspection(
    code: str, consignment_id: str, body: InspectionIn, request: Request, db: DB, principal: CurrentPrincipal
) -> JSONResponse:
    """Record what the inspection found (nothing, or a seizure linked to its case)."""
    op = get_operation(db, principal, code)
    result = service.record_inspection(db, principal, op, consignment_id, body, today(request))
    out = service.inspection_out(db, result).model_dump(mode="json")
    db.commit()
    return JSONResponse(out, status_code=201)


# ------------------------------------------------------------------------------------------ scoring


@router.post("/score", response_model=ScoreOut, dependencies=[READ])
def score(body: ScoreIn, request: Request, db: DB, principal: CurrentPrincipal) -> ScoreOut:
    """Score one consignment (not stored): score, lane, rule hits, explanation and model version."""
    op = get_operation(db, principal, body.operation)
    return service.score_one(
        db,
        principal,
        op,
        body.consignment,
        pseudonym_key(request),
        body.org_code,
        body.explain_top_k,
    )


@router.post(OP + "/scoring", response_model=ScoreRunOut, dependencies=[WRITE])
def score_stored(code: str, body: ScoreRunIn, db: DB, principal: CurrentPrincipal) -> ScoreRunOut:
    """Score stored consignments (one arrival day, or all) with the active model and rules."""
    op = get_operation(db, principal, code)
    out = service.score_stored(db, principal, op, body.org_code, body.day)
    db.commit()
    return out


@router.get(OP + "/models", response_model=list[ModelOut], dependencies=[READ])
def models(code: str, db: DB, principal: CurrentPrincipal) -> list[ModelOut]:
    op = get_operation(db, principal, code)
    return service.list_models(db, principal, op)


@router.post(OP + "/models/{version}/sharing", response_model=ModelOut, dependencies=[WRITE])
def share_model(code: str, version: str, body: ModelShareIn, db: DB, principal: CurrentPrincipal) -> ModelOut:
    """Show a model and its metrics to every member of the operation (``shared: true``), or stop."""
    op = get_operation(db, principal, code)
    out = service.share_model(db, principal, op, version, body.shared)
    db.commit()
    return out


@router.get(OP + "/performance", response_model=PerformanceOut, dependencies=[READ])
def performance(
    code: str, db: DB, principal: CurrentPrincipal, org_code: str | None = None
) -> PerformanceOut:
    """Precision of the selected consignments per week, hit and seizure rates per rule, model versions."""
    op = get_operation(db, principal, code)
    return service.performance(db, principal, op, org_code)


# ------------------------------------------------------------------------------------------ rules


@router.get(OP + "/rules", response_model=list[RuleOut], dependencies=[READ])
def list_rules(code: str, db: DB, principal: CurrentPrincipal) -> list[RuleOut]:
    op = get_operation(db, principal, code)
    return service.list_rules(db, principal, op)


@router.post(OP + "/rules", response_model=RuleDetail, status_code=201, dependencies=[WRITE])
def create_rule(code: str, body: RuleCreate, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Write a rule (draft, version 1). A rule that does not compile is refused with the position."""
    op = get_operation(db, principal, code)
    rule = service.create_rule(db, principal, op, body)
    out = RuleDetail(**service.rule_out(db, rule).model_dump(), versions=service.rule_versions(db, rule))
    db.commit()
    return JSONResponse(
        out.model_dump(mode="json"),
        status_code=201,
        headers={"Location": f"/api/v1/targeting/operations/{op.code}/rules/{rule.id}"},
    )


@router.get(OP + "/rules/{rule_id}", response_model=RuleDetail, dependencies=[READ])
def get_rule(code: str, rule_id: int, db: DB, principal: CurrentPrincipal) -> RuleDetail:
    op = get_operation(db, principal, code)
    rule = service.get_rule(db, principal, op, rule_id)
    return RuleDetail(**service.rule_out(db, rule).model_dump(), versions=service.rule_versions(db, rule))


@router.post(
    OP + "/rules/{rule_id}/versions", response_model=RuleDetail, status_code=201, dependencies=[WRITE]
)
def edit_rule(code: str, rule_id: int, body: RuleEdit, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Write the next version of a rule (older versions are kept)."""
    op = get_operation(db, principal, code)
    service.edit_rule(db, principal, op, rule_id, body)
    rule = service.get_rule(db, principal, op, rule_id, write=True)
    out = RuleDetail(**service.rule_out(db, rule).model_dump(), versions=service.rule_versions(db, rule))
    db.commit()
    return JSONResponse(out.model_dump(mode="json"), status_code=201)


@router.post(OP + "/rules/{rule_id}/test", response_model=RuleTestOut, dependencies=[WRITE])
def test_rule(code: str, rule_id: int, body: RuleTestIn, db: DB, principal: CurrentPrincipal) -> RuleTestOut:
    """Run a version against the stored consignments: hits, a sample, and how inspections of hits went."""
    op = get_operation(db, principal, code)
    out = service.test_rule(db, principal, op, rule_id, body.version, body.since)
    db.commit()
    return out


@router.post(OP + "/rules/{rule_id}/activate", response_model=RuleOut, dependencies=[WRITE])
def activate_rule(code: str, rule_id: int, body: ActivateIn, db: DB, principal: CurrentPrincipal) -> RuleOut:
    """Activate a tested version (the latest by default)."""
    op = get_operation(db, principal, code)
    rule = service.activate_rule(db, principal, op, rule_id, body.version)
    out = service.rule_out(db, rule)
    db.commit()
    return out


@router.post(OP + "/rules/{rule_id}/deactivate", response_model=RuleOut, dependencies=[WRITE])
def deactivate_rule(code: str, rule_id: int, db: DB, principal: CurrentPrincipal) -> RuleOut:
    op = get_operation(db, principal, code)
    rule = service.deactivate_rule(db, principal, op, rule_id)
    out = service.rule_out(db, rule)
    db.commit()
    return out


@router.get(OP + "/rules/{rule_id}/performance", response_model=RulePerformance, dependencies=[READ])
def rule_performance(code: str, rule_id: int, db: DB, principal: CurrentPrincipal) -> RulePerformance:
    """Hits, inspections and seizure rate per week (from the stored scores, which name the versions)."""
    op = get_operation(db, principal, code)
    return service.rule_performance(db, principal, op, rule_id)


# ------------------------------------------------------------------------------------------ selection


@router.post(OP + "/selections", response_model=SelectionOut, status_code=201, dependencies=[WRITE])
def run_selection(code: str, body: SelectionIn, db: DB, principal: CurrentPrincipal) -> JSONResponse:
    """Score the day's consignments and select within capacity (count or share, per office) with exploration."""
    op = get_operation(db, principal, code)
    selection = service.run_selection(db, principal, op, body)
    out = service.selection_out(db, selection).model_dump(mode="json")
    db.commit()
    return JSONResponse(out, status_code=201)


@router.get(OP + "/selections", response_model=list[SelectionOut], dependencies=[READ])
def day_selections(
    code: str, day: dt.date, db: DB, principal: CurrentPrincipal, org_code: str | None = None
) -> list[SelectionOut]:
    """The latest selection of the day of each administration the principal may see."""
    op = get_operation(db, principal, code)
    return [service.selection_out(db, s) for s in service.latest_selections(db, principal, op, day, org_code)]


@router.get(OP + "/selections/{selection_id}", response_model=SelectionOut, dependencies=[READ])
def get_selection(code: str, selection_id: int, db: DB, principal: CurrentPrincipal) -> SelectionOut:
    op = get_operation(db, principal, code)
    return service.selection_out(db, service.get_selection(db, principal, op, selection_id))


# ------------------------------------------------------------------------------------------ proposals


@router.get(OP + "/proposals", response_model=list[ProposalOut], dependencies=[READ])
def list_proposals(
    code: str, db: DB, principal: CurrentPrincipal, status: ProposalStatus | None = None
) -> list[ProposalOut]:
    op = get_operation(db, principal, code)
    return service.list_proposals(db, principal, op, status)


@router.post(OP + "/proposals", response_model=list[ProposalOut], dependencies=[WRITE])
def propose(
    code: str, body: ProposeIn, request: Request, db: DB, principal: CurrentPrincipal
) -> list[ProposalOut]:
    """Propose new or changed rules from rising seizures (route x category), with the evidence."""
    op = get_operation(db, principal, code)
    items = service.propose(db, principal, op, body, today(request))
    out = [service.proposal_out(db, p) for p in items]
    db.commit()
    return out


@router.post(OP + "/proposals/{proposal_id}/accept", response_model=ProposalDecisionOut, dependencies=[WRITE])
def accept_proposal(code: str, proposal_id: int, db: DB, principal: CurrentPrincipal) -> ProposalDecisionOut:
    """Accept: creates a draft rule version to test and activate."""
    op = get_operation(db, principal, code)
    p, rule = service.accept_proposal(db, principal, op, proposal_id)
    out = ProposalDecisionOut(proposal=service.proposal_out(db, p), rule=service.rule_out(db, rule))
    db.commit()
    return out


@router.post(
    OP + "/proposals/{proposal_id}/dismiss", response_model=ProposalDecisionOut, dependencies=[WRITE]
)
def dismiss_proposal(code: str, proposal_id: int, db: DB, principal: CurrentPrincipal) -> ProposalDecisionOut:
    op = get_operation(db, principal, code)
    p = service.dismiss_proposal(db, principal, op, proposal_id)
    out = ProposalDecisionOut(proposal=service.proposal_out(db, p))
    db.commit()
    return out
