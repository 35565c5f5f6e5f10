"""The ASGI factory the sharing tests serve with uvicorn subprocesses (``--factory``): the real
application (``stopnet.web.app.create_app`` with settings from the environment)."""

from __future__ import annotations

from typing import Any

from stopnet.web.app import create_app


def create() -> Any:
    return create_app()
