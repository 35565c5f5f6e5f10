"""Every page of the demo in a real headless Chromium, as a person finds them from the navigation.

The demo (``stopnet demo``'s data: the simulated STOP IV operation, one user per role, the targeting
consignments, model and selection) is loaded once into a database of its own and served by uvicorn on
127.0.0.1. For each role the test signs in and follows every link of every page it reaches (each route
once: ``/cases/17`` stands for every case), and fails on a page that does not answer 200, a request to
any other host, a console or CSP error, a resource that does not load and, at phone width (390 px), a
page wider than the screen or a "Sign out" out of sight. Screenshots of each route at desktop and phone
width go to test-artifacts/screenshots/walk/.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from stopnet.config import Settings
from stopnet.db.engine import make_engine, make_sessionmaker, session_scope
from stopnet.db.migrate import upgrade
from tests.pages import SCREENSHOTS
from tests.web.test_dashboard_browser import CSP_WATCH

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1366, "height": 900}
#: links that are not pages: files, the API, JSON twins, downloads
NOT_A_PAGE = re.compile(r"^/(api|static)/|\.(pdf|csv|xlsx|json|txt|ico)$")
_ID = re.compile(r"/\d+(?=/|$)")


@dataclass
class Demo:
    url: str
    credentials: dict[str, tuple[str, str]]  # role -> (e-mail, password)
    operation: str
    selection_day: dt.date | None


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The demo's data in a SQLite database of its own, served by uvicorn in a background thread."""
    import uvicorn

    from stopnet.analytics import service as analytics
    from stopnet.core.keys import pseudonym_master as master_key
    from stopnet.simulate import seed_demo
    from stopnet.simulate.targeting import seed_demo_targeting
    from stopnet.web.app import create_app

    root = tmp_path_factory.mktemp("demo-walk")
    settings = Settings(
        database_url=f"sqlite:///{root / 'demo.db'}", data_dir=root / "var", secret_key="walk-key"
    )
    settings.data_dir.mkdir(parents=True)
    upgrade(settings.database_url)
    engine = make_engine(settings.database_url)
    factory = make_sessionmaker(engine)
    with session_scope(factory) as s:
        info = seed_demo(s, seed=42, reset_passwords=True)
    current = next(iter(info.operations))
    with session_scope(factory) as s:
        targeting = seed_demo_targeting(
            s,
            operation=current,
            org_code=info.home_org,
            key_master=master_key(settings),
            model_dir=settings.data_dir / "models",
            today=dt.date.today(),
        )
    engine.dispose()
    credentials = {role: (email, password or "") for role, (email, password) in info.credentials().items()}

    analytics.clear_cache()
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the demo server did not start"
        time.sleep(0.02)
    try:
        yield Demo(f"http://127.0.0.1:{port}", credentials, current, targeting.day)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        app.state.engine.dispose()
        analytics.clear_cache()


@dataclass
class Walk:
    """What one role's walk found: every route visited (by pattern) and every problem."""

    visited: dict[str, str] = field(default_factory=dict)  # route pattern -> the URL visited for it
    problems: list[str] = field(default_factory=list)


def route_of(path: str) -> str:
    return _ID.sub("/{id}", path)


def walk(chromium: Any, demo: Demo, role: str, viewport: dict[str, int], shots: Path) -> Walk:
    """Sign in as ``role`` and visit every route reachable by links from the first page."""
    base = demo.url
    context = chromium.new_context(base_url=base, viewport=viewport)
    context.set_default_timeout(20_000)
    result = Walk()
    requests: list[str] = []
    errors: list[str] = []

    def guard(route: Any) -> None:
        if route.request.url.startswith(base + "/"):
            route.continue_()
        else:
            route.abort()

    context.on("request", lambda r: requests.append(r.url))
    context.on(
        "response",
        lambda r: (
            errors.append(f"{r.status} {r.url}")
            if r.status >= 400 and r.request.resource_type != "document"
            else None
        ),
    )
    context.route("**/*", guard)
    context.add_init_script(CSP_WATCH)
    page = context.new_page()
    page.on("console", lambda m: errors.append(f"console: {m.text}") if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    try:
        email, password = demo.credentials[role]
        page.goto("/login")
        page.fill("input[name=email]", email)
        page.fill("input[name=password]", password)
        page.click("button:has-text('Sign in')")
        page.wait_for_selector("header .who")
        queue = ["/"]
        while queue:
            url = queue.pop(0)
            pattern = route_of(urlsplit(url).path)
            if pattern in result.visited:
                continue
            result.visited[pattern] = url
            requests.clear()
            errors.clear()
            response = page.goto(url)
            status = response.status if response else 0
            if page.locator("#dashboard").count():
                page.wait_for_selector("#dashboard[data-drawn='true']", timeout=30_000)
            if page.locator("#swagger-ui").count():
                page.wait_for_selector("#swagger-ui .opblock", timeout=30_000)
            if page.locator("#redoc").count():
                page.wait_for_selector("#redoc [data-section-id^='operation/']", timeout=30_000)
            page.wait_for_load_state("networkidle")
            where = f"{role} {viewport['width']}px {url}"
            if status != 200:
                result.problems.append(f"{where}: answered {status}")
            foreign = [u for u in requests if not u.startswith((base + "/", "data:", "blob:"))]
            if foreign:
                result.problems.append(f"{where}: requests to other hosts {foreign}")
            if errors:
                result.problems.append(f"{where}: {errors}")
            csp = page.evaluate("window.__csp || []")
            if csp:
                result.problems.append(f"{where}: CSP violations {csp}")
            if viewport["width"] <= PHONE["width"]:
                width = page.evaluate("document.documentElement.scrollWidth")
                if width > viewport["width"]:
                    wide = page.evaluate(WIDEST, viewport["width"])
                    result.problems.append(f"{where}: {width} px wide (too wide: {wide})")
                sign_out = page.locator("header button:has-text('Sign out')")
                if not (sign_out.count() == 1 and sign_out.is_visible() and in_view(page, sign_out)):
                    result.problems.append(f"{where}: 'Sign out' not visible")
            name = re.sub(r"[^a-z0-9]+", "-", pattern.lower()).strip("-") or "home"
            page.screenshot(path=str(shots / f"{role}-{viewport['width']}-{name}.png"), full_page=False)
            for href in page.eval_on_selector_all(
                "a[href]:not([download])", "as => as.map(a => a.getAttribute('href'))"
            ):
                target = href.split("#")[0]
                parts = urlsplit(target)
                if not target.startswith("/") or target.startswith("//") or NOT_A_PAGE.search(parts.path):
                    continue
                if "format=" in parts.query:  # a page's JSON or CSV twin
                    continue
                if target.startswith("/logout") or route_of(urlsplit(target).path) in result.visited:
                    continue
                queue.append(target)
        return result
    finally:
        context.close()


# the elements that stick out past the right edge of the screen (named for the failure message)
WIDEST = """w => Array.from(document.querySelectorAll('body *'))
  .filter(e => e.getBoundingClientRect().right > w + 1 && !e.closest('.scroll, .table-wrap, .chart, .apidocs'))
  .slice(0, 5).map(e => e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.split(' ').join('.') : '') + ' ' + Math.round(e.getBoundingClientRect().right))"""


def in_view(page: Any, locator: Any) -> bool:
    box = locator.bounding_box()
    size = page.viewport_size
    return bool(box and box["x"] >= 0 and box["x"] + box["width"] <= size["width"] and box["y"] >= 0)


@pytest.fixture(scope="module")
def walk_shots() -> Path:
    directory = SCREENSHOTS / "walk"
    directory.mkdir(parents=True, exist_ok=True)
    return directory


#: the routes each role must reach from the navigation (a walk that misses them is broken itself)
MUST_REACH = {
    "coordinator": {"/", "/operations/{code}", "/operations/{code}/dashboard", "/audit", "/docs", "/redoc"},
    "officer": {"/", "/operations/{code}/cases/new", "/operations/{code}/targeting/selection", "/docs"},
}


@pytest.mark.parametrize("role", ["coordinator", "officer"])
def test_every_page_of_the_demo_stays_on_this_site(chromium, demo, role, walk_shots):
    result = walk(chromium, demo, role, DESKTOP, walk_shots)
    reached = {p.replace(f"/{demo.operation}", "/{code}") for p in result.visited}
    assert MUST_REACH[role] <= reached, sorted(MUST_REACH[role] - reached)
    assert len(result.visited) >= 15, sorted(result.visited)
    assert result.problems == [], "\n".join(result.problems)


@pytest.mark.parametrize(
    "role", ["admin", "coordinator", "analyst", "contact_point", "officer", "partner", "rights_holder"]
)
def test_every_page_fits_a_phone_screen(chromium, demo, role, walk_shots):
    result = walk(chromium, demo, role, PHONE, walk_shots)
    assert len(result.visited) >= 5, sorted(result.visited)
    assert result.problems == [], "\n".join(result.problems)
