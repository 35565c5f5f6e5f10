"""E-mail notifications (mentions, alerts) through the configured SMTP server.

Services call :func:`queue`; nothing is sent unless the caller's transaction commits. After the commit
the messages go to one background thread of the process, which sends them with :mod:`smtplib`
(``smtp_host``/``smtp_port``, optional STARTTLS and login) so that no request waits for the mail
server. An empty ``smtp_host`` turns e-mail off (each message is logged instead). A failure is
logged and not retried: the notification is also on the live feed and in the thread's unread count.
"""

from __future__ import annotations

import logging
import smtplib
import threading
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import event
from sqlalchemy.orm import Session, SessionTransaction

from stopnet.config import Settings

log = logging.getLogger("stopnet.sharing.mail")

_KEY = "stopnet.mail.pending"
_executor: ThreadPoolExecutor | None = None
_lock = threading.Lock()
_futures: list[Future[None]] = []


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    sender: str
    starttls: bool
    username: str
    password: str

    @classmethod
    def of(cls, s: Settings) -> SmtpConfig:
        return cls(s.smtp_host, s.smtp_port, s.smtp_from, s.smtp_starttls, s.smtp_username, s.smtp_password)


def link(settings: Settings, path: str) -> str:
    return settings.public_url.rstrip("/") + path if settings.public_url else path


def queue(session: Session, settings: Settings, mails: Sequence[Mail]) -> None:
    """Send ``mails`` after the caller's transaction commits (dropped if it rolls back)."""
    if not mails:
        return
    entries: list[tuple[SmtpConfig, Mail]] = session.info.setdefault(_KEY, [])
    cfg = SmtpConfig.of(settings)
    entries.extend((cfg, m) for m in mails)


def build(cfg: SmtpConfig, mail: Mail) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = cfg.sender
    msg["To"] = mail.to
    msg["Subject"] = mail.subject
    msg["Message-ID"] = make_msgid(domain="stopnet.local")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(mail.body)
    return msg


def send_now(cfg: SmtpConfig, mails: Sequence[Mail]) -> None:
    """Send over one SMTP connection (blocking: call it from a thread)."""
    if not cfg.host:
        for m in mails:
            log.info("e-mail disabled (no smtp_host); not sent to %s: %s", m.to, m.subject)
        return
    with smtplib.SMTP(cfg.host, cfg.port, timeout=15) as smtp:
        if cfg.starttls:
            smtp.starttls()
        if cfg.username:
            smtp.login(cfg.username, cfg.password)
        for m in mails:
            smtp.send_message(build(cfg, m))


def _send_logged(cfg: SmtpConfig, mails: list[Mail]) -> None:
    try:
        send_now(cfg, mails)
    except Exception:
        log.exception("sending %d e-mail(s) through %s:%s failed", len(mails), cfg.host, cfg.port)


def _submit(entries: list[tuple[SmtpConfig, Mail]]) -> None:
    global _executor
    by_cfg: dict[SmtpConfig, list[Mail]] = {}
    for cfg, m in entries:
        by_cfg.setdefault(cfg, []).append(m)
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stopnet-mail")
        _futures[:] = [f for f in _futures if not f.done()]
        for cfg, mails in by_cfg.items():
            _futures.append(_executor.submit(_send_logged, cfg, mails))


def wait_sent(timeout: float = 10.0) -> None:
    """Wait until the mails handed to the sender so far are sent (tests, CLI commands)."""
    with _lock:
        pending = list(_futures)
    for f in pending:
        f.result(timeout=timeout)


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    entries = session.info.pop(_KEY, None)
    if entries:
        _submit(entries)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, previous_transaction: SessionTransaction) -> None:
    if previous_transaction.parent is None:
        session.info.pop(_KEY, None)
