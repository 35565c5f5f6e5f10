"""Fixtures of the reliability tests: a private PostgreSQL server that a test may stop and restart, a test
world in one of its databases, and real uvicorn server processes against it.

The fault tests (``test_faults.py``) need PostgreSQL: they are collected in the PostgreSQL pass only
(``STOPNET_TEST_BACKEND=postgres``) and deselected, not skipped, in the SQLite pass. They never touch the
machine's PostgreSQL service: :class:`PrivatePostgres` runs its own server from the installed binaries
(``initdb`` / ``pg_ctl``) in a temporary directory on a free port, as the ``postgres`` system user when
the tests run as root (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from stopnet.access.service import create_token
from stopnet.db.engine import make_engine, make_sessionmaker
from stopnet.db.migrate import upgrade
from stopnet.db.models import (
    Operation,
    OperationPhase,
    OperationStatus,
    Organisation,
    OrgKind,
    Participant,
    ParticipantRole,
    Role,
    User,
    Visibility,
)
from tests.conftest import password_hash
from tests.servers import ServerProcess, free_port, start_server

ROOT = Path(__file__).resolve().parents[2]
POSTGRES_ONLY = {"test_faults.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect (never skip) the tests that need a PostgreSQL server of their own in the SQLite pass."""
    if os.environ.get("STOPNET_TEST_BACKEND", "sqlite") == "postgres":
        return
    here = Path(__file__).parent
    drop = [i for i in items if i.path.parent == here and i.path.name in POSTGRES_ONLY]
    if drop:
        config.hook.pytest_deselected(items=drop)
        items[:] = [i for i in items if i not in drop]


def _postgres_bindir() -> Path:
    pg_config = shutil.which("pg_config")
    if pg_config:
        bindir = Path(subprocess.check_output([pg_config, "--bindir"], text=True).strip())
        if (bindir / "pg_ctl").exists():
            return bindir
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/pg_ctl"))
    if not found:
        raise RuntimeError("PostgreSQL server binaries (initdb, pg_ctl) not found; install postgresql")
    return found[-1].parent


class PrivatePostgres:
    """A throw-away PostgreSQL server: ``stop()``/``start()`` simulate a database outage or restart."""

    def __init__(self) -> None:
        self.bindir = _postgres_bindir()
        self.dir = Path(tempfile.mkdtemp(prefix="stopnet-pg-"))
        self.data = self.dir / "data"
        self.log = self.dir / "server.log"
        self.port = free_port()
        self.as_user: list[str] = []
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            shutil.chown(self.dir, "postgres", "postgres")
            self.as_user = ["runuser", "-u", "postgres", "--"]
        self._run("initdb", "-D", str(self.data), "-A", "trust", "-U", "postgres", "-E", "UTF8", "--no-sync")

    def _run(self, tool: str, *args: str) -> None:
        cmd = [*self.as_user, str(self.bindir / tool), *args]
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{tool} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")

    def start(self) -> None:
        options = f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c max_connections=200"
        self._run(
            "pg_ctl", "-D", str(self.data), "-l", str(self.log), "-w", "-t", "60", "-o", options, "start"
        )

    def stop(self, mode: str = "fast") -> None:
        """``immediate`` is a crash (no checkpoint; recovery at the next start); ``fast`` a clean stop."""
        self._run("pg_ctl", "-D", str(self.data), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def create_database(self) -> str:
        name = f"stopnet_fault_{secrets.token_hex(4)}"
        admin = create_engine(self.url(), isolation_level="AUTOCOMMIT")
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        admin.dispose()
        return self.url(name)

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.stop("immediate")
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture(scope="module")
def private_pg() -> Iterator[PrivatePostgres]:
    pg = PrivatePostgres()
    pg.start()
    yield pg
    pg.close()


@dataclass
class FaultWorld:
    """A migrated database on the private server with an operation and API tokens of two reporters."""

    url: str
    op_code: str
    tokens: dict[str, str]
    org_ids: dict[str, int] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


@pytest.fixture
def fault_world(private_pg: PrivatePostgres) -> FaultWorld:
    url = private_pg.create_database()
    upgrade(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        orgs = {
            code: Organisation(code=code, name=name, kind=kind, country_code=country, region_code=region)
            for code, name, kind, country, region in [
                ("WCO-OCU", "WCO Operational Coordination Unit", OrgKind.COORDINATOR, None, None),
                ("FR-CUS", "France Customs", OrgKind.CUSTOMS, "FR", "EUR"),
                ("DE-CUS", "Germany Customs", OrgKind.CUSTOMS, "DE", "EUR"),
            ]
        }
        s.add_all(orgs.values())
        s.flush()
        op = Operation(
            code="FAULT-OP",
            name="Operation Fault",
            starts_on=dt.date(2025, 5, 12),
            ends_on=dt.date(2025, 5, 30),
            status=OperationStatus.ACTIVE,
            default_visibility=Visibility.PARTICIPANTS,
            coordinator_org_id=orgs["WCO-OCU"].id,
            phases=[
                OperationPhase(
                    name="Operational phase",
                    starts_on=dt.date(2025, 5, 12),
                    ends_on=dt.date(2025, 5, 30),
                    accepts_reports=True,
                )
            ],
        )
        s.add(op)
        s.flush()
        s.add(Participant(operation_id=op.id, org_id=orgs["WCO-OCU"].id, role=ParticipantRole.COORDINATOR))
        s.add(Participant(operation_id=op.id, org_id=orgs["FR-CUS"].id, role=ParticipantRole.MEMBER))
        s.add(Participant(operation_id=op.id, org_id=orgs["DE-CUS"].id, role=ParticipantRole.MEMBER))
        tokens = {}
        for name, org_code, role in [
            ("coordinator", "WCO-OCU", Role.COORDINATOR),
            ("fr_officer", "FR-CUS", Role.OFFICER),
            ("de_officer", "DE-CUS", Role.OFFICER),
        ]:
            org = orgs[org_code]
            user = User(
                org_id=org.id,
                email=f"{name}@example.test",
                display_name=name,
                role=role,
                password_hash=password_hash(),
            )
            s.add(user)
            s.flush()
            _, tokens[name] = create_token(s, None, org, f"{name} token", role, user=user)
        s.commit()
        world = FaultWorld(url, op.code, tokens, {code: o.id for code, o in orgs.items()})
    engine.dispose()
    return world


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``serve(database_url, workers=1)``: the real application in a uvicorn process on 127.0.0.1."""
    started: list[ServerProcess] = []

    def start(database_url: str, workers: int = 1) -> ServerProcess:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "STOPNET_DATABASE_URL": database_url,
            "STOPNET_SECRET_KEY": "reliability-test-secret",
            "STOPNET_DATA_DIR": str(tmp_path / "var"),
            "STOPNET_FEED_POLL_SECONDS": "1",
            "STOPNET_FEED_HEARTBEAT_SECONDS": "1",
        }
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "stopnet.web.app:create_app",
            "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
            "--log-level", "warning", "--no-access-log", "--timeout-graceful-shutdown", "1",
        ]  # fmt: skip
        server = start_server(cmd, env, log, f"http://127.0.0.1:{port}", timeout=90)
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()
