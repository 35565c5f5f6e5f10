"""Files of guides and verification requests: photos and attachments checked and stored."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from stopnet.core.errors import FieldError, InvalidInput, TooLarge
from stopnet.core.pdf import refuse_active_content
from stopnet.db.models.rightsholders import (
    RightsFile,
)

from ..schemas import (
    AttachmentOut,
)
from .constants import FILES_DIR, MAX_ATTACHMENT_BYTES


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    size: int
    content_type: str


_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png", (".png",)),
    (b"\xff\xd8\xff", "image/jpeg", (".jpg", ".jpeg")),
    (b"%PDF-", "application/pdf", (".pdf",)),
)


def sniff_type(filename: str, data: bytes) -> str:
    """The content type of a photo (PNG, JPEG, WebP) or PDF, from its bytes; anything else refused."""
    name = filename.lower()
    for magic, ctype, suffixes in _SIGNATURES:
        if data.startswith(magic):
            if not name.endswith(suffixes):
                break
            if ctype == "application/pdf":
                refuse_active_content(filename, data)
            return ctype
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP" and name.endswith(".webp"):
        return "image/webp"
    raise InvalidInput(
        [FieldError("file", "only photos (.png, .jpg, .webp) and .pdf files are accepted", value=filename)]
    )


def file_path(data_dir: Path, sha256: str) -> Path:
    return Path(data_dir) / FILES_DIR / sha256[:2] / sha256


def store_file(data_dir: Path, filename: str, data: bytes, max_bytes: int) -> StoredFile:
    """Check and store a file under ``data_dir/rightsholders/`` by its SHA-256 (stored once)."""
    limit = min(max_bytes, MAX_ATTACHMENT_BYTES)
    if len(data) > limit:
        raise TooLarge(f"file larger than the limit of {limit} bytes")
    if not data:
        raise InvalidInput([FieldError("file", "the file is empty", value=filename)])
    ctype = sniff_type(filename, data)
    sha = hashlib.sha256(data).hexdigest()
    path = file_path(data_dir, sha)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    return StoredFile(sha, len(data), ctype)


def _safe_name(filename: str) -> str:
    base = Path(filename.replace("\\", "/")).name
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>:|?*;')
    return (cleaned.strip() or "file")[:255]


def attachment_out(a: RightsFile) -> AttachmentOut:
    return AttachmentOut(
        id=a.id,
        filename=a.filename,
        content_type=a.content_type,
        size_bytes=a.size_bytes,
        sha256=a.sha256,
        url=f"/api/v1/rights/attachments/{a.id}",
    )
