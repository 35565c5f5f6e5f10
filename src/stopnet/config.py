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
        description="The installation's secret: signs session cookies and CSRF tokens, and keys the audit "
        "chain and its signed checkpoints (docs/security.md). Empty: a random key is generated once and "
        "written to data_dir/secret.key. Keep it, and keep it out of database backups: without it the audit "
        "trail can no longer be verified.",
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
    sign_in_limit_per_ip: int = Field(
        default=30,
        ge=1,
        description="Sign-in attempts accepted from one address in a minute (then HTTP 429).",
    )
    sign_in_limit_per_account: int = Field(
        default=20, ge=1, description="Sign-in steps accepted for one account in 5 minutes (then HTTP 429)."
    )
    token_requests_per_minute: int = Field(
        default=1200,
        ge=1,
        description="Requests accepted from one API token in a minute (then HTTP 429 with Retry-After); "
        "counted per worker process.",
    )
    sql_echo: bool = Field(default=False, description="Log every SQL statement (debugging only).")
    smtp_host: str = Field(
        default="",
        description="SMTP server that sends e-mail notifications (mentions, alerts). Empty: no e-mail is sent.",
    )
    smtp_port: int = Field(default=25, description="Port of the SMTP server.")
    smtp_from: str = Field(default="stopnet@localhost", description="Sender address of notification e-mails.")
    smtp_starttls: bool = Field(default=False, description="Upgrade the SMTP connection with STARTTLS.")
    smtp_username: str = Field(default="", description="SMTP user name; empty: no SMTP authentication.")
    smtp_password: str = Field(default="", description="SMTP password (with smtp_username).")
    public_url: str = Field(
        default="", description="Base URL of the site, used in links of notification e-mails (empty: paths)."
    )
    feed_broker: str = Field(
        default="auto",
        description="How live-feed events reach every worker: postgres (LISTEN/NOTIFY), local (one process, "
        "in-process signal plus polling) or auto (postgres on PostgreSQL, local on SQLite).",
    )
    feed_poll_seconds: float = Field(
        default=2.0,
        description="Each worker also reads new outbox events this often, so a lost notification only delays.",
    )
    feed_heartbeat_seconds: float = Field(
        default=15.0, description="Interval of keep-alive comments on idle live-feed streams, in seconds."
    )
    feed_stream_seconds: int = Field(
        default=600,
        description="Longest life of one live-feed stream, in seconds; the browser then reconnects with "
        "Last-Event-ID and misses nothing.",
    )
    attachment_max_bytes: int = Field(
        default=10 * 1024 * 1024, description="Largest attachment of an alert or a message, in bytes."
    )
    attachment_types: str = Field(
        default="application/pdf,image/png,image/jpeg,text/plain,text/csv",
        description="Comma-separated content types accepted as attachments (the file's bytes are checked too).",
    )
    pseudonym_key: str = Field(
        default="",
        description="Master key of the pseudonyms of consignment senders and consignees (HMAC-SHA256; each "
        "administration gets its own key derived from it). Empty: the secret key is used. Set it, and keep it, "
        "in production: changing it breaks the links between stored and new consignments.",
    )


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Return the process's settings (read from the environment once)."""
    return Settings()
