"""Typed settings for stopnet.

One object, built by :func:`get_settings` (never at import time). Every field can be set with an
environment variable named ``STOPNET_<FIELD>`` (upper case), or in a ``.env`` file in the working
directory. ``docs/settings.md`` documents each field; a test fails when the two drift apart.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """All of stopnet's settings."""

    model_config = SettingsConfigDict(env_prefix="STOPNET_", env_file=".env", extra="ignore")

    database_url: str = Field(
        default="sqlite:///./stopnet.db",
        description="SQLAlchemy URL of the database. SQLite file by default; PostgreSQL in production "
        "(postgresql+psycopg://user@host/db).",
    )
    host: str = Field(default="127.0.0.1", description="Address the web server binds to.")
    port: int = Field(default=8000, description="Port the web server listens on.")
    secret_key: str = Field(
        default="",
        description="Key that signs session cookies and CSRF tokens. Empty: a random key is generated "
        "per process and written to data_dir/secret.key so that it survives restarts.",
    )
    data_dir: Path = Field(
        default=Path("./var"),
        description="Directory for files stopnet keeps outside the database (secret key, uploads, reports).",
    )
    max_upload_bytes: int = Field(
        default=20 * 1024 * 1024, description="Largest file accepted by an upload or bulk import, in bytes."
    )
    max_import_rows: int = Field(
        default=200_000, description="Most data rows accepted in one bulk import file."
    )
    page_size_default: int = Field(default=50, description="Items per page of API lists when none is asked.")
    page_size_max: int = Field(default=500, description="Largest page size an API list accepts.")
    secure_cookies: bool = Field(
        default=False,
        description="Mark cookies Secure and send HSTS; set true when served behind TLS.",
    )
    session_hours: int = Field(default=12, description="Lifetime of a signed-in session, in hours.")
    sql_echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings (read from the environment once)."""
    return Settings()
