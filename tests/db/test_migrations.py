"""Migrations build every schema: they upgrade and downgrade cleanly and agree with the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from stopnet.db.migrate import downgrade, upgrade
from stopnet.db.models import Base


def test_models_and_migrations_agree(engine):
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(ctx, Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_upgrade_downgrade_round_trip(database_url, engine):
    """Down to base and back up to head on a scratch copy of the test database's backend."""
    if engine.dialect.name == "sqlite":
        import tempfile
        from pathlib import Path

        url = f"sqlite:///{Path(tempfile.mkdtemp()) / 'rt.db'}"
    else:
        from sqlalchemy import text

        admin = create_engine(database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text("DROP DATABASE IF EXISTS stopnet_migrations_rt WITH (FORCE)"))
            c.execute(text("CREATE DATABASE stopnet_migrations_rt"))
        url = database_url.rsplit("/", 1)[0] + "/stopnet_migrations_rt"
    upgrade(url)
    eng = create_engine(url)
    assert {"case_report", "seizure", "audit_entry"} <= set(inspect(eng).get_table_names())
    downgrade(url, "base")
    assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    upgrade(url)
    assert "seizure" in inspect(eng).get_table_names()
    eng.dispose()
    if engine.dialect.name != "sqlite":
        with admin.connect() as c:
            c.execute(text("DROP DATABASE IF EXISTS stopnet_migrations_rt WITH (FORCE)"))
        admin.dispose()
