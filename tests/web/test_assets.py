"""Light pages: compressed answers, static files under content-hashed names cached for a year, the
favicon. Real HTTP through uvicorn (tests/pages.py's live server), read raw so compression is seen."""

from __future__ import annotations

import gzip
import http.client
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from stopnet.web.assets import IMMUTABLE, HashedStaticFiles, static_files, static_url
from tests.pages import HTML, sign_in

_ASSET = re.compile(r'(?:src|href)="(/static/[^"]+)"')


def raw_get(base: str, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    """GET over plain HTTP: status, headers (lower-case names) and the body as it came on the wire."""
    parts = urlsplit(base)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        conn.request("GET", path, headers=headers)
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def session_cookie(client: TestClient, world, name: str) -> str:  # type: ignore[no-untyped-def]
    client.cookies.clear()
    assert sign_in(client, world[name]).status_code == 303
    return "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def test_pages_json_and_static_files_are_gzipped(live_server, world, client):
    cookie = session_cookie(client, world, "coordinator")
    gz = {"Accept-Encoding": "gzip", "Cookie": cookie}
    sizes = {}
    for path, accept in (
        ("/operations/TEST-OP/dashboard", HTML),
        ("/operations/TEST-OP/cases", HTML),
        ("/api/v1/reference", {}),
        (static_url("vendor/plotly-4.1.1-stopnet.min.js"), {}),
        (static_url("stopnet.css"), {}),
        ("/openapi.json", {}),
    ):
        status, headers, body = raw_get(live_server.url, path, {**gz, **accept})
        assert status == 200, (path, body[:200])
        assert headers.get("content-encoding") == "gzip", path
        assert "accept-encoding" in headers.get("vary", "").lower(), path
        whole = gzip.decompress(body)
        plain_status, plain_headers, plain = raw_get(live_server.url, path, {"Cookie": cookie, **accept})
        assert plain_status == 200 and "content-encoding" not in plain_headers, path  # only when asked
        if not path.startswith("/operations/"):  # pages carry a fresh CSRF token each time
            assert whole == plain, path
        assert len(body) < len(whole) / 2.5, (path, len(body), len(whole))
        sizes[path] = (len(body), len(whole))
    dashboard_sent, dashboard_whole = sizes["/operations/TEST-OP/dashboard"]
    plotly_sent, plotly_whole = sizes[static_url("vendor/plotly-4.1.1-stopnet.min.js")]
    assert plotly_sent < 600_000 < 1_500_000 < plotly_whole  # 1.6 MB of plotly.js travel as about 0.5 MB
    assert dashboard_sent < dashboard_whole / 4


def test_every_static_url_of_the_pages_is_hashed_and_immutable(live_server, world, client):
    cookie = session_cookie(client, world, "coordinator")
    seen: set[str] = set()
    for page in (
        "/",
        "/operations/TEST-OP/dashboard",
        "/operations/TEST-OP/live",
        "/operations/TEST-OP/reports/daily",
    ):
        status, _, body = raw_get(live_server.url, page, {"Cookie": cookie, **HTML})
        assert status == 200, page
        assets = _ASSET.findall(body.decode())
        assert assets, page
        for url in assets:
            assert re.search(r"\.[0-9a-f]{12}\.[a-z0-9]+$", url), (page, url)  # a content-hashed name
            seen.add(url)
    assert static_url("favicon.svg") in seen and static_url("stopnet.css") in seen
    for url in sorted(seen):
        status, headers, body = raw_get(live_server.url, url, {})
        assert status == 200, url
        assert headers["cache-control"] == IMMUTABLE, url
        assert "etag" in headers, url
        real = url.removeprefix("/static/")
        real = re.sub(r"\.[0-9a-f]{12}(\.[a-z0-9]+)$", r"\1", real)
        assert static_files.digest(real) and static_url(real) == url
    # the plain name still answers (the map plotly.js fetches by name), revalidated each time
    status, headers, _ = raw_get(live_server.url, "/static/vendor/plotly-topojson/world_110m.json", {})
    assert status == 200 and headers["cache-control"] == "no-cache"
    # a hashed name that is not the file's content: not found, never the current file under it
    wrong = re.sub(r"\.[0-9a-f]{12}\.", ".000000000000.", static_url("stopnet.css"))
    assert raw_get(live_server.url, wrong, {})[0] == 404


def test_the_hashed_url_changes_with_the_content(tmp_path: Path):
    (tmp_path / "site.css").write_text("body { color: red; }")
    files = HashedStaticFiles(tmp_path)
    app = FastAPI()
    app.mount("/static", files)
    client = TestClient(app)
    first = files.url("site.css")
    assert re.fullmatch(r"/static/site\.[0-9a-f]{12}\.css", first)
    assert files.url("site.css") == first  # stable while the file is unchanged
    r = client.get(first)
    assert r.status_code == 200 and r.text == "body { color: red; }"
    assert r.headers["cache-control"] == IMMUTABLE

    (tmp_path / "site.css").write_text("body { color: blue; }")
    second = files.url("site.css")
    assert second != first
    assert client.get(second).text == "body { color: blue; }"
    assert client.get(first).status_code == 404  # the old name is gone with the old content
    with pytest.raises(ValueError, match="no static file"):
        files.url("missing.css")


def test_favicon(live_server, client):
    status, headers, body = raw_get(live_server.url, "/favicon.ico", {})
    assert status == 200
    assert headers["content-type"] in ("image/vnd.microsoft.icon", "image/x-icon")
    assert body[:4] == b"\x00\x00\x01\x00"  # an ICO file
    assert "max-age" in headers["cache-control"]
    svg_status, svg_headers, svg = raw_get(live_server.url, static_url("favicon.svg"), {})
    assert svg_status == 200 and svg_headers["content-type"].startswith("image/svg+xml")
    assert svg.lstrip().startswith(b"<svg")
    html = client.get("/login", headers=HTML).text  # linked by every page, the sign-in page too
    assert f'<link rel="icon" href="{static_url("favicon.svg")}" type="image/svg+xml">' in html
