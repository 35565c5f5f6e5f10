"""Documentation that must not drift from the code."""

from __future__ import annotations

from pathlib import Path

from stopnet.config import Settings
from stopnet.reporting.importer import COLUMNS, REQUIRED

DOCS = Path(__file__).parent.parent / "docs"


def test_every_setting_is_documented():
    text = (DOCS / "settings.md").read_text()
    for name, field in Settings.model_fields.items():
        assert f"`STOPNET_{name.upper()}`" in text, name
        assert field.description, f"{name} has no description"
    documented = {line.split("`")[1] for line in text.splitlines() if line.startswith("| `STOPNET_")}
    assert documented == {f"STOPNET_{n.upper()}" for n in Settings.model_fields}


def test_import_template_documents_every_column():
    text = (DOCS / "import-template.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| `")]
    documented = [line.split("`")[1] for line in rows]
    assert documented == list(COLUMNS)
    for line in rows:
        name = line.split("`")[1]
        assert ("| yes |" in line) == (name in REQUIRED), name


def test_readme_names_the_two_commands():
    readme = (DOCS.parent / "README.md").read_text()
    assert "make demo" in readme and "make test" in readme
    ci = (DOCS.parent / ".ci" / "run").read_text()
    assert "make test" in ci
