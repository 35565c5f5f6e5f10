"""Synthetic operations calibrated to the published WCO STOP III and STOP IV figures, and the demo seed.

* :data:`SPECS` — the published (and documented assumed) figures, by operation code;
* :func:`simulate_operation` — pure: participating administrations and every case, with totals equal to
  the spec's exactly; seeded and deterministic;
* :func:`seed_demo` / :func:`seed_operation` — load the organisations, operations, users and simulated
  cases into a database through the reporting service (validation, versions and audit apply).

See ``docs/simulation.md``.
"""

from __future__ import annotations

from .operation import SimulatedCase, SimulatedOperation, apportion, simulate_operation
from .seed import DemoInfo, DemoUser, OperationInfo, seed_demo, seed_operation
from .specs import GROUPS, SPECS, STOP_III, STOP_IV, GroupTotals, OperationSpec, PartnerSpec, PhaseSpec

__all__ = [
    "GROUPS",
    "SPECS",
    "STOP_III",
    "STOP_IV",
    "DemoInfo",
    "DemoUser",
    "GroupTotals",
    "OperationInfo",
    "OperationSpec",
    "PartnerSpec",
    "PhaseSpec",
    "SimulatedCase",
    "SimulatedOperation",
    "apportion",
    "seed_demo",
    "seed_operation",
    "simulate_operation",
]
