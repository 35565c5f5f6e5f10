"""Risk models and scoring: the warm model and rule cache, scoring stored or single consignments, the
models each administration sees (its own and the shared ones), registering, sharing and retraining."""

from __future__ import annotations

import datetime as dt
import hashlib
import math
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from sqlalchemy import ColumnElement, or_, select, true
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.core.errors import Conflict, FieldError, Forbidden, InvalidInput, NotFound
from stopnet.db.models import Operation, Organisation, Role, utcnow
from stopnet.db.models.targeting import (
    Consignment,
    ConsignmentScore,
    TargetingModel,
)
from stopnet.risk.consignments import (
    ConsignmentSchemaError,
    consignment_frame,
    consignment_row,
    pseudonymise,
)
from stopnet.risk.rules import CompiledRules, Rule, compile_rules

from ..schemas import (
    Contribution,
    ModelOut,
    RetrainOut,
    RuleHitOut,
    ScoreOut,
    ScoreRunOut,
)
from .access import Scope, _org_codes, access, target_org
from .consignments import _load_frame, _schema_error
from .constants import ALERT_THRESHOLD, CONSIGNMENT_FIELDS, EXPLAIN_TOP_K, RULE_SCHEMA
from .inspections import _consignment
from .pseudonyms import org_key
from .rules import active_rules


class ModelCache:
    """Loaded models by file hash, and compiled rule sets, kept warm in the process (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._models: dict[str, Any] = {}
        self._rules: dict[tuple[tuple[str, int, float, str], ...], CompiledRules] = {}

    def model(self, row: TargetingModel) -> Any:
        scorer = self._models.get(row.sha256)
        if scorer is not None:
            return scorer
        with self._lock:
            scorer = self._models.get(row.sha256)
            if scorer is None:
                from stopnet.risk.model import RiskModel
                from stopnet.risk.pipeline import as_scorer

                path = Path(row.path)
                if not path.exists():
                    raise Conflict(f"the file of model {row.version} is missing: {path}")
                data = path.read_bytes()
                if hashlib.sha256(data).hexdigest() != row.sha256:
                    raise Conflict(f"the file of model {row.version} changed on disk (hash differs): {path}")
                scorer = as_scorer(RiskModel.from_bytes(data), num_threads=1)
                if len(self._models) >= 8:
                    self._models.clear()
                self._models[row.sha256] = scorer
            return scorer

    def rules(self, rules: Sequence[Rule]) -> CompiledRules:
        key = tuple((r.id, r.version, r.weight, r.expression) for r in rules)
        compiled = self._rules.get(key)
        if compiled is None:
            compiled = compile_rules(rules, RULE_SCHEMA, {})
            with self._lock:
                if len(self._rules) >= 256:
                    self._rules.clear()
                self._rules[key] = compiled
        return compiled

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._rules.clear()


MODEL_CACHE = ModelCache()


def active_model(session: Session, op_id: int, org_id: int) -> TargetingModel | None:
    """The model that scores ``org_id``'s consignments: its own active model, else the operation's active
    pooled model where the coordinator has shared it with the members."""
    rows = session.scalars(
        select(TargetingModel).where(
            TargetingModel.operation_id == op_id,
            TargetingModel.active.is_(True),
            or_(
                TargetingModel.org_id == org_id,
                TargetingModel.org_id.is_(None) & TargetingModel.shared.is_(True),
            ),
        )
    ).all()
    return next((m for m in rows if m.org_id == org_id), rows[0] if rows else None)


@dataclass
class ScoredBatch:
    scores: np.ndarray  # NaN when no model
    hits: list[list[dict[str, Any]]]
    rule_score: np.ndarray
    explanations: list[list[dict[str, Any]]]
    model_version: str | None


def score_frame(
    frame: pl.DataFrame,
    model: Any | None,
    compiled: CompiledRules,
    explain_top_k: int = EXPLAIN_TOP_K,
    rows: Sequence[Mapping[str, Any]] | None = None,
) -> ScoredBatch:
    """Model probabilities, rule hits (naming versions) and top contributions of ``frame``'s rows.
    ``rows``, the same consignments as dicts of schema values, let the model's features be built in
    plain Python (a single API consignment: microseconds instead of milliseconds; the same values)."""
    from stopnet.risk.pipeline import prepare_consignments, prepare_record

    n = frame.height
    scores = np.full(n, np.nan)
    explanations: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    if model is not None and n:
        if rows is not None:
            x = model.features_rows([prepare_record(r) for r in rows])
        else:
            x = model.features(prepare_consignments(frame))
        scores = np.asarray(model.predict_matrix(x), dtype=np.float64)
        if explain_top_k > 0:
            explanations = [
                [{"feature": f, "value": v, "contribution": round(c, 4)} for f, v, c in row]
                for row in model.explain_matrix(x, explain_top_k)
            ]
    hits: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    rule_score = np.zeros(n)
    if compiled.rule_ids and n:
        rh = compiled.evaluate(frame)
        rule_score = rh.weighted()
        for i, j in zip(*np.nonzero(rh.matrix), strict=True):
            hits[int(i)].append(
                {"rule": rh.rule_ids[j], "version": int(rh.versions[j]), "weight": float(rh.weights[j])}
            )
    return ScoredBatch(scores, hits, rule_score, explanations, None if model is None else str(model.version))


def _score_and_store(
    session: Session, op: Operation, org_id: int, where: Sequence[ColumnElement[bool]]
) -> tuple[list[int], list[int], ScoredBatch, list[Rule], pl.DataFrame]:
    frame, pks = _load_frame(session, where)
    model_row = active_model(session, op.id, org_id)
    model = MODEL_CACHE.model(model_row) if model_row else None
    rules = active_rules(session, op.id, org_id)
    batch = score_frame(frame.drop("inspected", "seized"), model, MODEL_CACHE.rules(rules))
    now = utcnow()
    score_ids: list[int] = []
    for i, pk in enumerate(pks):
        s = ConsignmentScore(
            consignment_pk=pk,
            model_id=model_row.id if model_row else None,
            model_version=batch.model_version,
            score=None if math.isnan(batch.scores[i]) else float(batch.scores[i]),
            rule_hits=batch.hits[i],
            rule_score=float(batch.rule_score[i]),
            explanation=batch.explanations[i],
            scored_at=now,
        )
        session.add(s)
        session.flush()
        score_ids.append(s.id)
    return pks, score_ids, batch, rules, frame


def score_stored(
    session: Session,
    principal: Principal,
    op: Operation,
    org_code: str | None = None,
    day: dt.date | None = None,
) -> ScoreRunOut:
    """Score the administration's stored consignments (of one arrival day, or all) with the active model and
    rules; every score names the model version and the rule versions that hit."""
    scope = access(session, principal, op, write=True)
    org = target_org(session, scope, org_code)
    where = [Consignment.operation_id == op.id, Consignment.org_id == org.id]
    if day is not None:
        where.append(Consignment.arrival_date == day)
    pks, _, batch, rules, _ = _score_and_store(session, op, org.id, where)
    record(
        session,
        principal,
        "targeting.score",
        "operation",
        op.code,
        {"org": org.code, "rows": len(pks), "model": batch.model_version},
    )
    session.flush()
    return ScoreRunOut(
        scored=len(pks), model_version=batch.model_version, rules=[f"{r.id}@v{r.version}" for r in rules]
    )


def stored_score(
    session: Session, principal: Principal, op: Operation, consignment_id: str, org_code: str | None = None
) -> tuple[Consignment, ConsignmentScore | None]:
    c = _consignment(session, principal, op, consignment_id, org_code, write=False)
    s = session.scalar(
        select(ConsignmentScore)
        .where(ConsignmentScore.consignment_pk == c.id)
        .order_by(ConsignmentScore.id.desc())
        .limit(1)
    )
    return c, s


def score_one(
    session: Session,
    principal: Principal,
    op: Operation,
    consignment: Mapping[str, Any],
    key_master: bytes,
    org_code: str | None = None,
    explain_top_k: int = EXPLAIN_TOP_K,
) -> ScoreOut:
    """Score one consignment (not stored) with the warm model and the administration's active rules."""
    scope = access(session, principal, op)
    org = target_org(session, scope, org_code)
    record_in = dict(consignment)
    key: bytes | None = None
    for party in ("sender", "consignee"):
        name = record_in.pop(f"{party}_name", None)
        if name is not None:
            if f"{party}_id" in record_in:
                raise InvalidInput(
                    [FieldError(f"{party}_name", f"give either {party}_name or {party}_id, not both")]
                )
            key = key or org_key(key_master, org.code)
            record_in[f"{party}_id"] = pseudonymise(str(name), key)
    try:
        row = consignment_row(record_in)
    except ConsignmentSchemaError as e:
        raise _schema_error(e, "consignment") from e
    row = {k: row[k] for k in CONSIGNMENT_FIELDS}
    frame = consignment_frame(row)
    model_row = active_model(session, op.id, org.id)
    model = MODEL_CACHE.model(model_row) if model_row else None
    compiled = MODEL_CACHE.rules(active_rules(session, op.id, org.id))
    batch = score_frame(frame, model, compiled, explain_top_k, rows=[row])
    score = None if math.isnan(batch.scores[0]) else float(batch.scores[0])
    hits = batch.hits[0]
    return ScoreOut(
        consignment_id=str(frame.get_column("consignment_id")[0]),
        score=score,
        lane="AMBER" if (hits or (score is not None and score >= ALERT_THRESHOLD)) else "GREEN",
        rule_hits=[RuleHitOut(**h) for h in hits],
        rule_score=float(batch.rule_score[0]),
        explanation=[Contribution(**e) for e in batch.explanations[0]],
        model_version=batch.model_version,
    )


def model_clause(scope: Scope) -> ColumnElement[bool]:
    """The models ``scope`` may see: every model for the coordinator; its administration's own models and
    the shared ones for a member (a model's metrics tell about the consignments it was trained on)."""
    if scope.org_ids is None:
        return true()
    return or_(TargetingModel.org_id.in_(scope.org_ids), TargetingModel.shared.is_(True))


def _model_out(m: TargetingModel, org_codes: Mapping[int, str], scope: Scope) -> ModelOut:
    return ModelOut(
        version=m.version,
        may_share=may_manage_model(scope, m.org_id),
        org_code=org_codes.get(m.org_id) if m.org_id is not None else None,
        shared=m.shared,
        active=m.active,
        sha256=m.sha256,
        metrics=m.metrics,
        registered_by=m.registered_by_label,
        created_at=m.created_at,
    )


def list_models(session: Session, principal: Principal, op: Operation) -> list[ModelOut]:
    """The operation's models that ``principal`` may see, newest first."""
    scope = access(session, principal, op)
    rows = list(
        session.scalars(
            select(TargetingModel)
            .where(TargetingModel.operation_id == op.id, model_clause(scope))
            .order_by(TargetingModel.id.desc())
        )
    )
    codes = _org_codes(session, (m.org_id for m in rows if m.org_id is not None))
    return [_model_out(m, codes, scope) for m in rows]


def scoring_model(session: Session, principal: Principal, op: Operation) -> ModelOut | None:
    """The model that scores the principal's consignments (the coordinator: the pooled active one)."""
    scope = access(session, principal, op)
    if scope.org_ids is None:
        row = session.scalar(
            select(TargetingModel).where(
                TargetingModel.operation_id == op.id,
                TargetingModel.active.is_(True),
                TargetingModel.org_id.is_(None),
            )
        )
    else:
        row = active_model(session, op.id, scope.principal.org_id)
    if row is None:
        return None
    return _model_out(row, _org_codes(session, [row.org_id] if row.org_id is not None else []), scope)


def may_manage_model(scope: Scope, org_id: int | None) -> bool:
    """The coordinator manages every model; an administration's contact point manages its own."""
    if scope.org_ids is None:
        return True
    return org_id is not None and org_id in scope.org_ids and scope.principal.role is Role.CONTACT_POINT


def _require_model_manager(scope: Scope, org_id: int | None) -> None:
    if not may_manage_model(scope, org_id):
        raise Forbidden(
            "the operation's coordinator, or the administration's contact point for its own models, "
            "trains, registers and shares risk models"
        )


def register_model(
    session: Session,
    principal: Principal,
    op: Operation,
    path: Path,
    metrics: Mapping[str, Any] | None = None,
    org: Organisation | None = None,
) -> TargetingModel:
    """Register a saved model file as the active model of ``org`` (None: the operation's pooled model)."""
    scope = access(session, principal, op, write=True)
    _require_model_manager(scope, org.id if org else None)
    from stopnet.risk.model import ModelFormatError, RiskModel

    data = path.read_bytes()
    try:
        model = RiskModel.from_bytes(data)
    except (ModelFormatError, ValueError, KeyError) as e:
        raise InvalidInput([FieldError("model", f"not a stopnet risk model file: {e}")]) from e
    if session.scalar(
        select(TargetingModel.id).where(
            TargetingModel.operation_id == op.id, TargetingModel.version == model.version
        )
    ):
        raise Conflict(f"model {model.version} is already registered for {op.code}")
    owner = TargetingModel.org_id.is_(None) if org is None else TargetingModel.org_id == org.id
    for m in session.scalars(
        select(TargetingModel).where(
            TargetingModel.operation_id == op.id, TargetingModel.active.is_(True), owner
        )
    ):
        m.active = False
    row = TargetingModel(
        operation_id=op.id,
        org_id=org.id if org else None,
        shared=False,
        version=model.version,
        path=str(path.resolve()),
        sha256=hashlib.sha256(data).hexdigest(),
        active=True,
        metrics=dict(metrics or {}),
        registered_by_label=principal.label,
    )
    session.add(row)
    record(
        session,
        principal,
        "targeting.model.register",
        "operation",
        op.code,
        {"version": model.version, "org": org.code if org else None},
    )
    session.flush()
    return row


def share_model(
    session: Session, principal: Principal, op: Operation, version: str, shared: bool
) -> ModelOut:
    """Show a model and its metrics to every member of the operation, or stop showing it. A shared pooled
    model also scores the consignments of members that have no model of their own."""
    scope = access(session, principal, op, write=True)
    row = session.scalar(
        select(TargetingModel).where(
            TargetingModel.operation_id == op.id, TargetingModel.version == version, model_clause(scope)
        )
    )
    if row is None:
        raise NotFound(f"no risk model {version!r} in {op.code}")
    _require_model_manager(scope, row.org_id)
    if row.shared != shared:
        row.shared = shared
        record(
            session,
            principal,
            "targeting.model.share" if shared else "targeting.model.unshare",
            "operation",
            op.code,
            {"version": version},
        )
        session.flush()
    return _model_out(row, _org_codes(session, [row.org_id] if row.org_id is not None else []), scope)


def retrain(
    session: Session,
    principal: Principal,
    op: Operation,
    out: Path,
    *,
    validation_fraction: float = 0.2,
    seed: int = 0,
    max_rounds: int = 120,
    org_code: str | None = None,
) -> RetrainOut:
    """Retrain the consignment model of one administration (``org_code``; a member: its own) from its stored
    consignments with their inspection results, or (the coordinator naming none) the operation's pooled
    model from every administration's; validate on the latest dates (time-based), refit on all, save to
    ``out`` and register it as that administration's (or the pooled) active model."""
    from stopnet.risk.metrics import evaluate_scores
    from stopnet.risk.pipeline import LABEL_COL, as_scorer, prepare_consignments, train_consignment_model

    scope = access(session, principal, op, write=True)
    org = (
        None
        if scope.is_coordinator and not (org_code or "").strip()
        else target_org(session, scope, org_code)
    )
    _require_model_manager(scope, org.id if org else None)
    where = [Consignment.operation_id == op.id]
    if org is not None:
        where.append(Consignment.org_id == org.id)
    frame, _ = _load_frame(session, where)
    labelled = int(frame.get_column("inspected").sum()) if frame.height else 0
    if labelled < 20:
        raise InvalidInput(
            [FieldError("inspections", f"{labelled} inspection result(s) recorded: at least 20 are needed")]
        )
    dates = frame.get_column("declared_at").cast(pl.Date)
    days = dates.unique().sort()
    cut = days[min(len(days) - 1, max(1, int(len(days) * (1 - validation_fraction))))]
    train_part = frame.filter(dates < cut)
    valid_part = frame.filter((dates >= cut) & pl.col("inspected"))
    try:
        probe = train_consignment_model(train_part, seed=seed, max_rounds=max_rounds)
    except ValueError as e:
        raise InvalidInput([FieldError("inspections", f"cannot train on the dates before {cut}: {e}")]) from e
    validation: dict[str, Any] = {"rows": valid_part.height}
    if valid_part.height:
        prepared = prepare_consignments(valid_part)
        y = prepared.get_column(LABEL_COL).to_numpy()
        s = as_scorer(probe).predict_proba(prepared)
        validation = evaluate_scores(y, s, (5, 10, 20))
        # how many seizures the figures rest on: precision over a handful of them is noise
        validation["seizures"] = int(np.nansum(y))
        validation["model_version"] = probe.version
    model = train_consignment_model(frame, seed=seed, max_rounds=max_rounds)
    out.parent.mkdir(parents=True, exist_ok=True)
    model.save(out)
    metrics = {
        "validation": validation,
        "train_until": str(cut - dt.timedelta(days=1)),
        "validation_from": str(cut),
        "rows": frame.height,
        "labelled": labelled,
        "training": {
            k: v
            for k, v in model.training.items()
            if k in ("best_iteration", "holdout_auc", "rows", "date_range")
        },
    }
    row = register_model(session, principal, op, out, metrics, org)
    return RetrainOut(
        model_version=row.version,
        org_code=org.code if org else None,
        path=row.path,
        rows=frame.height,
        labelled=labelled,
        train_until=cut - dt.timedelta(days=1),
        validation_from=cut,
        validation=validation,
    )
