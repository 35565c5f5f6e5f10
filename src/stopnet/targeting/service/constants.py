"""Constants of risk targeting: the fields a rule may use, the alert threshold, how many contributions
explain a score, the method proposals name."""

from __future__ import annotations

import polars as pl

from stopnet.db.models import Role
from stopnet.risk.consignments import (
    CONSIGNMENT_LABEL_SCHEMA,
    CONSIGNMENT_SCHEMA,
)

#: Fields a rule may use: the consignment schema and the inspection labels.
RULE_SCHEMA: dict[str, pl.DataType] = {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}
CONSIGNMENT_FIELDS: tuple[str, ...] = tuple(CONSIGNMENT_SCHEMA)
ALERT_THRESHOLD = 0.5
EXPLAIN_TOP_K = 3
PROPOSAL_TEST = (
    "seizure reports: one-sided exact conditional binomial test of two Poisson rates (exposure = all "
    "seizures visible in each window); inspections: one-sided Fisher exact test of the seizure rate "
    "(recent against baseline); Benjamini-Hochberg adjusted over every route x category tested"
)
_STAFF_ROLES = (Role.OFFICER, Role.CONTACT_POINT)
