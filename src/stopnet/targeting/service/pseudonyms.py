"""Pseudonyms of consignment parties: one key per administration, derived from the master key."""

from __future__ import annotations

import hmac

import polars as pl

from stopnet.core.errors import FieldError, InvalidInput
from stopnet.risk.consignments import (
    pseudonymise_series,
)


def org_key(master: bytes, org_code: str) -> bytes:
    """The administration's pseudonymisation key, derived from the platform's master key."""
    return hmac.digest(master, b"stopnet-consignment-pseudonym:" + org_code.upper().encode(), "sha256")


def _pseudonymise_frame(frame: pl.DataFrame, key: bytes) -> pl.DataFrame:
    for party in ("sender", "consignee"):
        name_col, id_col = f"{party}_name", f"{party}_id"
        if name_col in frame.columns:
            if id_col in frame.columns:
                raise InvalidInput(
                    [
                        FieldError(
                            name_col, f"give either {name_col} (pseudonymised here) or {id_col}, not both"
                        )
                    ]
                )
            frame = frame.with_columns(
                pseudonymise_series(frame.get_column(name_col), key).alias(id_col)
            ).drop(name_col)
    return frame
