"""Reading uploads within strict limits."""

from __future__ import annotations

from fastapi import UploadFile

from stopnet.core.errors import FieldError, InvalidInput, TooLarge

ALLOWED_SUFFIXES = (".csv", ".xlsx", ".txt")


async def read_upload(file: UploadFile, limit: int) -> bytes:
    name = (file.filename or "").lower()
    if not name.endswith(ALLOWED_SUFFIXES):
        raise InvalidInput(
            [FieldError("file", "only .csv and .xlsx files are accepted", value=file.filename)]
        )
    chunks = []
    size = 0
    while True:
        chunk = await file.read(1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"file larger than the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
