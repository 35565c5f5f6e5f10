"""Fixtures of the sharing tests: an SMTP sink, SSE clients, in-process and subprocess servers.

* ``smtp_sink``: an aiosmtpd server on 127.0.0.1 that keeps every message it receives;
* ``sse``: opens Server-Sent Events streams in background threads and parses their events;
* ``live_server`` (tests/pages.py): the app in a uvicorn thread of this process;
* ``spawn``: real uvicorn server processes on 127.0.0.1 against the test database (``--factory
  tests.sharing.server:create``), for the cross-process and restart tests.
"""

from __future__ import annotations

import contextlib
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from email.message import Message
from pathlib import Path
from typing import Any

import httpx2
import pytest

from stopnet.config import Settings
from tests.pages import HTML, LiveServer, csrf_from, sign_in  # noqa: F401
from tests.servers import ServerProcess, free_port, start_server

ROOT = Path(__file__).resolve().parents[2]


# ------------------------------------------------------------------------------------------ SMTP sink


@dataclass
class SmtpSink:
    host: str
    port: int
    messages: list[Message] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def wait_for(self, pred: Callable[[Message], bool], timeout: float = 10.0) -> Message:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                for m in self.messages:
                    if pred(m):
                        return m
            time.sleep(0.05)
        raise AssertionError(f"no matching e-mail in {timeout}s; got {[m['Subject'] for m in self.messages]}")

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if address in (m["To"] or "")]


@pytest.fixture(scope="session")
def _smtp_server() -> Iterator[SmtpSink]:
    from aiosmtpd.controller import Controller

    port = free_port()
    sink = SmtpSink("127.0.0.1", port)

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            msg = message_from_bytes(
                envelope.original_content or envelope.content, policy=email_policy.default
            )
            with sink.lock:
                sink.messages.append(msg)
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink
    finally:
        controller.stop()


@pytest.fixture
def smtp_sink(_smtp_server: SmtpSink) -> SmtpSink:
    with _smtp_server.lock:
        _smtp_server.messages.clear()
    return _smtp_server


@pytest.fixture
def settings(database_url: str, tmp_path: Path, _smtp_server: SmtpSink) -> Settings:
    return Settings(
        database_url=database_url,
        data_dir=tmp_path / "var",
        secret_key="test-secret-key",
        smtp_host=_smtp_server.host,
        smtp_port=_smtp_server.port,
        smtp_from="stopnet@example.test",
        feed_poll_seconds=1.0,
        feed_heartbeat_seconds=1.0,
        attachment_max_bytes=64 * 1024,
    )


@pytest.fixture
def app(settings: Settings, session_factory: Any) -> Iterator[Any]:
    from stopnet.web.app import create_app

    application = create_app(settings)
    yield application
    hub = getattr(application.state, "feed_hub", None)
    if hub is not None and hub.loop is not None and not hub.loop.is_closed():
        import asyncio

        with contextlib.suppress(Exception):  # the loop may already be gone
            asyncio.run_coroutine_threadsafe(hub.stop(), hub.loop).result(timeout=5)
    application.state.engine.dispose()


# ------------------------------------------------------------------------------------------ SSE client


@dataclass
class Event:
    id: int | None
    type: str
    data: dict[str, Any]


class SSEClient:
    """An SSE stream read in a background thread (httpx2), its events parsed into a queue."""

    def __init__(self, url: str, headers: dict[str, str] | None = None, params: dict[str, Any] | None = None):
        self.url = url
        self.headers = dict(headers or {})
        self.params = params
        self.events: queue.Queue[Event] = queue.Queue()
        self.received: list[Event] = []
        self.ids: list[int] = []  # every id: line seen (events and keep-alives)
        self.last_id: str | None = None
        self.status: int | None = None
        self.body = ""
        self.ready = threading.Event()
        self.ended = threading.Event()
        self._response: Any = None
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            with (
                httpx2.Client(timeout=httpx2.Timeout(10.0, read=30.0)) as c,
                c.stream("GET", self.url, headers=self.headers, params=self.params) as r,
            ):
                self._response = r
                self.status = r.status_code
                if r.status_code != 200:
                    self.body = r.read().decode()
                    self.ready.set()
                    return
                fields: dict[str, str] = {}
                data: list[str] = []
                for line in r.iter_lines():
                    self.ready.set()
                    if self._stop:
                        return
                    if line == "":
                        if "id" in fields:
                            self.last_id = fields["id"]
                            self.ids.append(int(fields["id"]))
                        if data:
                            import json

                            ev = Event(
                                int(fields["id"]) if "id" in fields else None,
                                fields.get("event", "message"),
                                json.loads("\n".join(data)),
                            )
                            self.received.append(ev)
                            self.events.put(ev)
                        fields, data = {}, []
                        continue
                    if line.startswith(":"):
                        continue
                    name, _, value = line.partition(":")
                    value = value.removeprefix(" ")
                    if name == "data":
                        data.append(value)
                    else:
                        fields[name] = value
        except Exception:  # noqa: S110 - closed from the test, or the server went away
            pass
        finally:
            self.ready.set()
            self.ended.set()

    def wait_ready(self, timeout: float = 15.0) -> SSEClient:
        assert self.ready.wait(timeout), "the stream did not open"
        assert self.status == 200, f"{self.status}: {self.body}"
        return self

    def take(self, n: int, timeout: float = 10.0) -> list[Event]:
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"got {len(out)} of {n} events in {timeout}s: {[e.type for e in out]}")
            try:
                out.append(self.events.get(timeout=left))
            except queue.Empty:
                continue
        return out

    def wait_for(self, pred: Callable[[Event], bool], timeout: float = 10.0) -> Event:
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(
                    f"no matching event in {timeout}s; got {[e.type for e in self.received]}"
                )
            try:
                ev = self.events.get(timeout=left)
            except queue.Empty:
                continue
            if pred(ev):
                return ev

    def quiet(self, seconds: float) -> list[Event]:
        """Every event that arrives within ``seconds``."""
        out = []
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                out.append(self.events.get(timeout=left))
            except queue.Empty:
                break
        return out

    def close(self) -> None:
        self._stop = True
        r = self._response
        if r is not None:
            with contextlib.suppress(Exception):
                r.close()
        self._thread.join(timeout=5)


@pytest.fixture
def sse() -> Iterator[Callable[..., SSEClient]]:
    clients: list[SSEClient] = []

    def open_(url: str, headers: dict[str, str] | None = None, **params: Any) -> SSEClient:
        c = SSEClient(url, headers, {k: v for k, v in params.items() if v is not None} or None)
        clients.append(c)
        return c.wait_ready()

    yield open_
    for c in clients:
        c.close()


# ------------------------------------------------------------------------------------------ servers


@pytest.fixture
def spawn(settings: Settings, tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``spawn()`` starts the application in a new uvicorn process and waits until it answers."""
    started: list[ServerProcess] = []

    def start(**env_overrides: str) -> ServerProcess:
        port = free_port()
        log = tmp_path / f"server-{port}.log"
        env = {
            **os.environ,
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "STOPNET_DATABASE_URL": settings.database_url,
            "STOPNET_SECRET_KEY": settings.secret_key,
            "STOPNET_DATA_DIR": str(settings.data_dir),
            "STOPNET_SMTP_HOST": settings.smtp_host,
            "STOPNET_SMTP_PORT": str(settings.smtp_port),
            "STOPNET_FEED_POLL_SECONDS": "1",
            "STOPNET_FEED_HEARTBEAT_SECONDS": "1",
            **env_overrides,
        }
        cmd = [
            sys.executable, "-m", "uvicorn", "--factory", "tests.sharing.server:create",
            "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--no-access-log",
            "--timeout-graceful-shutdown", "1",
        ]  # fmt: skip
        server = start_server(cmd, env, log, f"http://127.0.0.1:{port}")
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop(kill=True)
