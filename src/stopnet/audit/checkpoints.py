"""Signed checkpoints of the audit chain's head, kept outside the database.

A checkpoint says "the trail had ``count`` entries and the newest had hash ``head``", signed with the
installation's Ed25519 key (the idea of Certificate Transparency's signed tree heads). After each commit
that adds entries, ``head.json`` in the audit directory is moved forward (never back), and the first
checkpoint of each hour is appended to ``checkpoints.jsonl``; daily reports print the head too. A copy
kept anywhere lets ``stopnet audit verify --checkpoint`` prove that no entry up to it was cut or rewritten.
"""

from __future__ import annotations

import base64
import datetime as dt
import fcntl
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from stopnet.core.keys import AuditKeys

HEAD = "head.json"
LOG = "checkpoints.jsonl"


@dataclass(frozen=True)
class Checkpoint:
    count: int
    head: str
    at: str
    key: str
    signature: str = ""

    def message(self) -> bytes:
        return f"stopnet-audit-checkpoint v1\n{self.count}\n{self.head}\n{self.at}".encode()

    @classmethod
    def sign(cls, keys: AuditKeys, count: int, head: str, at: dt.datetime | None = None) -> Checkpoint:
        when = (at or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
        unsigned = cls(count=count, head=head, at=when, key=keys.public_key_hex())
        signature = base64.b64encode(keys.signer.sign(unsigned.message())).decode()
        return cls(count=count, head=head, at=when, key=unsigned.key, signature=signature)

    def valid_for(self, public_key: Ed25519PublicKey) -> bool:
        try:
            public_key.verify(base64.b64decode(self.signature), self.message())
        except (InvalidSignature, ValueError):
            return False
        return True

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, raw: str | dict[str, Any]) -> Checkpoint:
        data = json.loads(raw) if isinstance(raw, str) else raw
        return cls(
            count=int(data["count"]),
            head=str(data["head"]),
            at=str(data["at"]),
            key=str(data.get("key", "")),
            signature=str(data.get("signature", "")),
        )


def latest(directory: Path) -> Checkpoint | None:
    path = directory / HEAD
    if not path.exists():
        return None
    return Checkpoint.from_json(path.read_text())


def read(directory: Path) -> list[Checkpoint]:
    """Every checkpoint kept in the directory: the hourly log and the current head."""
    found: list[Checkpoint] = []
    log = directory / LOG
    if log.exists():
        found += [Checkpoint.from_json(line) for line in log.read_text().splitlines() if line.strip()]
    head = latest(directory)
    if head is not None:
        found.append(head)
    return found


def store_head(keys: AuditKeys, count: int, head: str) -> Checkpoint | None:
    """Sign and keep the head if it is newer than the one kept (processes may commit out of order)."""
    if keys.directory is None:
        return None
    directory = keys.directory
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        current = latest(directory)
        if current is not None and current.count >= count:
            return None
        checkpoint = Checkpoint.sign(keys, count, head)
        fd, tmp = tempfile.mkstemp(dir=directory, prefix=".head-")
        with os.fdopen(fd, "w") as f:
            f.write(checkpoint.to_json())
        os.replace(tmp, directory / HEAD)
        if current is None or current.at[:13] != checkpoint.at[:13]:
            with open(directory / LOG, "a") as log:
                log.write(checkpoint.to_json() + "\n")
        return checkpoint
