"""Fixtures of the page tests: sign-in helpers, a live uvicorn server and a headless Chromium.

The live server runs the real application (``create_app(settings)``) in a background thread on a free
port of 127.0.0.1, against the test database of the session (SQLite or PostgreSQL). The browser is
Debian's Chromium driven by Playwright's sync API; no browser is ever downloaded.
"""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import PASSWORD, Actor

ROOT = Path(__file__).resolve().parents[1]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
HTML = {"Accept": "text/html,application/xhtml+xml"}
_CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')


def csrf_from(html: str) -> str:
    """The CSRF token of the first form of a rendered page."""
    m = _CSRF.search(html)
    assert m is not None, "no csrf_token field in the page"
    return m.group(1)


class _FormReader(HTMLParser):
    """Collects what a browser would send for one form: its inputs, selects and textareas."""

    def __init__(self, action: str) -> None:
        super().__init__(convert_charrefs=True)
        self.action = action
        self.inside = False
        self.found = False
        self.values: dict[str, str] = {}
        self.names: set[str] = set()
        self._select: str | None = None
        self._first_option: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and a.get("action") == self.action and not self.found:
            self.inside = self.found = True
            return
        if not self.inside:
            return
        name = a.get("name")
        if tag == "input" and name:
            kind = a.get("type", "text")
            self.names.add(name)
            if kind in ("submit", "button", "file", "image", "reset"):
                return
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values[name] = a.get("value") or "on"
                return
            self.values[name] = a.get("value", "")
        elif tag == "select" and name:
            self.names.add(name)
            self._select, self._first_option = name, None
        elif tag == "option" and self._select is not None:
            value = a.get("value", "")
            if self._first_option is None:
                self._first_option = value
                self.values[self._select] = value
            if "selected" in a:
                self.values[self._select] = value
        elif tag == "textarea" and name:
            self.names.add(name)
            self._textarea = name
            self.values[name] = ""
        elif tag == "button" and name:
            self.names.add(name)

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.inside:
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea is not None:
            self.values[self._textarea] += data


@dataclass
class FormData:
    """The values a browser would post for a form, and every field name the form has."""

    values: dict[str, str]
    names: set[str]


def read_form(html: str, action: str) -> FormData:
    """Read the form posting to ``action`` the way a browser fills it in (defaults, selected options)."""
    reader = _FormReader(action)
    reader.feed(html)
    assert reader.found, f"no form with action={action!r} in the page"
    return FormData(reader.values, reader.names)


def sign_in(client: TestClient, actor: Actor | str, password: str = PASSWORD, next: str = "/") -> Any:
    """Sign in through the login form, as a browser does (GET the form, then POST it with its token)."""
    email = actor if isinstance(actor, str) else actor.email
    page = client.get("/login", headers=HTML)
    assert page.status_code == 200, page.text
    return client.post(
        "/login",
        data={"email": email, "password": password, "csrf_token": csrf_from(page.text), "next": next},
        headers=HTML,
        follow_redirects=False,
    )


@pytest.fixture
def signed_in(client: TestClient) -> Callable[[Actor], TestClient]:
    """``signed_in(world["fr_officer"])`` signs the test client in (cookies kept) and returns it."""

    def do(actor: Actor) -> TestClient:
        client.cookies.clear()
        r = sign_in(client, actor)
        assert r.status_code == 303, r.text
        return client

    return do


# ------------------------------------------------------------------------------------------ live server


@dataclass
class LiveServer:
    url: str
    server: Any
    thread: threading.Thread


@pytest.fixture
def live_server(app: Any) -> Iterator[LiveServer]:
    """The application served by uvicorn on 127.0.0.1 and a free port, in a background thread."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off", workers=1)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the live server did not start")
        time.sleep(0.02)
    try:
        yield LiveServer(f"http://127.0.0.1:{port}", server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


# ------------------------------------------------------------------------------------------ browser


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Headless Debian Chromium (Playwright sync API), one for the whole test session."""
    if not Path(CHROMIUM).exists():  # a failure, not a skip: the browser tests are part of the suite
        pytest.fail(f"{CHROMIUM} is not installed: apt-get install chromium chromium-driver (see .ci/run)")
    from playwright import sync_api

    pw = sync_api.sync_playwright().start()
    try:
        b = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()
    finally:
        pw.stop()


@dataclass
class PageWatch:
    """What a page did: every request URL, console errors and uncaught page errors."""

    requests: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed_resources: list[str] = field(default_factory=list)  # stylesheets, scripts, images, htmx calls

    def foreign_requests(self, base_url: str) -> list[str]:
        return [u for u in self.requests if not (u.startswith(base_url + "/") or u.startswith("data:"))]

    def unexpected_console_errors(self, *allowed_statuses: int) -> list[str]:
        """Console errors, less Chromium's note on a page answered with one of ``allowed_statuses``.

        A form posted with a mistake is answered 401 or 422 on purpose, and Chromium logs "Failed to
        load resource" for that document; any other console error (a CSP violation, a script error) counts.
        """
        allowed = tuple(f"the server responded with a status of {s} " for s in allowed_statuses)
        return [m for m in self.console_errors if not any(a in m for a in allowed)]


@pytest.fixture
def browser_page(chromium: Any, live_server: LiveServer) -> Iterator[tuple[Any, PageWatch]]:
    """A fresh browser context and page on the live server, with its requests and errors recorded.

    Requests to anything but the live server are recorded and then aborted, so a stray CDN or "call
    home" fails the test instead of hanging it.
    """
    watch = PageWatch()
    context = chromium.new_context(base_url=live_server.url, viewport={"width": 1366, "height": 900})
    context.set_default_timeout(10_000)

    def on_request(request: Any) -> None:
        watch.requests.append(request.url)

    def guard(route: Any) -> None:
        if route.request.url.startswith(live_server.url + "/"):
            route.continue_()
        else:
            route.abort()

    def on_response(response: Any) -> None:
        if response.status >= 400 and response.request.resource_type != "document":
            watch.failed_resources.append(f"{response.status} {response.url}")

    context.on("request", on_request)
    context.on("response", on_response)
    context.route("**/*", guard)
    p = context.new_page()
    p.on("console", lambda m: watch.console_errors.append(m.text) if m.type == "error" else None)
    p.on("pageerror", lambda e: watch.page_errors.append(str(e)))
    try:
        yield p, watch
    finally:
        context.close()


@pytest.fixture(scope="session")
def screenshot_dir() -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    return SCREENSHOTS
