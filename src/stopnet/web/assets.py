"""Static files under content-hashed names, cached for a year; :func:`static_url` gives templates the URL.

``static_url("stopnet.css")`` is ``/static/stopnet.<12 hex of its SHA-256>.css``: a new file content is a
new URL, so browsers may keep every hashed file for good (``Cache-Control: public, max-age=31536000,
immutable``). A hashed name whose digest is not the file's (an old page asking for a replaced file) is a
404, never the new content under the old name. Plain names (the world map plotly.js fetches by name)
are still served, revalidated on each use (``no-cache``, with their ETag). Swagger UI's files come from
the ``fastapi-swagger`` package, served beside ours.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import Response
from starlette.staticfiles import StaticFiles

STATIC = Path(__file__).parent / "static"
PREFIX = "/static"
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
_HASHED = re.compile(r"^(?P<stem>.+)\.(?P<digest>[0-9a-f]{12})(?P<ext>\.[A-Za-z0-9]+)$")


class HashedStaticFiles(StaticFiles):
    """``StaticFiles`` that also answers ``name.<digest>.ext`` for ``name.ext`` (see the module doc)."""

    def __init__(self, directory: Path, packages: list[str | tuple[str, str]] | None = None) -> None:
        super().__init__(directory=directory, packages=packages)
        self._digests: dict[str, tuple[int, int, str]] = {}  # path -> (mtime_ns, size, digest)

    def digest(self, path: str) -> str | None:
        """The 12 first hex digits of the SHA-256 of the file served at ``path``; None if there is none.

        Cached by modification time and size: a file changed on disk gets its new digest."""
        full_path, st = self.lookup_path(os.path.normpath(path))
        if st is None or not stat.S_ISREG(st.st_mode):
            return None
        cached = self._digests.get(path)
        if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
            return cached[2]
        digest = hashlib.sha256(Path(full_path).read_bytes()).hexdigest()[:12]
        self._digests[path] = (st.st_mtime_ns, st.st_size, digest)
        return digest

    def url(self, path: str) -> str:
        """``/static/`` URL of ``path`` (relative to the static folder) under its hashed name."""
        digest = self.digest(path)
        if digest is None:
            raise ValueError(f"no static file {path!r}")
        stem, dot, ext = path.rpartition(".")
        if not dot or "/" in ext:
            raise ValueError(f"static file {path!r} has no extension to hash its name by")
        return f"{PREFIX}/{stem}.{digest}.{ext}"

    async def get_response(self, path: str, scope: Any) -> Response:
        m = _HASHED.match(path)
        if m is None:
            response = await super().get_response(path, scope)
            response.headers["cache-control"] = REVALIDATE
            return response
        real = m["stem"] + m["ext"]
        if self.digest(real) != m["digest"]:
            raise HTTPException(status_code=404, detail="no such file (or not this version of it)")
        response = await super().get_response(real, scope)
        response.headers["cache-control"] = IMMUTABLE
        return response


static_files = HashedStaticFiles(STATIC, packages=[("fastapi_swagger", "resources")])


def static_url(path: str) -> str:
    """The hashed URL of one of the site's static files, for templates and views."""
    return static_files.url(path)
