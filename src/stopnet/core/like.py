"""Text search with SQL ``LIKE``: the user's words are matched literally.

``%`` and ``_`` are wildcards of ``LIKE``; a search for ``50%`` or ``a_b`` escapes them (and the escape
character itself) so that it finds those characters, not everything. Use with ``escape=LIKE_ESCAPE``.
"""

from __future__ import annotations

LIKE_ESCAPE = "\\"


def contains_pattern(text: str) -> str:
    """A ``LIKE`` pattern matching ``text`` (lower-cased) anywhere, its wildcards escaped."""
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"
