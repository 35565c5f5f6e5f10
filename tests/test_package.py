"""Process-wide settings made when stopnet is imported."""

from __future__ import annotations

import os
import subprocess
import sys

import stopnet


def _env_after_import(env: dict[str, str]) -> str:
    code = "import os, stopnet; print(os.environ.get('_RJEM_MALLOC_CONF', ''))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def test_polars_allocator_keeps_freed_pages_unless_told_otherwise() -> None:
    base = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    assert _env_after_import(base) == stopnet.POLARS_ALLOCATOR_CONF
    assert "dirty_decay_ms:60000" in stopnet.POLARS_ALLOCATOR_CONF
    # an operator's own setting wins
    assert _env_after_import({**base, "_RJEM_MALLOC_CONF": "dirty_decay_ms:1000"}) == "dirty_decay_ms:1000"


def test_polars_starts_with_the_setting() -> None:
    # jemalloc rejects a malformed option on stderr when polars loads: stopnet's must load cleanly
    base = {k: v for k, v in os.environ.items() if k != "_RJEM_MALLOC_CONF"}
    code = "import stopnet, polars as pl; print(pl.DataFrame({'a': [1, 2]}).height)"
    done = subprocess.run([sys.executable, "-c", code], env=base, capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "2"
    assert "jemalloc" not in done.stderr, done.stderr
