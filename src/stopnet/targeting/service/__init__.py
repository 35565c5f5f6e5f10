"""Risk targeting on stored data: consignments, versioned risk profiles, scoring, the day's selection,
inspection results, retraining and rule proposals.

The pure engine (``stopnet.risk``) does the statistics; this package stores, authorises and audits.
Every function takes the acting :class:`Principal` and checks it:

* customs officers and national contact points of an administration taking part in the operation as a
  member see and change their administration's consignments, rules and selections only;
* the operation's coordinator (and platform administrators) see every administration's; they act for
  one administration by naming it (``org_code``);
* rights holders, partner agencies and regional analysts see nothing of it (403).

Services flush, never commit.
"""

from __future__ import annotations

from .access import Scope, access, member_orgs, participation_of, target_org
from .consignments import ingest_frame, ingest_records, list_consignments
from .constants import ALERT_THRESHOLD, CONSIGNMENT_FIELDS, EXPLAIN_TOP_K, PROPOSAL_TEST, RULE_SCHEMA
from .inspections import inspection_out, record_inspection
from .performance import performance
from .proposals import (
    accept_proposal,
    active_rule_versions,
    category_of,
    dismiss_proposal,
    list_proposals,
    proposal_out,
    propose,
)
from .pseudonyms import org_key
from .rules import (
    activate_rule,
    active_rules,
    check_expression,
    create_rule,
    deactivate_rule,
    edit_rule,
    get_rule,
    list_rules,
    rule_out,
    rule_performance,
    rule_versions,
    test_rule,
)
from .scoring import (
    MODEL_CACHE,
    ModelCache,
    ScoredBatch,
    active_model,
    list_models,
    may_manage_model,
    model_clause,
    register_model,
    retrain,
    score_frame,
    score_one,
    score_stored,
    scoring_model,
    share_model,
    stored_score,
)
from .selection import get_selection, latest_selections, run_selection, selection_out

__all__ = [
    "ALERT_THRESHOLD",
    "CONSIGNMENT_FIELDS",
    "EXPLAIN_TOP_K",
    "MODEL_CACHE",
    "PROPOSAL_TEST",
    "RULE_SCHEMA",
    "ModelCache",
    "Scope",
    "ScoredBatch",
    "accept_proposal",
    "access",
    "activate_rule",
    "active_model",
    "active_rule_versions",
    "active_rules",
    "category_of",
    "check_expression",
    "create_rule",
    "deactivate_rule",
    "dismiss_proposal",
    "edit_rule",
    "get_rule",
    "get_selection",
    "ingest_frame",
    "ingest_records",
    "inspection_out",
    "latest_selections",
    "list_consignments",
    "list_models",
    "list_proposals",
    "list_rules",
    "may_manage_model",
    "member_orgs",
    "model_clause",
    "org_key",
    "participation_of",
    "performance",
    "proposal_out",
    "propose",
    "record_inspection",
    "register_model",
    "retrain",
    "rule_out",
    "rule_performance",
    "rule_versions",
    "run_selection",
    "score_frame",
    "score_one",
    "score_stored",
    "scoring_model",
    "selection_out",
    "share_model",
    "stored_score",
    "target_org",
    "test_rule",
]
