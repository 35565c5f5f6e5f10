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


def _scratch_url(database_url: str, name: str) -> str:
    """A new, empty database of the test backend (PostgreSQL: dropped first if left over)."""
    if database_url.startswith("sqlite"):
        import tempfile
        from pathlib import Path

        return f"sqlite:///{Path(tempfile.mkdtemp()) / f'{name}.db'}"
    from sqlalchemy import text

    admin = create_engine(database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        c.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return database_url.rsplit("/", 1)[0] + "/" + name


def _drop_scratch(database_url: str, name: str) -> None:
    if database_url.startswith("sqlite"):
        return
    from sqlalchemy import text

    admin = create_engine(database_url.rsplit("/", 1)[0] + "/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
    admin.dispose()


def test_every_revision_steps_down_and_up_one_at_a_time(database_url):
    """Each migration's downgrade undoes exactly its upgrade: going up the chain one revision at a time,
    every revision is stepped down to its parent and up again, and the same tables, columns, indexes
    and constraints come back; then the chain is walked down to base one revision at a time."""
    from alembic.script import ScriptDirectory

    from stopnet.db.migrate import alembic_config

    url = _scratch_url(database_url, "stopnet_migrations_steps")
    script = ScriptDirectory.from_config(alembic_config(url))
    chain = [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]
    assert len(chain) == len(set(chain)) >= 7 and script.get_heads() == [chain[-1]]
    eng = create_engine(url)

    def current() -> str | None:
        with eng.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()

    def shape() -> dict[str, object]:
        insp = inspect(eng)
        out: dict[str, object] = {}
        for t in sorted(set(insp.get_table_names()) - {"alembic_version"}):
            out[t] = (
                sorted((c["name"], str(c["type"]), c["nullable"]) for c in insp.get_columns(t)),
                sorted((i["name"], tuple(i["column_names"]), bool(i["unique"])) for i in insp.get_indexes(t)),
                sorted(
                    (fk["referred_table"], tuple(fk["constrained_columns"]))
                    for fk in insp.get_foreign_keys(t)
                ),
                sorted(tuple(u["column_names"]) for u in insp.get_unique_constraints(t)),
            )
        eng.dispose()  # the next inspection sees the schema the next migration leaves
        return out

    try:
        shapes: dict[str | None, dict[str, object]] = {None: shape()}
        previous: str | None = None
        for rev in chain:
            upgrade(url, rev)
            assert current() == rev
            shapes[rev] = shape()
            assert shapes[rev] != shapes[previous], f"{rev} changes nothing"
            downgrade(url, "-1")
            assert current() == previous, f"{rev} did not step down to {previous}"
            assert shape() == shapes[previous], f"downgrading {rev} does not restore {previous}"
            upgrade(url, "+1")
            assert current() == rev and shape() == shapes[rev], f"{rev} differs when applied again"
            previous = rev
        for rev, parent in zip(reversed(chain), [*reversed(chain[:-1]), None], strict=True):
            assert current() == rev
            downgrade(url, "-1")
            assert current() == parent and shape() == shapes[parent], f"stepping down from {rev}"
        assert set(inspect(eng).get_table_names()) <= {"alembic_version"}
    finally:
        eng.dispose()
        _drop_scratch(database_url, "stopnet_migrations_steps")
