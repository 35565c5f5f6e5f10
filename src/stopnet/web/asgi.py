"""ASGI entry point for uvicorn workers: ``stopnet.web.asgi:app``."""

from stopnet.web.app import create_app

app = create_app()
