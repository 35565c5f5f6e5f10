"""PDF files with active content (scripts and actions), plain, hex-escaped and hidden in streams."""

from __future__ import annotations

import zlib

CLEAN_PDF = b"%PDF-1.4\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"


def _pdf(body: bytes) -> bytes:
    return b"%PDF-1.7\n" + body + b"\ntrailer << /Root 1 0 R >>\n%%EOF\n"


def _object_stream(inner: bytes) -> bytes:
    packed = zlib.compress(inner)
    return _pdf(
        b"5 0 obj << /Type /ObjStm /N 1 /First 4 /Filter /FlateDecode /Length %d >>\nstream\n%s\nendstream\nendobj"
        % (len(packed), packed)
    )


#: name -> (the PDF, the active name it holds)
ACTIVE_PDFS: dict[str, tuple[bytes, str]] = {
    "javascript.pdf": (
        _pdf(b"1 0 obj << /Type /Catalog /Names << /JavaScript 2 0 R >> >> endobj"),
        "/JavaScript",
    ),
    "js.pdf": (_pdf(b"2 0 obj << /S /JavaScript /JS (app.alert(1)) >> endobj"), "/JS"),
    "openaction.pdf": (_pdf(b"1 0 obj << /Type /Catalog /OpenAction 3 0 R >> endobj"), "/OpenAction"),
    "aa.pdf": (_pdf(b"4 0 obj << /Type /Page /AA << /O 3 0 R >> >> endobj"), "/AA"),
    "launch.pdf": (_pdf(b"3 0 obj << /S /Launch /F (cmd.exe) >> endobj"), "/Launch"),
    "escaped.pdf": (_pdf(b"2 0 obj << /S /J#61vaScript /J#53 (x) >> endobj"), "/JS"),
    "compressed.pdf": (
        _object_stream(b"1 0 << /Type /Catalog /OpenAction << /S /JavaScript >> >>"),
        "/OpenAction",
    ),
}
