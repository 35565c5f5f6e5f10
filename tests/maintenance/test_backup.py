"""Backup and restore: a backup restored into an empty database gives back every row of every table and
every stored file, bit for bit; the audit trail still verifies; an altered backup, a non-empty database
or another schema revision is refused with nothing written.

SQLite pass: SQLite → SQLite. PostgreSQL pass: PostgreSQL → PostgreSQL, and PostgreSQL → SQLite →
PostgreSQL (the format does not depend on the database).
"""

from __future__ import annotations

import hashlib
import io
import json
import secrets
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from stopnet.audit.service import verify
from stopnet.core.keys import AuditKeys
from stopnet.db.engine import make_engine, make_sessionmaker
from stopnet.db.migrate import downgrade, upgrade
from stopnet.db.models import AuditEntry, Base, Organisation, OrgKind
from stopnet.maintenance.service import backup as bk
from tests.conftest import case_payload
from tests.rightsholders.conftest import GUIDE, approve, register_brand

PNG = (
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x02\x00\x00\x00\x90wS\xde"
    b"\x00\x00\x00\x0cIDATx\x9cc\xf8\xcf\xc0\x00\x00\x03\x01\x01\x00\xc9\xfe\x92\xef"
    b"\x00\x00\x00\x00IEND\xaeB`\x82"
)
PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


# ------------------------------------------------------------------------------------------- fixtures


@pytest.fixture
def populated(client, world, settings) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    """A world with cases (personal data, seizures, versions), an alert with a stored attachment, a
    rights holder's guide with a stored file, and the audit entries all of that wrote."""
    officer = world["fr_officer"]
    for i in range(3):
        r = client.post(
            "/api/v1/operations/TEST-OP/cases", json=case_payload(f"FR-{i:04d}"), headers=officer.headers
        )
        assert r.status_code == 201, r.text
    r = client.post(
        "/api/v1/operations/TEST-OP/attachments",
        files={"file": ("pens.png", PNG, "image/png")},
        headers=world["coordinator"].headers,
    )
    assert r.status_code == 201, r.text
    holder = world["rights_holder"]
    brand = approve(client, world, register_brand(client, holder)["id"])
    r = client.post("/api/v1/rights/guides", json={**GUIDE, "brand_id": brand["id"]}, headers=holder.headers)
    assert r.status_code == 201, r.text
    r = client.post(
        f"/api/v1/rights/guides/{r.json()['id']}/attachments",
        files={"file": ("leaflet.pdf", PDF, "application/pdf")},
        headers=holder.headers,
    )
    assert r.status_code == 201, r.text
    files = _files(settings.data_dir)
    assert {p.split("/")[0] for p in files} == {"attachments", "rightsholders"}
    return {"files": files}


@pytest.fixture
def empty_database(database_url: str, tmp_path: Path) -> Iterator[Callable[..., str]]:
    """Makes new databases of a backend, migrated to a revision (default head); dropped afterwards."""
    made: list[str] = []

    def make(backend: str | None = None, revision: str = "head") -> str:
        backend = backend or ("sqlite" if database_url.startswith("sqlite") else "postgresql")
        if backend == "sqlite":
            url = f"sqlite:///{tmp_path / f'restore-{secrets.token_hex(3)}.db'}"
        else:
            name = f"stopnet_restore_{secrets.token_hex(4)}"
            admin = create_engine(_pg_admin(database_url), isolation_level="AUTOCOMMIT")
            with admin.connect() as c:
                c.execute(text(f'CREATE DATABASE "{name}"'))
            admin.dispose()
            url = database_url.rsplit("/", 1)[0] + "/" + name
            made.append(name)
        upgrade(url, revision)
        return url

    yield make
    if made:
        admin = create_engine(_pg_admin(database_url), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            for name in made:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _pg_admin(database_url: str) -> str:
    return database_url.rsplit("/", 1)[0] + "/postgres"


# ------------------------------------------------------------------------------------------- helpers


def _files(data_dir: Path) -> dict[str, str]:
    return {rel: hashlib.sha256(path.read_bytes()).hexdigest() for rel, path in bk._blob_files(data_dir)}


def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            present = set(sa.inspect(c).get_table_names())
            return {
                t.name: [dict(r) for r in c.execute(sa.select(t).order_by(*bk._order(t))).mappings()]
                for t in Base.metadata.sorted_tables
                if t.name in present
            }
    finally:
        engine.dispose()


def _audit_ok(url: str) -> int:
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s:
            keys = AuditKeys.from_secret(b"test-secret-key")  # the test installation's (tests/conftest.py)
            assert verify(s, keys) == [], "the restored audit trail does not verify"
            return s.scalar(sa.select(sa.func.count()).select_from(AuditEntry)) or 0
    finally:
        engine.dispose()


def _restore_and_compare(source_url: str, backup_file: Path, target_url: str, data_dir: Path) -> None:
    summary = bk.restore(target_url, data_dir, backup_file)
    assert sum(summary.tables.values()) > 0
    source, target = _rows(source_url), _rows(target_url)
    assert source.keys() == target.keys()
    for name in source:
        assert target[name] == source[name], f"table {name} differs after restore"
    assert _audit_ok(target_url) > 0


def _tamper(backup_file: Path, out: Path, member_prefix: str) -> None:
    """A copy of the backup with one byte changed in the first member named ``member_prefix...``."""
    with tarfile.open(backup_file) as src, tarfile.open(out, "w") as dst:
        done = False
        for info in src.getmembers():
            data = src.extractfile(info).read()  # type: ignore[union-attr]
            if not done and info.name.startswith(member_prefix) and data:
                data = data[:-2] + bytes([data[-2] ^ 1]) + data[-1:]
                done = True
            info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
        assert done


# ------------------------------------------------------------------------------------------- tests


def test_backup_restores_every_row_and_file(
    populated, settings, database_url, empty_database, tmp_path
) -> None:
    out = bk.backup(database_url, settings.data_dir, tmp_path / "backups")  # a directory: named file
    assert out.path.parent == tmp_path / "backups" and out.path.suffix == ".tar"
    assert out.tables["case_report"] == 3 and out.files == 2
    with tarfile.open(out.path) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    tables = [m["table"] for m in manifest["members"] if "table" in m]
    order = [t.name for t in Base.metadata.sorted_tables]
    assert tables == sorted(tables, key=order.index), "tables not in foreign-key order"
    assert manifest["alembic_revision"] and manifest["source"] in ("sqlite", "postgresql")

    target, restored_dir = empty_database(), tmp_path / "restored"
    _restore_and_compare(database_url, out.path, target, restored_dir)
    assert _files(restored_dir) == populated["files"]

    # new rows after a restore get fresh ids (PostgreSQL's sequences were moved past the restored ones)
    engine = make_engine(target)
    with make_sessionmaker(engine)() as s:
        biggest = s.scalar(sa.select(sa.func.max(Organisation.id)))
        org = Organisation(code="NEW-CUS", name="New customs", kind=OrgKind.CUSTOMS, country_code="IT")
        s.add(org)
        s.commit()
        assert org.id > biggest
    engine.dispose()

    # restoring again into the same (now non-empty) database is refused
    with pytest.raises(bk.BackupError, match="not empty"):
        bk.restore(target, tmp_path / "again", out.path)


def test_cross_database_round_trip(populated, settings, database_url, empty_database, tmp_path) -> None:
    """PostgreSQL → SQLite → PostgreSQL gives back the same rows (on the SQLite pass: SQLite → SQLite
    → SQLite). Cross-database restores are how a laptop copy is made of a server's operation."""
    first = bk.backup(database_url, settings.data_dir, tmp_path / "1.tar")
    lite = empty_database("sqlite")
    _restore_and_compare(database_url, first.path, lite, tmp_path / "lite")
    second = bk.backup(lite, tmp_path / "lite", tmp_path / "2.tar")
    back = empty_database()
    _restore_and_compare(database_url, second.path, back, tmp_path / "back")
    assert _files(tmp_path / "back") == populated["files"]


@pytest.mark.parametrize("member", ["tables/", "files/", "manifest.json"])
def test_altered_backup_is_refused(
    populated, settings, database_url, empty_database, tmp_path, member
) -> None:
    good = bk.backup(database_url, settings.data_dir, tmp_path / "good.tar").path
    bad = tmp_path / "bad.tar"
    _tamper(good, bad, member)
    target = empty_database()
    with pytest.raises(bk.BackupError, match=r"SHA-256|manifest"):
        bk.restore(target, tmp_path / "restored", bad)
    assert all(not rows for rows in _rows(target).values()), "a refused restore wrote rows"
    assert not (tmp_path / "restored").exists()


def test_truncated_or_foreign_file_is_refused(
    settings, database_url, world, tmp_path, empty_database
) -> None:
    good = bk.backup(database_url, settings.data_dir, tmp_path / "good.tar").path
    truncated = tmp_path / "cut.tar"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    not_a_backup = tmp_path / "x.tar"
    not_a_backup.write_bytes(b"hello")
    target = empty_database()
    for path in (truncated, not_a_backup):
        with pytest.raises(bk.BackupError):
            bk.restore(target, tmp_path / "r", path)


def test_other_schema_revision_is_refused(settings, database_url, world, tmp_path, empty_database) -> None:
    good = bk.backup(database_url, settings.data_dir, tmp_path / "good.tar").path
    target = empty_database()
    downgrade(target, "-1")
    with pytest.raises(bk.BackupError, match="stopnet db upgrade"):
        bk.restore(target, tmp_path / "r", good)


def test_cli_backup_and_restore(
    populated, settings, database_url, empty_database, tmp_path, monkeypatch
) -> None:
    from stopnet.cli import app
    from stopnet.config import get_settings

    runner = CliRunner()

    def run(*args: str, url: str, data_dir: Path) -> Any:
        monkeypatch.setenv("STOPNET_DATABASE_URL", url)
        monkeypatch.setenv("STOPNET_DATA_DIR", str(data_dir))
        get_settings.cache_clear()
        try:
            return runner.invoke(app, list(args))
        finally:
            get_settings.cache_clear()

    r = run("backup", "--out", str(tmp_path / "cli.tar"), url=database_url, data_dir=settings.data_dir)
    assert r.exit_code == 0, r.output
    assert "backup written to" in r.output
    assert "backup: " in r.stderr and "rows (100%)" in r.stderr  # progress lines (not a terminal)
    target = empty_database()
    r = run("restore", str(tmp_path / "cli.tar"), url=target, data_dir=tmp_path / "restored")
    assert r.exit_code == 0, r.output
    assert _files(tmp_path / "restored") == populated["files"]
    assert "restore: " in r.stderr and "rows (100%)" in r.stderr
    r = run("restore", str(tmp_path / "cli.tar"), url=target, data_dir=tmp_path / "restored")
    assert r.exit_code == 1 and "not empty" in r.output
