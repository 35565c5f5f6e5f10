"""Helpers shared by the benchmarks: fresh databases, the machine line, timing and table printing.

Every benchmark prints its own figure next to a baseline measured in the same run, on the same machine,
so that a figure is never compared with one taken elsewhere.
"""

from __future__ import annotations

import os
import platform
import secrets
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "src") not in sys.path:
    sys.path.insert(0, str(ROOT / "src"))

DEFAULT_PG_URL = os.environ.get(
    "STOPNET_BENCH_POSTGRES_URL",
    os.environ.get("STOPNET_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"),
)
TMP = ROOT / "tmp"


def machine() -> str:
    """One line naming the machine: CPUs, memory, Python and the database server when known."""
    mem = ""
    try:
        with open("/proc/meminfo") as f:
            kb = int(f.readline().split()[1])
        mem = f", {kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    return (
        f"{platform.machine()} {os.cpu_count()} CPU(s){mem}, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}"
    )


def versions(*modules: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    out = []
    for m in modules:
        try:
            out.append(f"{m} {version(m)}")
        except PackageNotFoundError:
            out.append(f"{m} ?")
    return ", ".join(out)


@contextmanager
def fresh_database(backend: str, pg_url: str = DEFAULT_PG_URL, *, migrate: bool = True) -> Iterator[str]:
    """A new, empty database built by the migrations; dropped (or deleted) afterwards.

    PostgreSQL: ``CREATE DATABASE stopnet_bench_<random>`` on the server of ``pg_url``; SQLite: a file in
    a temporary directory.
    """
    from sqlalchemy import create_engine, text

    from stopnet.db.engine import normalise_url
    from stopnet.db.migrate import upgrade

    if backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="stopnet-bench-") as d:
            url = f"sqlite:///{Path(d) / 'bench.db'}"
            if migrate:
                upgrade(url)
            yield url
        return
    if backend != "postgres":
        raise ValueError(f"unknown backend {backend!r}")
    server = normalise_url(pg_url)
    name = f"stopnet_bench_{secrets.token_hex(4)}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as c:
            c.execute(text(f'CREATE DATABASE "{name}"'))
        url = server.rsplit("/", 1)[0] + "/" + name
        try:
            if migrate:
                upgrade(url)
            yield url
        finally:
            with admin.connect() as c:
                c.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def postgres_server_version(pg_url: str = DEFAULT_PG_URL) -> str:
    from sqlalchemy import create_engine, text

    from stopnet.db.engine import normalise_url

    eng = create_engine(normalise_url(pg_url))
    try:
        with eng.connect() as c:
            return str(c.execute(text("SHOW server_version")).scalar()).split()[0]
    except Exception as e:
        return f"unreachable ({type(e).__name__})"
    finally:
        eng.dispose()


def process_cpu(pid: int | None = None) -> float:
    """CPU seconds (user + system) used so far by this process, or by process ``pid`` of this machine
    (a PostgreSQL backend); 0.0 when it cannot be read (another machine, no /proc)."""
    if pid is None:
        return time.process_time()
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError):
        return 0.0


def postgres_pids() -> list[int]:
    """Every ``postgres`` process of this machine (the server may serve other databases too; empty
    where there is no /proc)."""
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() == "postgres":
                    out.append(int(entry.name))
            except OSError:
                pass
    return out


def free_port() -> int:
    """A TCP port of 127.0.0.1 that is free now (for a server the benchmark starts)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_healthy(
    url: str, proc: subprocess.Popen[Any], timeout: float = 60.0, log: Path | None = None
) -> None:
    """Wait until the server ``proc`` started answers ``GET {url}/healthz`` with 200. If it exits or
    does not answer within ``timeout`` seconds, it is killed and a ``RuntimeError`` says which, with the
    text of its ``log`` when given."""
    import httpx2

    def fail(what: str) -> RuntimeError:
        proc.kill()
        text = log.read_text(errors="replace") if log is not None and log.exists() else ""
        return RuntimeError(f"the server {what}" + (f":\n{text}" if text else ""))

    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise fail("exited at start")
        try:
            if httpx2.get(url + "/healthz", timeout=2).status_code == 200:
                return
        except httpx2.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise fail(f"did not answer /healthz within {timeout:.0f} s")
        time.sleep(0.2)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Run ``fn`` once; return (seconds, result)."""
    t = time.perf_counter()
    result = fn()
    return time.perf_counter() - t, result


def median(values: list[float]) -> float:
    s = sorted(values)
    n = len(s)
    return s[n // 2] if n % 2 else (s[n // 2 - 1] + s[n // 2]) / 2


def table(header: list[str], rows: list[list[str]]) -> str:
    """A Markdown table (right-aligned numbers), ready to paste into docs/benchmarks.md."""
    align = ["---" if i == 0 else "---:" for i in range(len(header))]
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(align) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def bench_sessions(engine: Any, settings: Any = None) -> Any:
    """Sessions carrying the installation's audit keys (those of ``settings``, else the environment's), as
    the servers the benchmarks start have: a keyless session may not extend their keyed audit chain."""
    from stopnet.config import get_settings
    from stopnet.core.keys import session_info
    from stopnet.db.engine import make_sessionmaker

    return make_sessionmaker(engine, info=session_info(settings or get_settings()))
