"""The installation's secret and the keys derived from it.

One secret (``STOPNET_SECRET_KEY``, else ``data_dir/secret.key``) signs session cookies and, through
HKDF with a distinct label each, keys the audit chain's HMAC and the Ed25519 key that signs its
checkpoints. The keys live outside the database: whoever can only write to the database can neither
extend the chain nor sign a head.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from stopnet.config import Settings

AUDIT_KEYS = "stopnet.audit_keys"  # the key of AuditKeys in a session's ``info``


def installation_secret(settings: Settings) -> bytes:
    """``settings.secret_key``, else the key kept in ``data_dir/secret.key`` (created once, mode 0600)."""
    if settings.secret_key:
        return settings.secret_key.encode()
    path = Path(settings.data_dir) / "secret.key"
    if path.exists():
        return path.read_bytes().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32).encode()
    path.write_bytes(key)
    path.chmod(0o600)
    return key


def pseudonym_master(settings: Settings, secret: bytes | None = None) -> bytes:
    """The master key of the pseudonyms (consignment parties, purged consignees): ``STOPNET_PSEUDONYM_KEY``,
    else the installation's secret (``secret`` when the caller holds it already)."""
    if settings.pseudonym_key:
        return str(settings.pseudonym_key).encode()
    return secret if secret is not None else installation_secret(settings)


def derive_key(secret: bytes, label: str, length: int = 32) -> bytes:
    """A key for one purpose, independent of the others derived from the same secret."""
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=label.encode()).derive(secret)


@dataclass(frozen=True)
class AuditKeys:
    """What writing and checking the audit trail needs: the chain key, the signer, where heads are kept."""

    chain_key: bytes
    signer: Ed25519PrivateKey
    directory: Path | None = None

    @classmethod
    def from_secret(cls, secret: bytes, directory: Path | None = None) -> AuditKeys:
        seed = derive_key(secret, "stopnet audit checkpoint signer v1")
        return cls(
            chain_key=derive_key(secret, "stopnet audit chain v1"),
            signer=Ed25519PrivateKey.from_private_bytes(seed),
            directory=directory,
        )

    @property
    def public_key(self) -> Ed25519PublicKey:
        return self.signer.public_key()

    def public_key_hex(self) -> str:
        raw = self.public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        return raw.hex()


def audit_keys(settings: Settings) -> AuditKeys:
    """The installation's audit keys; checkpoints are kept in ``data_dir/audit``."""
    return AuditKeys.from_secret(installation_secret(settings), Path(settings.data_dir) / "audit")


def session_info(settings: Settings) -> dict[str, Any]:
    """The ``info`` every session of this installation carries (see :func:`stopnet.db.engine.sessions_for`)."""
    return {AUDIT_KEYS: audit_keys(settings)}
