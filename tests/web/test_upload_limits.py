"""Request bodies over real HTTP: uploads are authenticated before their body is read, and no body is
read (parsed, spooled to disk) past the limit, on every route that takes a body.

A real uvicorn process serves the application with small limits. Every POST/PUT/PATCH route of the
application (read from its routes, so a new upload route is covered without touching this file) gets a
chunked ``multipart/form-data`` body far over the limit: without credentials, then with a session cookie
(pages) or an API token (API). Each is refused (401 without credentials; else 401/403/404 or 413, 400
for a form that takes no file), the connection takes no more than the limit and what the socket buffers
hold (the server stopped reading), and the server process's write counter (``/proc/<pid>/io``, temporary
files included) shows it stored no more than the limit, nothing at all before authentication.
"""

from __future__ import annotations

import os
import re
import select
import socket
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import httpx2
import pytest
from fastapi.routing import APIRoute, iter_route_contexts
from starlette.routing import Route

from stopnet.config import Settings
from stopnet.web.app import create_app
from stopnet.web.uploads import body_limit
from tests.conftest import World
from tests.pages import sign_in
from tests.servers import ROOT, ServerProcess, free_port, start_server

MAX_UPLOAD = 256 * 1024
ATTACHMENT_MAX = 128 * 1024
LIMIT = body_limit(Settings(max_upload_bytes=MAX_UPLOAD, attachment_max_bytes=ATTACHMENT_MAX))
SENT = LIMIT + 64 * 1024 * 1024  # what the client offers: far over the limit
ROOM = 1024 * 1024  # database pages and log lines one request writes
BUFFERS = 16 * 1024 * 1024  # what loopback socket buffers take in without the server reading
REFUSED = {400, 401, 403, 404, 413}  # 400: a form that takes no file (the parser's max_files)
BOUNDARY = "stopnet-boundary"


def _body_routes() -> list[tuple[str, str]]:
    """(method, path with its parameters filled in) of every route of the application that takes a body."""
    app = create_app(Settings(database_url="sqlite://", secret_key="routes-only"))
    try:
        routes = []
        for rc in iter_route_contexts(app.routes):
            if not isinstance(rc.original_route, APIRoute | Route):
                continue  # the static files mount
            for method in sorted(set(rc.methods or ()) & {"POST", "PUT", "PATCH"}):
                path = re.sub(r"\{code\}", "TEST-OP", rc.path)
                path = re.sub(r"\{[^}]*\}", "1", path)
                routes.append((method, path))
        return routes
    finally:
        app.state.engine.dispose()


ROUTES = _body_routes()
UPLOADS = [
    ("POST", "/api/v1/operations/TEST-OP/imports"),
    ("POST", "/operations/TEST-OP/import"),
    ("POST", "/api/v1/operations/TEST-OP/attachments"),
    ("POST", "/api/v1/rights/guides/1/attachments"),
    ("POST", "/api/v1/rights/requests/1/attachments"),
    ("POST", "/operations/TEST-OP/threads"),
    ("POST", "/threads/1/messages"),
]


@pytest.fixture
def server(world: World, settings: Settings, tmp_path: Path) -> Iterator[ServerProcess]:
    port = free_port()
    spool = tmp_path / "tmp"
    spool.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        "STOPNET_DATABASE_URL": settings.database_url,
        "STOPNET_SECRET_KEY": settings.secret_key,
        "STOPNET_DATA_DIR": str(settings.data_dir),
        "STOPNET_MAX_UPLOAD_BYTES": str(MAX_UPLOAD),
        "STOPNET_ATTACHMENT_MAX_BYTES": str(ATTACHMENT_MAX),
        "TMPDIR": str(spool),  # where the multipart parser spools files
    }
    cmd = [
        sys.executable, "-m", "uvicorn", "--factory", "stopnet.web.app:create_app",
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
        "--timeout-graceful-shutdown", "1",
    ]  # fmt: skip
    proc = start_server(cmd, env, tmp_path / "server.log", f"http://127.0.0.1:{port}")
    yield proc
    proc.stop(kill=True)


def _io(server: ServerProcess) -> dict[str, int]:
    text = Path(f"/proc/{server.proc.pid}/io").read_text()
    return {k: int(v) for k, v in (line.split(": ") for line in text.splitlines())}


def _chunked_upload(
    url: str, method: str, path: str, headers: dict[str, str], total: int
) -> tuple[int | None, int]:
    """Send a chunked multipart body of ``total`` bytes (or until the server answers or closes): the
    answer's status (None when none came) and the bytes of body the connection took."""
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=20)
    try:
        head = [f"{method} {path} HTTP/1.1", f"Host: {parts.netloc}", "Transfer-Encoding: chunked"]
        head.append(f"Content-Type: multipart/form-data; boundary={BOUNDARY}")
        head += [f"{k}: {v}" for k, v in headers.items()]
        sock.sendall(("\r\n".join(head) + "\r\n\r\n").encode())
        preamble = (
            f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="big.csv"\r\n'
            "Content-Type: text/csv\r\n\r\n"
        ).encode()
        block = b"a," * 32 * 1024
        sent = 0
        try:
            for data in [preamble, *([block] * (total // len(block) + 1))]:
                if select.select([sock], [], [], 0)[0]:
                    break  # the server has answered
                sock.sendall(b"%x\r\n%s\r\n" % (len(data), data))
                sent += len(data)
            else:
                sock.sendall(b"0\r\n\r\n")
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server stopped reading and closed: its answer is already here
        answer = b""
        deadline = time.monotonic() + 20
        while b"\r\n" not in answer and time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            answer += chunk
        m = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
        return (int(m.group(1)) if m else None), sent
    finally:
        sock.close()


def _session_cookie(url: str, world: World) -> str:
    with httpx2.Client(base_url=url) as c:
        r = sign_in(c, world["fr_officer"])
        assert r.status_code == 303, r.text
        cookie = next(iter(c.cookies.jar))
        return f"{cookie.name}={cookie.value}"


def _largest_file(root: Path) -> int:
    return max((p.stat().st_size for p in root.rglob("*") if p.is_file()), default=0)


def test_the_upload_routes_are_among_the_routes_checked() -> None:
    assert set(UPLOADS) <= set(ROUTES), sorted(ROUTES)


def test_over_limit_bodies_are_refused_before_they_are_read_or_stored(
    server: ServerProcess, world: World, settings: Settings, tmp_path: Path
) -> None:
    cookie = _session_cookie(server.url, world)
    who = {
        "anonymous": lambda path: {},
        "signed in": lambda path: (
            world["fr_officer"].headers if path.startswith("/api/") else {"Cookie": cookie}
        ),
    }
    problems = []
    for method, path in ROUTES:
        for label, headers in who.items():
            before = _io(server)
            status, taken = _chunked_upload(server.url, method, path, headers(path), SENT)
            time.sleep(0.05)  # the server finishes the request it refused
            written = _io(server)["wchar"] - before["wchar"]  # files, temporary ones included
            expected = {401} if label == "anonymous" else REFUSED
            if status not in expected or taken > LIMIT + BUFFERS or written > LIMIT + ROOM:
                problems.append((method, path, label, status, taken, written))
            if label == "anonymous" and written > ROOM:  # nothing of the body spooled
                problems.append((method, path, label, "body stored before authentication", written))
    assert problems == [], problems
    for root in (tmp_path / "tmp", Path(settings.data_dir)):
        assert _largest_file(root) <= LIMIT
    assert "Traceback" not in server.output(), server.output()


def test_uploads_within_the_limit_still_work(server: ServerProcess, world: World) -> None:
    with httpx2.Client(base_url=server.url, headers=world["fr_officer"].headers) as c:
        template = c.get("/api/v1/import-template.csv").content  # a header and one example row
        r = c.post("/api/v1/operations/TEST-OP/imports", files={"file": ("cases.csv", template, "text/csv")})
        assert r.status_code in (200, 201), r.text
        assert r.json()["cases_created"] == 1, r.text
        big = c.post(
            "/api/v1/operations/TEST-OP/attachments",
            files={"file": ("big.txt", b"a" * (ATTACHMENT_MAX + 1), "text/plain")},
        )
        assert big.status_code == 413 and "limit" in big.json()["detail"]  # the route's own limit
        anonymous = httpx2.post(
            f"{server.url}/api/v1/operations/TEST-OP/attachments",
            files={"file": ("a.txt", b"hello", "text/plain")},
        )
        assert anonymous.status_code == 401
