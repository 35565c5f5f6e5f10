"""Engine and session factory.

The request, job or CLI command owns the transaction (:func:`session_scope`); services only flush.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from stopnet.config import Settings


def normalise_url(url: str) -> str:
    """Use psycopg 3 for plain ``postgresql://`` URLs."""
    if url.startswith("postgresql://") or url.startswith("postgres://"):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return url


def make_engine(url: str, *, echo: bool = False) -> Engine:
    url = normalise_url(url)
    kwargs: dict[str, Any] = {"echo": echo, "future": True}
    if make_url(url).get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
        # As many connections as the web process has threads (anyio's pool: 40), kept open: with a
        # smaller pool, bursts opened and closed overflow connections all the time, and a request could
        # wait for one (benchmarks/load.py: p99 2.4 s -> under 1 s). Two workers stay under PostgreSQL's
        # default max_connections of 100.
        kwargs["pool_size"] = 30
        kwargs["max_overflow"] = 10
    engine = create_engine(url, **kwargs)
    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

    return engine


def make_sessionmaker(engine: Engine, info: dict[str, Any] | None = None) -> sessionmaker[Session]:
    """Sessions on ``engine``; ``info`` (e.g. the audit keys, :func:`stopnet.core.keys.session_info`)
    is given to each session."""
    return sessionmaker(bind=engine, expire_on_commit=False, autoflush=True, info=info)


def sessions_for(settings: Settings) -> sessionmaker[Session]:
    """The installation's sessions: its database, and the keys that extend its audit chain."""
    from stopnet.core.keys import session_info

    return make_sessionmaker(
        make_engine(settings.database_url, echo=settings.sql_echo), info=session_info(settings)
    )


@contextmanager
def session_scope(factory: sessionmaker[Session]) -> Iterator[Session]:
    """One unit of work: commit on success, roll back on error."""
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
