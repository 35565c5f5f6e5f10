"""The risk-profile expression language: safety, error messages, semantics, statistics."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stopnet.risk import rules as rules_module
from stopnet.risk.consignments import CONSIGNMENT_SCHEMA
from stopnet.risk.rules import (
    MAX_DEPTH,
    MAX_LENGTH,
    Rule,
    RuleError,
    compile_expression,
    compile_rules,
    evaluate_rules,
    load_rules,
    parse_expression,
    rule_performance,
)


@pytest.fixture
def frame() -> pl.DataFrame:
    return pl.DataFrame(
        {
            "consignment_id": ["a", "b", "c", "d", "e"],
            "declared_at": [dt.datetime(2026, 1, d, 10) for d in (5, 6, 12, 13, 20)],
            "arrival_date": [dt.date(2026, 1, d) for d in (7, 8, 14, 15, 22)],
            "channel": ["EXPRESS", "POSTAL", "EXPRESS", "EXPRESS", None],
            "carrier": ["DHL", "China Post", "SwiftXpress", "SwiftXpress", "UPS"],
            "sender_id": ["s1", "s2", "s3", "s1", "s9"],
            "origin_country": ["CN", "CN", "HK", "TR", "CN"],
            "description": ["Running SHOES", "Book", "sneakers", "Gift", None],
            "declared_value": [20.0, 5.0, 4.0, 100.0, 3.0],
            "weight_kg": [1.0, 0.5, 2.0, 0.0, 1.0],
            "quantity": [1, 2, 3, 4, 5],
            "inspected": [True, True, False, True, None],
            "seized": [True, False, None, False, None],
        }
    )


def hits(frame: pl.DataFrame, expression: str, lists: dict | None = None) -> list[bool]:
    schema = dict(frame.schema)
    return frame.select(compile_expression(expression, schema, lists).alias("h"))["h"].to_list()


# --------------------------------------------------------------------------------------------------
# safety
# --------------------------------------------------------------------------------------------------

MALICIOUS = [
    "__import__('os').system('touch {marker}')",
    '__import__("os").system("touch {marker}")',
    "os.system('touch {marker}')",
    "channel.__class__",
    "channel.upper()",
    "lambda: open('{marker}', 'w')",
    "(lambda x: x)(1) == 1",
    "eval('1') == 1",
    "exec('x=1')",
    "open('{marker}', 'w')",
    "getattr(channel, 'upper')",
    "globals()",
    "[c for c in channel]",
    "channel[0] == 'E'",
    "channel = 'EXPRESS'",
    "channel == 'EXPRESS'; import os",
    "channel == 'EXPRESS' && quantity > 1",
    "{{'a': 1}}",
    "`ls`",
    "quantity ** 2 > 1",
    "print(1)",
    "breakpoint()",
    "compile('1', 'x', 'eval')",
    "sum([1, 2]) > 1",
    "x == 1",
    "unknown_field == 'a'",
]


@pytest.mark.parametrize("template", MALICIOUS)
def test_malicious_expressions_are_rejected_and_nothing_runs(template: str, tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    expression = template.format(marker=marker)
    with pytest.raises(RuleError) as info:
        compile_expression(expression, CONSIGNMENT_SCHEMA)
    assert not marker.exists()
    # the message says what is wrong and where
    assert str(info.value)
    assert info.value.position is None or 0 <= info.value.position <= len(expression)


@pytest.mark.parametrize(
    ("expression", "message", "position"),
    [
        ("__import__('os')", "not allowed", 0),
        ("channel.lower() == 'x'", "attribute access", 7),
        ("lambda: 1", "'lambda' is not allowed", 0),
        ("chanel == 'EXPRESS'", "unknown field 'chanel'; did you mean 'channel'", 0),
        ("foo(channel) == 1", "unknown function 'foo'", 0),
        ("channel == 1", "cannot compare text with number", 8),
        ("channel = 'x'", "use '=='", 8),
        ("quantity > ", "expected a value, found end of expression", 11),
        ("(quantity > 1", "expected ')'", 13),
        ("description ~ '('", "invalid regular expression", 12),
        ("sender_id in @watch", "unknown list @watch", 13),
        ("quantity + 1", "must be a condition", 0),
        ("channel[0] == 'x'", "indexing is not allowed", 7),
        ("'abc", "unterminated string", 0),
    ],
)
def test_errors_name_the_problem_and_position(expression: str, message: str, position: int) -> None:
    with pytest.raises(RuleError) as info:
        compile_expression(expression, CONSIGNMENT_SCHEMA)
    assert message in str(info.value)
    assert info.value.position == position
    assert f"(at position {position})" in str(info.value)


def test_very_long_and_deeply_nested_input_is_rejected() -> None:
    long_expr = " or ".join(["quantity > 1"] * (MAX_LENGTH // 10))
    assert len(long_expr) > MAX_LENGTH
    with pytest.raises(RuleError, match="too long"):
        compile_expression(long_expr, CONSIGNMENT_SCHEMA)
    deep = "(" * (MAX_DEPTH + 5) + "quantity > 1" + ")" * (MAX_DEPTH + 5)
    with pytest.raises(RuleError, match="nested too deeply"):
        compile_expression(deep, CONSIGNMENT_SCHEMA)
    with pytest.raises(RuleError, match="nested too deeply"):
        compile_expression("not " * (MAX_DEPTH + 5) + "quantity > 1", CONSIGNMENT_SCHEMA)
    with pytest.raises(RuleError, match="nested too deeply"):
        compile_expression("-" * (MAX_DEPTH + 5) + "quantity > 1", CONSIGNMENT_SCHEMA)
    # nesting well below the limit is fine
    ok = "(" * 10 + "quantity > 1" + ")" * 10
    compile_expression(ok, CONSIGNMENT_SCHEMA)


def test_the_module_never_evaluates_python() -> None:
    source = Path(rules_module.__file__).read_text()
    code = "\n".join(line.split("#")[0] for line in source.splitlines())
    assert not re.search(r"\b(eval|exec)\s*\(", code)
    assert "import ast" not in code and "from ast" not in code
    assert "__import__" not in code.replace('"__import__', "").replace("'__import__", "")


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=80))
def test_arbitrary_text_only_ever_raises_rule_error(text: str) -> None:
    with contextlib.suppress(RuleError):
        compile_expression(text, CONSIGNMENT_SCHEMA)


_WORDS = st.sampled_from(
    ["quantity", "description", "==", ">", "~", "and", "not", "in", "(", ")", "'x'", "1"]
)


@settings(max_examples=500, deadline=None)
@given(
    st.lists(
        st.one_of(st.text(st.characters(exclude_categories=("Cs",)), min_size=1, max_size=6), _WORDS),
        max_size=12,
    ).map(" ".join)
)
def test_text_in_any_script_parses_or_gets_an_error_with_its_position(text: str) -> None:
    """Letters, digits and signs of every script (not only ASCII): a rule compiles or is refused with a
    RuleError that names the position of the problem, never another exception."""
    try:
        compile_expression(text, CONSIGNMENT_SCHEMA)
    except RuleError as e:
        assert e.position is not None and 0 <= e.position <= len(text), (text, e)


@pytest.mark.parametrize(
    ("expression", "message", "position"),
    [
        ("é", "unknown field 'é'", 0),
        ("²", "'²' is not a digit of a number (use 0-9)", 0),
        ("quantity > ٣", "'٣' is not a digit of a number (use 0-9)", 11),
        ("quantity > 1²", "malformed number '1²'", 11),
        ("prénom == 'Zoë'", "unknown field 'prénom'", 0),
        ("quantity > 1 and 数量 > 2", "unknown field '数量'", 17),
    ],
)
def test_non_ascii_letters_and_digits_get_a_clear_error(expression: str, message: str, position: int) -> None:
    with pytest.raises(RuleError) as caught:
        compile_expression(expression, CONSIGNMENT_SCHEMA)
    assert caught.value.message.startswith(message), caught.value.message
    assert caught.value.position == position


def test_strings_in_any_script_compile() -> None:
    compile_expression("description ~ 'café|運動鞋|кроссовки|أحذية'", CONSIGNMENT_SCHEMA)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.sampled_from(["quantity > 1", "channel == 'POSTAL'", "description ~ 'shoe'", "true"]),
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from([" and ", " or "]), inner).map("".join),
            inner.map(lambda s: f"not ({s})"),
        ),
        max_leaves=12,
    )
)
def test_generated_valid_expressions_compile(expression: str) -> None:
    compile_expression(expression, CONSIGNMENT_SCHEMA)


# --------------------------------------------------------------------------------------------------
# semantics
# --------------------------------------------------------------------------------------------------


def test_semantics_of_the_issue_example(frame: pl.DataFrame) -> None:
    expression = (
        'channel == "EXPRESS" and origin_country in ("CN","HK") and declared_value / weight_kg < 5 '
        'and description ~ "sneaker|shoe"'
    )
    assert hits(frame, expression) == [False, False, True, False, False]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("quantity >= 3", [False, False, True, True, True]),
        ("quantity != 3 and quantity <= 4", [True, True, False, True, False]),
        ("not quantity > 2", [True, True, False, False, False]),
        ("quantity % 2 == 0", [False, True, False, True, False]),
        ("-quantity < -4", [False, False, False, False, True]),
        ("declared_value - quantity * 2 > 0", [True, True, False, True, False]),
        ("description ~ 'shoe'", [True, False, False, False, False]),  # case-insensitive
        ("description !~ 'shoe|book'", [False, False, True, True, False]),  # null -> no hit
        ("lower(carrier) == 'dhl'", [True, False, False, False, False]),
        ("upper(origin_country) in ['HK']", [False, False, True, False, False]),
        ("len(description) > 5", [True, False, True, False, False]),
        ("abs(declared_value - 10) < 7", [False, True, True, False, False]),
        ("channel == null", [False, False, False, False, True]),
        ("channel != null and channel != 'EXPRESS'", [False, True, False, False, False]),
        ("channel not in ('POSTAL')", [True, False, True, True, False]),  # null channel: no hit
        ("arrival_date >= '2026-01-14'", [False, False, True, True, True]),
        ("declared_at < '2026-01-06T00:00:00'", [True, False, False, False, False]),
        ("inspected and not seized", [False, True, False, True, False]),
        ("inspected == true", [True, True, False, True, False]),
        ("quantity in (1, 5)", [True, False, False, False, True]),
        ("declared_value / weight_kg > 50", [False, False, False, True, False]),  # x/0 = inf
        ("true", [True] * 5),
        ("false or quantity > 4", [False, False, False, False, True]),
        ("1 < 2", [True] * 5),
        ("(quantity < 2 or quantity > 4) and channel == 'EXPRESS'", [True, False, False, False, False]),
        ("quantity > 1 AND channel == 'EXPRESS'", [False, False, True, True, False]),
    ],
)
def test_operator_semantics(frame: pl.DataFrame, expression: str, expected: list[bool]) -> None:
    assert hits(frame, expression) == expected


def test_named_lists(frame: pl.DataFrame) -> None:
    lists: dict[str, list[Any]] = {"watchlist_senders": ["s1", "s9"], "low": [1, 2]}
    assert hits(frame, "sender_id in @watchlist_senders", lists) == [True, False, False, True, True]
    assert hits(frame, "sender_id not in @watchlist_senders", lists) == [False, True, True, False, False]
    assert hits(frame, "quantity in @low", lists) == [True, True, False, False, False]
    with pytest.raises(RuleError, match="holds number values, but the left side is text"):
        compile_expression("sender_id in @low", dict(frame.schema), lists)
    with pytest.raises(RuleError, match="only allowed after 'in'"):
        compile_expression("@low == 1", dict(frame.schema), lists)


def test_parse_tree_has_positions() -> None:
    node = parse_expression("quantity > 1 and channel == 'X'")
    assert isinstance(node, rules_module.Binary)
    assert node.op == "and" and node.pos == 13


def test_evaluate_rules_matrix_weights_and_lists(frame: pl.DataFrame) -> None:
    rules = [
        Rule("R1", "express", "channel == 'EXPRESS'", weight=2.0),
        Rule("R2", "many", "quantity > 3", weight=0.5),
        Rule("R3", "inactive", "true", active=False),
    ]
    result = evaluate_rules(frame, rules)
    assert result.rule_ids == ("R1", "R2")
    assert result.matrix.tolist() == [
        [True, False],
        [False, False],
        [True, False],
        [True, True],
        [False, True],
    ]
    assert result.weighted().tolist() == [2.0, 0.0, 2.0, 2.5, 0.5]
    assert result.hit_lists() == [["R1"], [], ["R1"], ["R1", "R2"], ["R2"]]
    assert result.to_series().to_list() == result.hit_lists()
    with pytest.raises(RuleError, match="duplicate rule id"):
        evaluate_rules(frame, [rules[0], rules[0]])
    with pytest.raises(RuleError, match="rule BAD: unknown field 'nope'"):
        evaluate_rules(frame, [Rule("BAD", "x", "nope == 1")])


def test_rule_validation() -> None:
    with pytest.raises(RuleError, match="invalid rule id"):
        Rule("bad id!", "x", "true")
    with pytest.raises(RuleError, match="weight"):
        Rule("R1", "x", "true", weight=-1)
    with pytest.raises(RuleError, match="version"):
        Rule("R1", "x", "true", version=0)


def test_rule_performance_by_week(frame: pl.DataFrame) -> None:
    rules = [Rule("EXP", "express", "channel == 'EXPRESS'"), Rule("CN", "china", "origin_country == 'CN'")]
    perf = rule_performance(frame, rules)
    rows = {(r["rule_id"], r["period"]): r for r in perf.to_dicts()}
    week1, week2 = dt.date(2026, 1, 5), dt.date(2026, 1, 12)
    assert rows[("EXP", week1)]["hits"] == 1
    assert rows[("EXP", week1)]["inspections"] == 1
    assert rows[("EXP", week1)]["seizures"] == 1
    assert rows[("EXP", week1)]["seizure_rate"] == 1.0
    assert rows[("EXP", week2)]["hits"] == 2
    assert rows[("EXP", week2)]["inspections"] == 1  # c not inspected, d inspected
    assert rows[("EXP", week2)]["seizure_rate"] == 0.0
    assert rows[("CN", week1)]["hits"] == 2 and rows[("CN", week1)]["seizures"] == 1
    assert rows[("CN", dt.date(2026, 1, 19))]["inspections"] == 0
    assert rows[("CN", dt.date(2026, 1, 19))]["seizure_rate"] is None
    assert perf.columns == [
        "rule_id", "rule_version", "period", "hits", "inspections", "seizures", "seizure_rate"
    ]  # fmt: skip


def test_load_rules_json_and_toml(tmp_path: Path) -> None:
    data = {
        "rules": [{"id": "R1", "name": "watch", "expression": "sender_id in @w", "weight": 3, "version": 2}],
        "lists": {"w": ["s1"]},
    }
    js = tmp_path / "rules.json"
    js.write_text(json.dumps(data))
    rules, lists = load_rules(js)
    assert rules == [Rule("R1", "watch", "sender_id in @w", version=2, weight=3.0)]
    assert lists == {"w": ["s1"]}
    toml = tmp_path / "rules.toml"
    toml.write_text(
        '[[rules]]\nid = "R1"\nname = "watch"\nexpression = "sender_id in @w"\nweight = 3\nversion = 2\n'
        '[lists]\nw = ["s1"]\n'
    )
    assert load_rules(toml) == (rules, lists)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"rules": [{"id": "R1", "expression": "true", "code": "x"}]}))
    with pytest.raises(RuleError, match="unknown key"):
        load_rules(bad)


def test_hits_to_series_is_vectorised_and_exact() -> None:
    rng = np.random.default_rng(0)
    matrix = rng.random((1000, 4)) < 0.2
    ids = ("A", "B", "C", "D")
    series = rules_module.hits_to_series(matrix, ids)
    expected = [[ids[j] for j in range(4) if matrix[i, j]] for i in range(1000)]
    assert series.to_list() == expected
    assert rules_module.hits_to_series(np.zeros((3, 0), bool), ()).to_list() == [[], [], []]


_PLAN_RULES = [
    Rule("M1", "plain words", 'description ~ "watch|Pen" and channel in ("POST", "EXPRESS")'),
    Rule("M2", "regex", r'description ~ "^(fake|real) \\w+$" or currency not in ("EUR", "USD")'),
    Rule("M3", "negated", 'description !~ "pen" and origin_country in ("CN", "HK", "TR")'),
    Rule("M4", "a function of the field", 'lower(description) ~ "watch"'),
    Rule("M5", "a long list", "quantity in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10)"),
    Rule("M6", "not in a long list", 'origin_country not in ("A1","A2","A3","A4","A5","A6","A7","A8","CN")'),
]


def _plan_frame(n: int, distinct: int, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    words = ["Watch", "pen", "fake bag", "real shoe", "PENCIL", "gift", "fake  x", None]
    texts = [None if (w := words[i % len(words)]) is None else f"{w} {i}" for i in range(distinct)]
    return pl.DataFrame(
        {
            "description": pl.Series([texts[i] for i in rng.integers(0, distinct, n)], dtype=pl.String),
            "channel": rng.choice(["POST", "EXPRESS", "AIR_CARGO"], n).tolist(),
            "currency": rng.choice(["EUR", "USD", "CNY"], n).tolist(),
            "origin_country": pl.Series(rng.choice(["CN", "HK", "TR", "DE", ""], n)).replace("", None),
            "quantity": pl.Series(rng.integers(0, 14, n)).cast(pl.Int64).scatter([0, 5], [None, None]),
        }
    )


@pytest.mark.parametrize("distinct", [40, 50_000])
def test_distinct_value_matching_gives_the_row_wise_hits(distinct: int) -> None:
    """Text patterns run over a field's distinct values when they repeat (the plan CompiledRules picks
    per frame), and small 'in' lists become comparisons: both give exactly the row-wise hits, nulls
    included (a null is never a hit, also for '!~' and 'not in')."""
    frame = _plan_frame(60_000, distinct)
    compiled = compile_rules(_PLAN_RULES, dict(frame.schema))
    assert compiled.repetitive(frame) is (distinct == 40)
    assert {m.field for m in compiled.matches} == {"description"} and len(compiled.matches) == 3
    hits = compiled.evaluate(frame).matrix
    # the row-wise plan, and plain Python as the reference
    direct = frame.select(e.alias(str(j)) for j, e in enumerate(compiled.exprs)).to_numpy().astype(bool)
    assert np.array_equal(hits, direct)
    rows = frame.to_dicts()

    def match(text: str | None, pattern: str) -> bool:
        return text is not None and re.search(pattern, text, re.IGNORECASE) is not None

    def isin(value: Any, values: tuple[Any, ...]) -> bool:
        return value is not None and value in values

    expected = np.array(
        [
            [
                match(r["description"], "watch|Pen") and isin(r["channel"], ("POST", "EXPRESS")),
                match(r["description"], r"^(fake|real) \w+$")
                or (r["currency"] is not None and r["currency"] not in ("EUR", "USD")),
                r["description"] is not None
                and not match(r["description"], "pen")
                and isin(r["origin_country"], ("CN", "HK", "TR")),
                match(r["description"], "watch"),
                isin(r["quantity"], tuple(range(1, 11))),
                r["origin_country"] is not None and r["origin_country"] != "CN",
            ]
            for r in rows
        ]
    )
    assert np.array_equal(hits, expected)
    assert hits.any(axis=0).all() and not hits.all(axis=0).any()  # every rule hits some rows, not all
