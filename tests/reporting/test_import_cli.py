"""``stopnet import seizures``: imports a file as the administration named, shows its progress on standard
error (plain lines when not on a terminal), and says every problem of a bad file without importing it."""

from __future__ import annotations

import json

from sqlalchemy import func, select
from typer.testing import CliRunner

from stopnet.config import get_settings
from stopnet.db.models import Case, Seizure
from stopnet.reporting import importer

from .test_import import row, rows_csv


def _run(monkeypatch, database_url: str, *args: str):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("STOPNET_DATABASE_URL", database_url)
    get_settings.cache_clear()
    from stopnet.cli import app

    try:
        return CliRunner().invoke(app, ["import", "seizures", *args])
    finally:
        get_settings.cache_clear()


def test_import_shows_progress_and_imports(monkeypatch, database_url, world, db, tmp_path):
    monkeypatch.setattr(importer, "PROGRESS_ROWS", 100)
    f = tmp_path / "seizures.csv"
    f.write_bytes(rows_csv([row(f"CLI-{i}") for i in range(300)]))
    r = _run(monkeypatch, database_url, str(f), "--operation", "TEST-OP", "--as", "FR-CUS")
    assert r.exit_code == 0, r.output
    assert "imported 300 rows: 300 cases, 300 seizures created" in r.stdout
    lines = [line for line in r.stderr.splitlines() if line.startswith("import: ")]
    assert lines and lines[-1].startswith("import: 300 / 300 rows (100%)"), r.stderr
    # a row check on the way tells where it is (the row path: every PROGRESS_ROWS rows)
    assert all(" / 300 rows (" in line and "s left" in line for line in lines)
    if db.get_bind().dialect.name == "sqlite":  # (PostgreSQL checks a clean file column by column)
        assert [line.split(" / ")[0] for line in lines] == ["import: 100", "import: 200", "import: 300"]
    assert db.scalar(select(func.count()).select_from(Case)) == 300
    assert db.scalar(select(func.count()).select_from(Seizure)) == 300
    # again: nothing new
    again = _run(monkeypatch, database_url, str(f), "--operation", "TEST-OP", "--as", "FR-CUS")
    assert again.exit_code == 0 and "was already imported" in again.stdout


def test_bad_file_lists_every_problem_and_imports_nothing(monkeypatch, database_url, world, db, tmp_path):
    f = tmp_path / "bad.csv"
    f.write_bytes(rows_csv([row("OK-1"), row("BAD-1", commodity_code="NOPE", pieces="", weight_kg="")]))
    r = _run(monkeypatch, database_url, str(f), "--operation", "TEST-OP", "--as", "FR-CUS", "--json")
    assert r.exit_code == 2
    errors = json.loads(r.stdout)["errors"]
    assert {(e["row"], e["field"]) for e in errors} >= {(3, "commodity_code")}
    assert len(errors) >= 2 and db.scalar(select(func.count()).select_from(Case)) == 0
