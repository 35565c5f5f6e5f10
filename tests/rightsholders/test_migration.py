"""The rights-holder tables are built by migration 0004 and agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from stopnet.db.models import Base

RH_TABLES = {
    "rh_brand",
    "rh_trademark",
    "rh_brand_alias",
    "rh_representative",
    "rh_brand_contact",
    "rh_guide",
    "rh_guide_version",
    "rh_operation_setting",
    "rh_verification_request",
    "rh_attachment",
}


def _tables(diff_entry):  # type: ignore[no-untyped-def]
    """Table names an autogenerate diff entry is about (entries nest for column changes)."""
    if isinstance(diff_entry, list):
        return {n for e in diff_entry for n in _tables(e)}
    out = set()
    for part in diff_entry[1:]:
        name = getattr(part, "name", None) if not isinstance(part, str) else None
        table = getattr(part, "table", None)
        if table is not None:
            out.add(table.name)
        elif name is not None and hasattr(part, "columns"):
            out.add(name)
        elif isinstance(part, str) and part.startswith("rh_"):
            out.add(part)
    return out


def test_rights_holder_tables_match_the_models(engine):
    assert set(inspect(engine).get_table_names()) >= RH_TABLES
    assert {t for t in Base.metadata.tables if t.startswith("rh_")} == RH_TABLES
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    ours = [d for d in diff if _tables(d) & RH_TABLES]
    assert ours == [], ours
