"""Active content in uploaded PDF files: scripts and actions a reader runs when the file is opened.

A PDF that names ``/JavaScript``, ``/JS``, ``/OpenAction``, ``/AA`` (additional actions) or ``/Launch``
is refused. Names are read with their ``#xx`` escapes decoded (``/J#61vaScript``), in the file and in
its compressed (Flate) streams, where object streams can hide them; decompression is bounded.
"""

from __future__ import annotations

import re
import zlib

from stopnet.core.errors import FieldError, InvalidInput

ACTIVE_NAMES = frozenset({b"JavaScript", b"JS", b"OpenAction", b"AA", b"Launch"})
#: Most bytes decompressed from the streams of one file (a Flate bomb stops there).
MAX_INFLATED = 64 * 1024 * 1024

_NAME = re.compile(rb"/([^\s/<>\[\]()%{}]+)")
_HEX = re.compile(rb"#([0-9A-Fa-f]{2})")
_STREAM = re.compile(rb"stream\r?\n")
_ENDSTREAM = re.compile(rb"\r?\n?endstream")


def _names(data: bytes) -> set[bytes]:
    return {_HEX.sub(lambda m: bytes([int(m.group(1), 16)]), m.group(1)) for m in _NAME.finditer(data)}


def _inflated_streams(data: bytes) -> list[bytes]:
    """The Flate-decoded content of every stream that decodes (others are skipped), bounded."""
    out: list[bytes] = []
    budget = MAX_INFLATED
    for start in _STREAM.finditer(data):
        end = _ENDSTREAM.search(data, start.end())
        raw = data[start.end() : end.start() if end else len(data)]
        decoder = zlib.decompressobj()
        try:
            chunk = decoder.decompress(raw, budget)
        except zlib.error:
            continue
        out.append(chunk)
        budget -= len(chunk)
        if budget <= 0:
            break
    return out


def active_content(data: bytes) -> list[str]:
    """The names of active content the PDF holds (sorted; empty when none)."""
    found = _names(data) & ACTIVE_NAMES
    for inner in _inflated_streams(data):
        found |= _names(inner) & ACTIVE_NAMES
    return sorted(f"/{name.decode()}" for name in found)


def refuse_active_content(filename: str, data: bytes) -> None:
    """Raise ``InvalidInput`` (field ``file``) when a PDF holds scripts or actions."""
    found = active_content(data)
    if found:
        raise InvalidInput(
            [
                FieldError(
                    "file",
                    f"the PDF contains scripts or actions that run when it is opened ({', '.join(found)}); "
                    "save it again without them (for example by printing it to a new PDF) and upload that",
                    value=filename,
                )
            ],
            "attachment refused",
        )
