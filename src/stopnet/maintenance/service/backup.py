"""Consistent, portable backups of a stopnet installation, and their restoration.

A backup is one ``.tar`` file:

- ``manifest.json``: format, stopnet version, source database kind, the Alembic revision of the schema,
  and for every member its size and SHA-256;
- ``tables/NNN-<table>.jsonl``: every row of every table, one JSON object a line, tables in foreign-key
  dependency order (parents first), rows in primary-key order;
- ``files/<path>``: the files stopnet keeps outside the database, under ``data_dir`` (sharing
  attachments in ``attachments/``, rights holders' guide and request files in ``rightsholders/``).

The rows are one consistent snapshot: on PostgreSQL one ``REPEATABLE READ`` read-only transaction reads
every table; on SQLite the database is first copied with SQLite's online backup API and the copy read.
Files are stored by their SHA-256 and written before the rows that name them are committed, so every
file a snapshot row refers to is on disk when the files are copied, after the snapshot.

A restore goes into an empty database migrated to the same revision (``stopnet db upgrade REV``),
checks every member's checksum before writing anything, inserts every row in one transaction, resets
PostgreSQL's sequences past the restored ids and puts the files back under ``data_dir``. The format does
not depend on the database: a SQLite backup restores into PostgreSQL and back.
"""

from __future__ import annotations

import base64
import datetime as dt
import decimal
import enum
import hashlib
import io
import json
import os
import sqlite3
import tarfile
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import sqlalchemy as sa
from sqlalchemy import Connection, inspect, text
from sqlalchemy.engine import make_url

from stopnet import __version__
from stopnet.core.progress import ProgressCallback
from stopnet.db.engine import make_engine, normalise_url
from stopnet.db.models import Base

FORMAT = "stopnet-backup/1"
BLOB_DIRS = ("attachments", "rightsholders")  # under data_dir; the secret key is deliberately left out
BATCH = 1000


class BackupError(Exception):
    """A backup cannot be made or restored; the message says why and what to do."""


@dataclass
class BackupSummary:
    path: Path
    revision: str
    tables: dict[str, int] = field(default_factory=dict)
    files: int = 0
    bytes: int = 0


# ------------------------------------------------------------------------------------------- values


def _encode(value: Any) -> Any:
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _decoder(column: sa.Column[Any]) -> Any:
    """A function turning a row's JSON value back into what the column takes."""
    kind = column.type
    if isinstance(kind, sa.TypeDecorator):
        kind = kind.impl if isinstance(kind.impl, sa.types.TypeEngine) else kind.impl()
    if isinstance(kind, sa.Enum) and kind.enum_class is not None:
        enum_class = kind.enum_class
        by_value = {str(m.value): m for m in enum_class}
        by_name = {m.name: m for m in enum_class}
        return lambda v: by_value.get(v) or by_name[v]
    if isinstance(kind, sa.DateTime):
        return dt.datetime.fromisoformat
    if isinstance(kind, sa.Date):
        return dt.date.fromisoformat
    if isinstance(kind, sa.Time):
        return dt.time.fromisoformat
    if isinstance(kind, sa.Numeric) and not isinstance(kind, sa.Float):
        return decimal.Decimal if kind.asdecimal else float
    if isinstance(kind, sa.LargeBinary):
        return base64.b64decode
    if isinstance(kind, sa.Uuid):
        return uuid.UUID
    return None


def _decode_row(row: dict[str, Any], decoders: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for name, value in row.items():
        fn = decoders.get(name)
        out[name] = fn(value) if fn is not None and value is not None else value
    return out


# ------------------------------------------------------------------------------------------- helpers


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tables(conn: Connection) -> list[sa.Table]:
    """The application's tables present in this database, parents before children."""
    present = set(inspect(conn).get_table_names())
    return [t for t in Base.metadata.sorted_tables if t.name in present]


def _revision(conn: Connection) -> str:
    if not inspect(conn).has_table("alembic_version"):
        raise BackupError("the database has no schema (no alembic_version table); run `stopnet db upgrade`")
    revisions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(revisions) != 1:
        raise BackupError(f"the database has {len(revisions)} Alembic heads; expected one")
    return str(revisions[0])


def _order(table: sa.Table) -> list[sa.Column[Any]]:
    return list(table.primary_key.columns) or list(table.columns)


def _dump_rows(conn: Connection, table: sa.Table) -> Iterator[bytes]:
    result = conn.execution_options(yield_per=BATCH).execute(sa.select(table).order_by(*_order(table)))
    for row in result.mappings():
        yield (
            json.dumps({k: _encode(v) for k, v in row.items()}, ensure_ascii=False, separators=(",", ":"))
            + "\n"
        ).encode()


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mtime = int(mtime)
    info.mode = 0o600
    tar.addfile(info, io.BytesIO(data))


@contextmanager
def _snapshot(url: str) -> Iterator[Connection]:
    """A connection that sees one consistent state of the whole database, read only."""
    url = normalise_url(url)
    if make_url(url).get_backend_name() == "sqlite":
        source = make_url(url).database
        if not source or source == ":memory:":
            raise BackupError("cannot back up an in-memory SQLite database")
        with tempfile.TemporaryDirectory(prefix="stopnet-backup-") as tmp:
            copy = Path(tmp) / "snapshot.db"
            if not Path(source).is_file():
                raise BackupError(f"no SQLite database at {source}")
            src = sqlite3.connect(source)
            dst = sqlite3.connect(copy)
            try:
                src.backup(dst)  # SQLite's online backup API: a consistent copy, writers not blocked long
            finally:
                dst.close()
                src.close()
            engine = make_engine(f"sqlite:///{copy}")
            try:
                with engine.connect() as conn:
                    yield conn
            finally:
                engine.dispose()
        return
    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="REPEATABLE READ") as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SET TRANSACTION READ ONLY"))
            yield conn
            conn.rollback()
    finally:
        engine.dispose()


def _blob_files(data_dir: Path) -> Iterator[tuple[str, Path]]:
    root = Path(data_dir)
    for top in BLOB_DIRS:
        base = root / top
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                yield path.relative_to(root).as_posix(), path


# ------------------------------------------------------------------------------------------- backup


def backup(url: str, data_dir: Path, out: Path, progress: ProgressCallback | None = None) -> BackupSummary:
    """Write a backup of the database at ``url`` and the files under ``data_dir`` to ``out``: a file, or
    a directory (an existing one, or a path without suffix) that gets ``stopnet-backup-<UTC time>.tar``.
    Written under a temporary name and renamed when complete: a failed backup leaves no partial file.
    ``progress(rows written, rows in the database)`` follows the tables' rows."""
    now = dt.datetime.now(dt.UTC)
    out = Path(out)
    if out.is_dir() or not out.suffix:  # a directory (made when missing): a timestamped file in it
        out = out / f"stopnet-backup-{now:%Y%m%dT%H%M%SZ}.tar"
    out.parent.mkdir(parents=True, exist_ok=True)
    members: list[dict[str, Any]] = []
    tables: dict[str, int] = {}
    fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=".stopnet-backup-", suffix=".tmp")
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tarfile.open(tmp, "w") as tar, _snapshot(url) as conn:
            revision = _revision(conn)
            dialect = conn.dialect.name
            all_tables = _tables(conn)
            total_rows = (
                sum(conn.execute(sa.select(sa.func.count()).select_from(t)).scalar_one() for t in all_tables)
                if progress is not None
                else None
            )
            done_rows = 0
            for i, table in enumerate(all_tables):
                name = f"tables/{i:03d}-{table.name}.jsonl"
                with tempfile.TemporaryFile() as spool:  # rows go to disk, not memory
                    digest, rows, size = hashlib.sha256(), 0, 0
                    for line in _dump_rows(conn, table):
                        spool.write(line)
                        digest.update(line)
                        rows += 1
                        size += len(line)
                        if progress is not None and rows % BATCH == 0:
                            progress(done_rows + rows, total_rows)
                    spool.seek(0)
                    info = tarfile.TarInfo(name)
                    info.size, info.mtime, info.mode = size, int(now.timestamp()), 0o600
                    tar.addfile(info, spool)
                tables[table.name] = rows
                done_rows += rows
                if progress is not None:
                    progress(done_rows, total_rows)
                members.append(
                    {
                        "name": name,
                        "table": table.name,
                        "rows": rows,
                        "size": size,
                        "sha256": digest.hexdigest(),
                    }
                )
            total = 0
            files = 0
            for rel, path in _blob_files(data_dir):
                data = path.read_bytes()
                _add(tar, f"files/{rel}", data, path.stat().st_mtime)
                members.append({"name": f"files/{rel}", "size": len(data), "sha256": _sha256(data)})
                total += len(data)
                files += 1
            manifest = {
                "format": FORMAT,
                "stopnet_version": __version__,
                "created_at": now.isoformat(),
                "source": dialect,
                "alembic_revision": revision,
                "members": members,
            }
            _add(tar, "manifest.json", json.dumps(manifest, indent=1).encode(), now.timestamp())
        os.replace(tmp, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupSummary(out, revision, tables, files, total)


# ------------------------------------------------------------------------------------------- restore


def read_backup(path: Path) -> tuple[dict[str, Any], dict[str, bytes]]:
    """The manifest and every member of the backup at ``path``, each checked against the manifest."""
    try:
        with tarfile.open(path, "r") as tar:
            contents: dict[str, bytes] = {}
            for info in tar.getmembers():
                if not info.isfile():
                    raise BackupError(f"{path}: unexpected member {info.name!r} (not a plain file)")
                f = tar.extractfile(info)
                assert f is not None
                contents[info.name] = f.read()
    except (tarfile.TarError, OSError, EOFError) as e:
        raise BackupError(f"{path}: not a readable backup ({e})") from e
    try:
        manifest = json.loads(contents.pop("manifest.json"))
    except (KeyError, ValueError) as e:
        raise BackupError(f"{path}: no valid manifest.json") from e
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{path}: format {manifest.get('format')!r} is not {FORMAT!r}")
    listed = {m["name"] for m in manifest["members"]}
    if extra := sorted(set(contents) - listed):
        raise BackupError(f"{path}: members not in the manifest: {', '.join(extra[:5])}")
    for m in manifest["members"]:
        data = contents.get(m["name"])
        if data is None:
            raise BackupError(f"{path}: {m['name']} is missing")
        if len(data) != m["size"] or _sha256(data) != m["sha256"]:
            raise BackupError(f"{path}: {m['name']} does not match its SHA-256 in the manifest (altered)")
        if m["name"].startswith("files/"):
            rel = PurePosixPath(m["name"]).relative_to("files")
            if ".." in rel.parts or rel.is_absolute() or rel.parts[0] not in BLOB_DIRS:
                raise BackupError(f"{path}: refusing to restore the file {m['name']!r}")
    return manifest, contents


def restore(url: str, data_dir: Path, path: Path, progress: ProgressCallback | None = None) -> BackupSummary:
    """Restore the backup at ``path`` into the empty database at ``url`` and under ``data_dir``;
    ``progress(rows restored, rows in the backup)`` follows the rows."""
    manifest, contents = read_backup(path)
    revision = manifest["alembic_revision"]
    _check_files(Path(data_dir), manifest)
    engine = make_engine(normalise_url(url))
    tables: dict[str, int] = {}
    try:
        with engine.begin() as conn:
            current = _revision(conn)
            if current != revision:
                raise BackupError(
                    f"the backup is of schema revision {revision} but the database is at {current}; "
                    f"restore into a new database migrated with `stopnet db upgrade {revision}`"
                )
            present = {t.name: t for t in _tables(conn)}
            in_backup = [m for m in manifest["members"] if "table" in m]
            if missing := sorted({m["table"] for m in in_backup} - set(present)):
                raise BackupError(f"the database has no table {', '.join(missing)}")
            if not_covered := sorted(set(present) - {m["table"] for m in in_backup}):
                raise BackupError(f"the backup has no rows for the tables {', '.join(not_covered)}")
            for name, table in present.items():
                if conn.execute(sa.select(sa.func.count()).select_from(table)).scalar_one():
                    raise BackupError(
                        f"the database is not empty (table {name} has rows); restore only into a new, "
                        "empty database"
                    )
            total_rows, done_rows = sum(int(m["rows"]) for m in in_backup), 0
            for m in in_backup:
                table = present[m["table"]]
                decoders = {c.name: d for c in table.columns if (d := _decoder(c)) is not None}
                batch: list[dict[str, Any]] = []
                for line in contents[m["name"]].splitlines():
                    batch.append(_decode_row(json.loads(line), decoders))
                    if len(batch) >= BATCH:
                        conn.execute(table.insert(), batch)
                        done_rows += len(batch)
                        batch = []
                        if progress is not None:
                            progress(done_rows, total_rows)
                if batch:
                    conn.execute(table.insert(), batch)
                    done_rows += len(batch)
                tables[table.name] = m["rows"]
                if progress is not None:
                    progress(done_rows, total_rows)
            if conn.dialect.name == "postgresql":
                _reset_sequences(conn, list(present.values()))
    finally:
        engine.dispose()
    files, total = _restore_files(Path(data_dir), manifest, contents)
    return BackupSummary(Path(path), revision, tables, files, total)


def _reset_sequences(conn: Connection, tables: list[sa.Table]) -> None:
    """Move every serial/identity sequence past the largest restored id."""
    for table in tables:
        for column in table.primary_key.columns:
            seq = conn.execute(
                text("SELECT pg_get_serial_sequence(:t, :c)"), {"t": table.name, "c": column.name}
            ).scalar()
            if seq is None:
                continue
            conn.execute(
                text(
                    f'SELECT setval(:seq, COALESCE((SELECT MAX("{column.name}") FROM "{table.name}"), 1), '  # noqa: S608
                    f'(SELECT MAX("{column.name}") FROM "{table.name}") IS NOT NULL)'
                ),
                {"seq": seq},
            )


def _check_files(data_dir: Path, manifest: dict[str, Any]) -> None:
    """Refuse, before the database is touched, to overwrite a file that has other content."""
    for m in manifest["members"]:
        if m["name"].startswith("files/"):
            target = data_dir / PurePosixPath(m["name"]).relative_to("files")
            if target.exists() and _sha256(target.read_bytes()) != m["sha256"]:
                raise BackupError(f"{target} exists with other content; restore into an empty data directory")


def _restore_files(data_dir: Path, manifest: dict[str, Any], contents: dict[str, bytes]) -> tuple[int, int]:
    files = total = 0
    for m in manifest["members"]:
        if not m["name"].startswith("files/"):
            continue
        data = contents[m["name"]]
        target = data_dir / PurePosixPath(m["name"]).relative_to("files")
        if target.exists():
            if _sha256(target.read_bytes()) == m["sha256"]:
                continue
            raise BackupError(f"{target} exists with other content; restore into an empty data directory")
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".restore-")
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o640)
        os.replace(tmp, target)
        files += 1
        total += len(data)
    return files, total
