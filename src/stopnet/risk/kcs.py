"""Loader and feature spec for the public KCS synthetic import-declaration data.

Data: Jeong, Kim, Park, Choi, "Customs Import Declaration Datasets" (arXiv:2208.02484), repository
``Seondong/Customs-Declaration-Datasets`` (MIT, (c) 2022 Institute for Basic Science & Korea Customs
Service). Two published versions share rows and labels: one with ``HS6 Code`` and one (2022-06-03) with
``HS10 Code``. :func:`read_kcs` reads either and renames the columns to the snake_case names used by
:mod:`stopnet.risk.consignments` (``importer_id``, ``hs_code``, ``fraud``...). HS codes are kept as text
and left-padded with zeros to 6 or 10 digits (the CSV stores them as integers, losing leading zeros).
"""

from __future__ import annotations

from pathlib import Path

import polars as pl

from stopnet.risk.features import FeatureSpec

__all__ = [
    "KCS_COLUMNS",
    "KCS_HS10_SPEC",
    "KCS_SPEC",
    "KcsFormatError",
    "hs_digits",
    "kcs_spec",
    "read_kcs",
]

#: Original KCS column name -> snake_case name.
KCS_COLUMNS: dict[str, str] = {
    "Declaration ID": "declaration_id",
    "Date": "date",
    "Office ID": "office_id",
    "Process Type": "process_type",
    "Import Type": "import_type",
    "Import Use": "import_use",
    "Payment Type": "payment_type",
    "Mode of Transport": "mode_of_transport",
    "Declarant ID": "declarant_id",
    "Importer ID": "importer_id",
    "Seller ID": "seller_id",
    "Courier ID": "courier_id",
    "HS6 Code": "hs_code",
    "HS10 Code": "hs_code",
    "Country of Departure": "departure_country",
    "Country of Origin": "origin_country",
    "Tax Rate": "tax_rate",
    "Tax Type": "tax_type",
    "Country of Origin Indicator": "origin_indicator",
    "Net Mass": "net_mass",
    "Item Price": "item_price",
    "Fraud": "fraud",
    "Critical Fraud": "critical_fraud",
}

_STRING_COLS = (
    "declaration_id",
    "office_id",
    "process_type",
    "import_type",
    "import_use",
    "payment_type",
    "mode_of_transport",
    "declarant_id",
    "importer_id",
    "seller_id",
    "courier_id",
    "hs_code",
    "departure_country",
    "origin_country",
    "tax_type",
    "origin_indicator",
)
_FLOAT_COLS = ("tax_rate", "net_mass", "item_price")
_REQUIRED = ("date", "importer_id", "declarant_id", "hs_code", "net_mass", "item_price")


class KcsFormatError(ValueError):
    """The file is not in the KCS declaration format."""


def read_kcs(path: str | Path, *, n_rows: int | None = None) -> pl.DataFrame:
    """Read a KCS CSV (HS6 or HS10 version) into snake_case columns.

    Types: ``date`` Date; ids, codes and countries String (empty -> null); ``hs_code`` zero-padded text of
    6 or 10 digits; ``tax_rate``/``net_mass``/``item_price`` Float64; ``fraud``/``critical_fraud`` Int8
    when present (unlabelled files are accepted). Columns already in snake_case are accepted too.
    """
    raw = pl.read_csv(path, infer_schema=False, n_rows=n_rows)
    return coerce_kcs(raw)


def coerce_kcs(raw: pl.DataFrame) -> pl.DataFrame:
    """Rename and cast a KCS frame (original or snake_case headers) to the documented types."""
    digits = 10 if "HS10 Code" in raw.columns else 6
    frame = raw.rename({c: KCS_COLUMNS[c] for c in raw.columns if c in KCS_COLUMNS})
    missing = [c for c in _REQUIRED if c not in frame.columns]
    if missing:
        raise KcsFormatError(f"missing KCS column(s): {', '.join(missing)}")
    if "HS10 Code" not in raw.columns and "HS6 Code" not in raw.columns:
        lengths = frame["hs_code"].cast(pl.String).str.len_chars().max()
        digits = 10 if isinstance(lengths, int) and lengths > 6 else 6
    exprs: list[pl.Expr] = []
    for c in frame.columns:
        col = pl.col(c)
        if c == "date":
            exprs.append(col.cast(pl.String).str.strip_chars().str.to_date("%Y-%m-%d"))
        elif c == "hs_code":
            exprs.append(col.cast(pl.String).str.strip_chars().str.zfill(digits))
        elif c in _STRING_COLS:
            s = col.cast(pl.String).str.strip_chars()
            exprs.append(pl.when(s == "").then(None).otherwise(s).alias(c))
        elif c in _FLOAT_COLS:
            exprs.append(col.cast(pl.Float64))
        elif c in ("fraud", "critical_fraud"):
            exprs.append(col.cast(pl.Float64).cast(pl.Int8))
        else:
            exprs.append(col)
    try:
        out = frame.select(exprs)
    except pl.exceptions.PolarsError as exc:  # pragma: no cover - message depends on polars
        raise KcsFormatError(f"cannot parse KCS data: {exc}") from exc
    if out["date"].null_count():
        raise KcsFormatError("column Date has missing or unparsable values")
    bad = out.filter(~pl.col("hs_code").str.contains(r"^[0-9]{6,10}$"))
    if bad.height:
        raise KcsFormatError(f"HS code must be 6-10 digits: {bad['hs_code'][0]!r}")
    return out


def hs_digits(frame: pl.DataFrame) -> int:
    """6 or 10: the HS precision of a frame read with :func:`read_kcs`."""
    longest = frame["hs_code"].str.len_chars().max() if frame.height else 6
    return 10 if isinstance(longest, int) and longest > 6 else 6


_PARTIES = ("importer_id", "declarant_id", "seller_id", "courier_id")


def kcs_spec(digits: int = 6, *, profiles: bool = True) -> FeatureSpec:
    """The feature spec for KCS declarations with ``digits``-digit HS codes (6 or 10).

    ``profiles=False`` drops the *declared-goods profile* histories: keys built from the declared value or
    mass (HS code x unit-price level, x binned or exact item price / net mass). On the synthetic KCS data
    about 78 % of the rows repeat an earlier (HS, net mass, item price) profile whose label is almost
    deterministic (a generator artefact), which these keys exploit; real declarations rarely repeat
    exactly, so the variant without them is the better guide to performance on other data. The
    non-label value features (value per kg, ratio to the HS median...) are kept in both variants.
    """
    if digits not in (6, 10):
        raise ValueError("digits must be 6 or 10")
    levels = (2, 4, 6) if digits == 6 else (2, 4, 6, 10)
    hs = f"hs{digits}"
    route = ("departure_country", "origin_country")
    history: list[tuple[str, ...]] = [
        ("importer_id",),
        ("declarant_id",),
        ("seller_id",),
        ("courier_id",),
        ("hs2",),
        ("hs4",),
        ("hs6",),
        ("office_id",),
        ("origin_country",),
        ("departure_country",),
        route,
        ("tax_type",),
        ("importer_id", hs),
        ("declarant_id", hs),
        ("seller_id", hs),
        ("importer_id", "declarant_id"),
        ("importer_id", "seller_id"),
        ("declarant_id", "office_id"),
        (hs, "origin_country"),
        (hs, "office_id"),
        (hs, "tax_type"),
        ("hs4", *route),
        ("seller_id", "origin_country"),
    ]
    if profiles:
        # Declared-goods profiles: the same goods line (HS code, unit price, mass, price) seen before.
        history += [
            (hs, "price_level"),
            (hs, "item_price_lb3"),
            (hs, "net_mass_lb3"),
            (hs, "origin_country", "item_price_lb3"),
            (hs, "item_price"),
            (hs, "net_mass"),
            ("item_price",),
            ("net_mass",),
            (hs, "net_mass", "item_price"),
        ]
    if digits == 10:
        history.insert(7, ("hs10",))
    return FeatureSpec(
        categorical=(
            "office_id",
            "process_type",
            "import_type",
            "import_use",
            "payment_type",
            "mode_of_transport",
            "tax_type",
            "origin_indicator",
            "departure_country",
            "origin_country",
            "hs2",
        ),
        numeric=("tax_rate", "net_mass", "item_price"),
        history_keys=tuple(history),
        frequency_keys=(
            *((p,) for p in _PARTIES),
            (hs,),
            ("importer_id", hs),
            *(((hs, "price_level"),) if profiles else ()),
        ),
        same_day_keys=(("importer_id",), ("declarant_id",), ("seller_id",)),
        hs_col="hs_code",
        hs_levels=levels,
        value_col="item_price",
        mass_col="net_mass",
        tax_rate_col="tax_rate",
        price_level=profiles,
        log_bins=(("item_price", 3), ("net_mass", 3)) if profiles else (),
        date_parts=True,
        smoothing=10.0,
        label_delay_days=0,
    )


#: Spec for the HS6 version (``df_syn_*_eng.csv``).
KCS_SPEC: FeatureSpec = kcs_spec(6)
#: Spec for the HS10 version (``hs10-v2022-06-03/``).
KCS_HS10_SPEC: FeatureSpec = kcs_spec(10)
