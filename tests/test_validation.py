"""stopnet.core.validation: every kind of pydantic error, in words, with a stable code."""

from __future__ import annotations

import datetime as dt
import enum
from decimal import Decimal
from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from stopnet.core.validation import FieldHint, field_errors, problem

PYDANTIC = (
    "should be",
    "Input should",
    "String should",
    "value is not",
    "pattern",
    "Value error",
    "Field required",
)


class Colour(enum.StrEnum):
    RED = "red"
    BLUE = "blue"


class Inner(BaseModel):
    n: int


class Everything(BaseModel):
    model_config = ConfigDict(extra="forbid")

    whole: int = Field(ge=1, le=120)
    share: float = Field(gt=0, lt=1)
    amount: Decimal = Field(decimal_places=2)
    day: dt.date
    flag: bool
    colour: Colour
    kind: Literal["a", "b"]
    items: list[str] = Field(min_length=1, max_length=2)
    code: str = Field(pattern=r"^\d{4}$", max_length=6)
    name: str = Field(min_length=3)
    inner: Inner
    needed: str


BAD = {
    "whole": "7.5",
    "share": 0,
    "amount": "1.234",
    "day": "2025-02-30",
    "flag": "maybe",
    "colour": "green",
    "kind": "c",
    "items": ["x", "y", "z"],
    "code": "91",
    "name": "ab",
    "inner": [1],
    "extra_field": 1,
}
CODES = {
    "whole": "not_a_whole_number",
    "share": "too_small",
    "amount": "too_many_decimals",
    "day": "not_a_date",
    "flag": "not_yes_no",
    "colour": "not_allowed",
    "kind": "not_allowed",
    "items": "too_many",
    "code": "bad_format",
    "name": "too_short",
    "inner": "wrong_type",
    "extra_field": "unknown_field",
    "needed": "required",
}


def test_every_kind_of_error_is_in_words_with_a_code():
    with pytest.raises(ValidationError) as e:
        Everything.model_validate(BAD)
    hints = {"code": FieldHint("HS code", "4 digits", "3004"), "whole": FieldHint("Days", "1 to 120", "14")}
    errors = field_errors(e.value, hints)
    assert {x.field: x.code for x in errors} == CODES
    for x in errors:
        assert not any(p in x.message for p in PYDANTIC), x
        assert ": " in x.message, x
    by = {x.field: x.message for x in errors}
    assert by["code"] == "HS code: '91' has 2 digits; give 4 digits, e.g. 3004"
    assert by["whole"] == "Days: '7.5' is not a whole number; give 1 to 120, e.g. 14"
    assert by["day"] == "Day: '2025-02-30' is not a date; write YYYY-MM-DD, e.g. 2025-05-14"
    assert by["needed"] == "Needed: required"


def test_a_validators_own_problem_keeps_its_code_and_words():
    class N(BaseModel):
        x: str

        @field_validator("x")
        @classmethod
        def _x(cls, v: str) -> str:
            raise problem("unknown_code", f"{v!r} is not a known code; e.g. AIR")

    with pytest.raises(ValidationError) as e:
        N.model_validate({"x": "BOAT"})
    (x,) = field_errors(e.value, {"x": FieldHint("Transport mode")})
    assert (x.field, x.code, x.message) == (
        "x",
        "unknown_code",
        "Transport mode: 'BOAT' is not a known code; e.g. AIR",
    )
