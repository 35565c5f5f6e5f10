"""Attachments of messages and alerts: checked, stored and read back by those who may."""

from __future__ import annotations

import hashlib
import mimetypes
import os
import re
import tempfile
import unicodedata
from collections.abc import Iterable, Sequence
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from stopnet.access.principal import Principal
from stopnet.audit.service import record
from stopnet.config import Settings
from stopnet.core.errors import FieldError, InvalidInput, NotFound, TooLarge
from stopnet.core.pdf import refuse_active_content
from stopnet.db.models import (
    Operation,
)
from stopnet.db.models.sharing import (
    Alert,
    Attachment,
    Message,
    Thread,
)

from ..schemas import (
    AttachmentOut,
)
from .access import _alert_visible, _require_in_operation, _require_read, _require_write, can_read_thread
from .constants import AttachmentCorrupt

EXTENSIONS = {
    ".pdf": "application/pdf",
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".txt": "text/plain",
    ".csv": "text/csv",
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}


def _is_text(data: bytes) -> bool:
    if b"\x00" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


SIGNATURES = {
    "application/pdf": lambda b: b.startswith(b"%PDF-"),
    "image/png": lambda b: b.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/jpeg": lambda b: b.startswith(b"\xff\xd8\xff"),
    "image/gif": lambda b: b[:6] in (b"GIF87a", b"GIF89a"),
    "text/plain": _is_text,
    "text/csv": _is_text,
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": lambda b: b.startswith(
        b"PK\x03\x04"
    ),
}


def allowed_types(settings: Settings) -> set[str]:
    return {t.strip().lower() for t in settings.attachment_types.split(",") if t.strip()}


def clean_filename(name: str | None) -> str:
    """The base name only, without control characters, at most 255 characters."""
    base = re.split(r"[\\/]", name or "")[-1]
    base = "".join(c for c in unicodedata.normalize("NFC", base) if unicodedata.category(c)[0] != "C")
    base = base.strip().strip(".") or "attachment"
    if len(base) > 255:
        stem, dot, ext = base.rpartition(".")
        base = (stem[: 255 - len(ext) - 1] + dot + ext) if dot and len(ext) < 16 else base[:255]
    return base


def detect_type(filename: str, declared: str | None, data: bytes, settings: Settings) -> str:
    """The content type of an upload: from its name, agreeing with what was declared and its bytes."""
    allowed = allowed_types(settings)
    ext = os.path.splitext(filename)[1].lower()
    by_name = EXTENSIONS.get(ext) or mimetypes.guess_type(filename)[0]
    declared = (declared or "").split(";")[0].strip().lower()
    if declared in ("", "application/octet-stream"):
        declared = ""
    ctype = by_name or declared
    accepted = ", ".join(sorted(allowed))
    if not ctype or ctype not in allowed:
        raise InvalidInput(
            [FieldError("file", f"this type of file is not accepted (accepted: {accepted})", value=filename)],
            "attachment refused",
        )
    if declared and declared != ctype:
        raise InvalidInput(
            [FieldError("file", f"the file is declared as {declared} but named as {ctype}", value=filename)],
            "attachment refused",
        )
    check = SIGNATURES.get(ctype)
    if check is None or not check(data):
        raise InvalidInput(
            [FieldError("file", f"the file's content is not {ctype}", value=filename)], "attachment refused"
        )
    if ctype == "application/pdf":
        refuse_active_content(filename, data)
    return ctype


def storage_root(settings: Settings) -> Path:
    return Path(settings.data_dir).resolve()


def _write_blob(settings: Settings, sha: str, data: bytes) -> str:
    """Store the bytes under data_dir/attachments/<aa>/<sha256> (atomically; once per content)."""
    rel = f"attachments/{sha[:2]}/{sha}"
    path = storage_root(settings) / rel
    if path.exists() and path.stat().st_size == len(data):
        return rel
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return rel


def store_attachment(
    session: Session,
    principal: Principal,
    op: Operation,
    filename: str | None,
    declared_type: str | None,
    data: bytes,
    settings: Settings,
) -> Attachment:
    """Check and store an upload; it stays private to its organisation until an alert or message uses it."""
    _require_write(principal)
    _require_in_operation(session, principal, op.id)
    if len(data) > settings.attachment_max_bytes:
        raise TooLarge(f"attachment larger than the limit of {settings.attachment_max_bytes} bytes")
    name = clean_filename(filename)
    if not data:
        raise InvalidInput([FieldError("file", "the file is empty", value=name)], "attachment refused")
    ctype = detect_type(name, declared_type, data, settings)
    sha = hashlib.sha256(data).hexdigest()
    rel = _write_blob(settings, sha, data)
    att = Attachment(
        operation_id=op.id,
        org_id=principal.org_id,
        uploaded_by_id=principal.user_id,
        filename=name,
        content_type=ctype,
        size=len(data),
        sha256=sha,
        storage_path=rel,
    )
    session.add(att)
    session.flush()
    record(session, principal, "attachment.upload", "attachment", att.id, {"sha256": sha, "size": len(data)})
    return att


def attachment_out(a: Attachment) -> AttachmentOut:
    return AttachmentOut(
        id=a.id,
        filename=a.filename,
        content_type=a.content_type,
        size=a.size,
        sha256=a.sha256,
        url=f"/api/v1/attachments/{a.id}",
        created_at=a.created_at,
    )


def _link_attachments(
    session: Session,
    principal: Principal,
    op_id: int,
    ids: Sequence[int],
    *,
    alert_id: int | None = None,
    message_id: int | None = None,
) -> list[Attachment]:
    if not ids:
        return []
    wanted = list(dict.fromkeys(ids))
    found = {a.id: a for a in session.scalars(select(Attachment).where(Attachment.id.in_(wanted)))}
    errors = []
    for i in wanted:
        a = found.get(i)
        usable = (
            a is not None
            and a.operation_id == op_id
            and a.org_id == principal.org_id
            and (principal.user_id is None or a.uploaded_by_id == principal.user_id)
            and a.alert_id is None
            and a.message_id is None
        )
        if not usable:
            errors.append(
                FieldError(
                    "attachments", "no such unused attachment of yours in this operation", value=str(i)
                )
            )
    if errors:
        raise InvalidInput(errors, "attachments cannot be used")
    out = [found[i] for i in wanted]
    for a in out:
        a.alert_id = alert_id
        a.message_id = message_id
    session.flush()
    return out


def _attachments_of(
    session: Session, *, alert_ids: Iterable[int] = (), message_ids: Iterable[int] = ()
) -> dict[tuple[str, int], list[Attachment]]:
    conds = []
    alert_ids, message_ids = list(alert_ids), list(message_ids)
    if alert_ids:
        conds.append(Attachment.alert_id.in_(alert_ids))
    if message_ids:
        conds.append(Attachment.message_id.in_(message_ids))
    out: dict[tuple[str, int], list[Attachment]] = {}
    if not conds:
        return out
    for a in session.scalars(select(Attachment).where(or_(*conds)).order_by(Attachment.id)):
        key = ("alert", a.alert_id) if a.alert_id is not None else ("message", a.message_id or 0)
        out.setdefault(key, []).append(a)
    return out


def get_attachment(session: Session, principal: Principal, attachment_id: int) -> Attachment:
    """The attachment, if its alert or message is visible to the principal (404 otherwise)."""
    _require_read(principal)
    a = session.get(Attachment, attachment_id)
    if a is None:
        raise NotFound(f"no attachment {attachment_id}")
    if a.alert_id is not None:
        alert = session.get(Alert, a.alert_id)
        visible = alert is not None and _alert_visible(session, principal, alert)
    elif a.message_id is not None:
        msg = session.get(Message, a.message_id)
        thread = session.get(Thread, msg.thread_id) if msg else None
        visible = thread is not None and can_read_thread(session, principal, thread)
    else:
        visible = a.org_id == principal.org_id
    if not visible:
        raise NotFound(f"no attachment {attachment_id}")
    return a


def read_attachment(
    session: Session, principal: Principal, attachment_id: int, settings: Settings
) -> tuple[Attachment, bytes]:
    """The attachment and its bytes, verified against the stored size and SHA-256."""
    a = get_attachment(session, principal, attachment_id)
    path = storage_root(settings) / a.storage_path
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise AttachmentCorrupt(f"the file of attachment {a.id} is missing from storage") from None
    if len(data) != a.size or hashlib.sha256(data).hexdigest() != a.sha256:
        raise AttachmentCorrupt(f"the file of attachment {a.id} does not match its checksum")
    return a, data
