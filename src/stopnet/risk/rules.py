"""A small, safe expression language for risk profiles, compiled to polars expressions.

Example::

    channel == "EXPRESS" and origin_country in ("CN", "HK")
        and declared_value / weight_kg < 5 and description ~ "sneaker|shoe"
        and not sender_id in @cleared_senders

Grammar (keywords are case-insensitive)::

    expr       := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | comparison
    comparison := sum [ ("=="|"!="|"<"|"<="|">"|">=") sum
                      | ("~"|"!~") STRING
                      | ["not"] "in" (list | "@" NAME) ]
    sum        := product (("+"|"-") product)*
    product    := unary (("*"|"/"|"%") unary)*
    unary      := "-" unary | primary
    primary    := NUMBER | STRING | "true" | "false" | "null" | FIELD
                | FUNCTION "(" expr ("," expr)* ")" | "(" expr ")"
    list       := ("(" | "[") literal ("," literal)* [","] (")" | "]")

The text is tokenised and parsed by hand into a small AST; nothing is ever passed to ``eval``/``exec``
or to Python's own parser. There is no attribute access, no indexing, no lambda and no function call
except the whitelist :data:`FUNCTIONS` (``lower``, ``upper``, ``len``, ``abs``). Field names are
checked against a schema and every operator is type-checked before the expression is compiled to a
polars expression, which is then evaluated vectorised over a DataFrame. ``~`` is a case-insensitive
regular-expression search (Rust ``regex`` syntax: linear time, no back-references). A comparison of a
date / datetime field with a string literal parses the literal as an ISO date. ``x == null`` tests
for a missing value. Rows where a rule evaluates to null count as "no hit".
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import operator
import re
import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Union

import numpy as np
import polars as pl

from stopnet.risk.consignments import CONSIGNMENT_LABEL_SCHEMA, CONSIGNMENT_SCHEMA

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_LENGTH",
    "CompiledRules",
    "Rule",
    "RuleError",
    "RuleHits",
    "any_hit",
    "compile_expression",
    "compile_rules",
    "default_schema",
    "evaluate_rules",
    "hits_to_series",
    "load_rules",
    "parse_expression",
    "rule_performance",
    "rules_from_dict",
    "tokenize",
    "validate_rule",
    "weighted_hits",
]

#: Longest accepted expression text, in characters.
MAX_LENGTH = 4000
#: Deepest accepted nesting (parentheses, not, unary minus, operators).
MAX_DEPTH = 32
#: Most tokens in one expression.
MAX_TOKENS = 1000
#: Most items in one literal list.
MAX_LIST_ITEMS = 500

#: Whitelisted functions: name -> (argument type, result type).
FUNCTIONS: dict[str, tuple[str, str]] = {
    "lower": ("str", "str"),
    "upper": ("str", "str"),
    "len": ("str", "num"),
    "abs": ("num", "num"),
}

_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
# Python keywords / builtins that people might try; rejected with an explicit message.
_FORBIDDEN_NAMES = {
    "lambda", "import", "from", "exec", "eval", "def", "class", "global", "nonlocal", "yield",
    "await", "async", "del", "assert", "with", "return", "raise", "try", "except", "finally",
    "while", "for", "if", "else", "elif", "is", "pass", "break", "continue", "open", "compile",
    "getattr", "setattr", "delattr", "globals", "locals", "vars", "dir",
    "input", "print", "breakpoint", "help", "memoryview", "builtins", "os", "sys", "subprocess",
}  # fmt: skip


class RuleError(ValueError):
    """A rule expression could not be parsed, type-checked or compiled.

    ``position`` is the 0-based character offset in the expression (or ``None``).
    """

    def __init__(self, message: str, position: int | None = None, expression: str | None = None) -> None:
        self.message = message
        self.position = position
        self.expression = expression
        text = message if position is None else f"{message} (at position {position})"
        if expression is not None and position is not None and len(expression) <= 200:
            text += f"\n  {expression}\n  {' ' * position}^"
        super().__init__(text)


# --------------------------------------------------------------------------------------------------
# Tokeniser
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Token:
    kind: str  # NUM, STR, IDENT, KW, LIST, OP, EOF
    value: Any
    pos: int


_OPERATORS = ("==", "!=", "<=", ">=", "!~", "<", ">", "~", "+", "-", "*", "/", "%", "(", ")", "[", "]", ",")
# Numbers are ASCII digits only ("²" or "٣" are not numbers); names are letters, digits and "_" of any
# script (a field of no schema is then refused by name, "unknown field 'prénom'").
_DIGITS = frozenset("0123456789")
_NUMBER_RE = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_IDENT_RE = re.compile(r"[^\W\d]\w*")
_ESCAPES = {"n": "\n", "t": "\t", "\\": "\\", '"': '"', "'": "'"}


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raises :class:`RuleError` with the position of the first bad character."""
    if not isinstance(text, str):
        raise RuleError("expression must be a string")
    if len(text) > MAX_LENGTH:
        raise RuleError(f"expression is too long ({len(text)} characters, limit {MAX_LENGTH})")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
            continue
        if len(tokens) >= MAX_TOKENS:
            raise RuleError(f"expression has too many tokens (limit {MAX_TOKENS})", i, text)
        if ch in "\"'":
            quote, j, chars = ch, i + 1, []
            while True:
                if j >= n:
                    raise RuleError("unterminated string", i, text)
                c = text[j]
                if c == "\\":
                    if j + 1 >= n or text[j + 1] not in _ESCAPES:
                        raise RuleError("invalid escape in string (allowed: \\\" \\' \\\\ \\n \\t)", j, text)
                    chars.append(_ESCAPES[text[j + 1]])
                    j += 2
                    continue
                if c == quote:
                    break
                chars.append(c)
                j += 1
            tokens.append(Token("STR", "".join(chars), i))
            i = j + 1
            continue
        if ch in _DIGITS or (ch == "." and i + 1 < n and text[i + 1] in _DIGITS):
            m = _NUMBER_RE.match(text, i)
            if m is None:  # not reached: the first character always starts a number
                raise RuleError(f"malformed number starting with {ch!r}", i, text)
            raw = m.group(0)
            end = m.end()
            if end < n and (text[end].isalnum() or text[end] == "_" or text[end] == "."):
                raise RuleError(f"malformed number {text[i : end + 1]!r}", i, text)
            value: int | float = float(raw) if any(c in raw for c in ".eE") else int(raw)
            if isinstance(value, float) and not math.isfinite(value):
                raise RuleError("number out of range", i, text)
            tokens.append(Token("NUM", value, i))
            i = end
            continue
        if ch == "@":
            m = _IDENT_RE.match(text, i + 1)
            if m is None:
                raise RuleError("expected a list name after '@'", i, text)
            tokens.append(Token("LIST", m.group(0), i))
            i = m.end()
            continue
        m = _IDENT_RE.match(text, i) if ch.isalpha() or ch == "_" else None
        if m is not None:
            word = m.group(0)
            if word.startswith("__"):
                raise RuleError(f"names starting with '__' are not allowed: {word!r}", i, text)
            if word.lower() in _FORBIDDEN_NAMES:
                raise RuleError(f"{word!r} is not allowed in rule expressions", i, text)
            if word.lower() in _KEYWORDS:
                tokens.append(Token("KW", word.lower(), i))
            else:
                tokens.append(Token("IDENT", word, i))
            i = m.end()
            continue
        if ch == ".":
            raise RuleError("attribute access ('.') is not allowed", i, text)
        for op in _OPERATORS:
            if text.startswith(op, i):
                tokens.append(Token("OP", op, i))
                i += len(op)
                break
        else:
            if ch == "=":
                raise RuleError("use '==' to compare ('=' is not an operator)", i, text)
            if ch in "&|":
                raise RuleError(f"use 'and' / 'or' instead of {ch!r}", i, text)
            if ch in ":{}`;\\$!^":
                raise RuleError(f"character {ch!r} is not allowed", i, text)
            if ch.isdigit() or ch.isnumeric():
                raise RuleError(f"{ch!r} is not a digit of a number (use 0-9)", i, text)
            raise RuleError(f"unexpected character {ch!r}", i, text)
    tokens.append(Token("EOF", None, n))
    return tokens


# --------------------------------------------------------------------------------------------------
# AST
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Field:
    name: str
    pos: int


@dataclass(frozen=True)
class Literal:
    value: str | int | float | bool | None
    pos: int


@dataclass(frozen=True)
class ListLiteral:
    items: tuple[str | int | float | bool, ...]
    pos: int


@dataclass(frozen=True)
class ListRef:
    name: str
    pos: int


@dataclass(frozen=True)
class Unary:
    op: str  # "not" | "-"
    operand: Node
    pos: int


@dataclass(frozen=True)
class Binary:
    op: str
    left: Node
    right: Node
    pos: int


@dataclass(frozen=True)
class Match:
    operand: Node
    pattern: str
    negate: bool
    pos: int


@dataclass(frozen=True)
class In:
    operand: Node
    container: ListLiteral | ListRef
    negate: bool
    pos: int


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Node, ...]
    pos: int


Node = Union[Field, Literal, ListLiteral, ListRef, Unary, Binary, Match, In, Call]  # noqa: UP007

_COMPARISONS = ("==", "!=", "<", "<=", ">", ">=")
_PLAIN_WORD = re.compile(r"^[A-Za-z0-9 _-]+$")
#: ``x in (...)`` with at most this many values compiles to comparisons instead of a hash lookup.
_SMALL_IN = 8
# CompiledRules.evaluate matches text patterns on distinct values for frames of at least
# _DISTINCT_MIN_ROWS rows whose first _DISTINCT_SAMPLE rows hold at most one distinct value in
# _DISTINCT_RATIO for every matched field (descriptions repeat: 71 distinct per million simulated rows).
_DISTINCT_MIN_ROWS = 10_000
_DISTINCT_SAMPLE = 10_000
_DISTINCT_RATIO = 4


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.i = 0
        self.depth = 0

    # helpers -------------------------------------------------------------------------------------
    def peek(self) -> Token:
        return self.tokens[self.i]

    def advance(self) -> Token:
        tok = self.tokens[self.i]
        self.i += 1
        return tok

    def error(self, message: str, tok: Token | None = None) -> RuleError:
        tok = tok or self.peek()
        return RuleError(message, tok.pos, self.text)

    def at_op(self, *ops: str) -> bool:
        tok = self.peek()
        return tok.kind == "OP" and tok.value in ops

    def at_kw(self, *kws: str) -> bool:
        tok = self.peek()
        return tok.kind == "KW" and tok.value in kws

    def expect_op(self, op: str) -> Token:
        if not self.at_op(op):
            raise self.error(f"expected {op!r}, found {_describe(self.peek())}")
        return self.advance()

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise self.error(f"expression is nested too deeply (limit {MAX_DEPTH})")

    def leave(self) -> None:
        self.depth -= 1

    # grammar -------------------------------------------------------------------------------------
    def parse(self) -> Node:
        if self.peek().kind == "EOF":
            raise self.error("empty expression")
        node = self.or_expr()
        if self.peek().kind != "EOF":
            tok = self.peek()
            if tok.kind == "OP" and tok.value == "(":
                raise self.error("function calls are only allowed for " + ", ".join(sorted(FUNCTIONS)))
            raise self.error(f"unexpected {_describe(tok)}")
        return node

    def or_expr(self) -> Node:
        self.enter()
        node = self.and_expr()
        while self.at_kw("or"):
            tok = self.advance()
            node = Binary("or", node, self.and_expr(), tok.pos)
        self.leave()
        return node

    def and_expr(self) -> Node:
        node = self.not_expr()
        while self.at_kw("and"):
            tok = self.advance()
            node = Binary("and", node, self.not_expr(), tok.pos)
        return node

    def not_expr(self) -> Node:
        if self.at_kw("not"):
            tok = self.advance()
            self.enter()
            operand = self.not_expr()
            self.leave()
            return Unary("not", operand, tok.pos)
        return self.comparison()

    def comparison(self) -> Node:
        left = self.sum_expr()
        tok = self.peek()
        if tok.kind == "OP" and tok.value in _COMPARISONS:
            self.advance()
            node: Node = Binary(tok.value, left, self.sum_expr(), tok.pos)
        elif tok.kind == "OP" and tok.value in ("~", "!~"):
            self.advance()
            pat = self.peek()
            if pat.kind != "STR":
                raise self.error(f"{tok.value!r} needs a string literal pattern, found {_describe(pat)}")
            self.advance()
            node = Match(left, pat.value, tok.value == "!~", tok.pos)
        elif tok.kind == "KW" and tok.value in ("in", "not"):
            negate = False
            if tok.value == "not":
                nxt = self.tokens[self.i + 1]
                if not (nxt.kind == "KW" and nxt.value == "in"):
                    return left
                self.advance()
                negate = True
            self.advance()
            node = In(left, self.container(), negate, tok.pos)
        else:
            return left
        after = self.peek()
        if after.kind == "OP" and after.value in (*_COMPARISONS, "~", "!~"):
            raise self.error("chained comparisons are not allowed; combine with 'and'", after)
        return node

    def container(self) -> ListLiteral | ListRef:
        tok = self.peek()
        if tok.kind == "LIST":
            self.advance()
            return ListRef(tok.value, tok.pos)
        if not (tok.kind == "OP" and tok.value in ("(", "[")):
            raise self.error(f'\'in\' needs a list like ("A", "B") or @name, found {_describe(tok)}')
        closing = ")" if tok.value == "(" else "]"
        self.advance()
        items: list[str | int | float | bool] = []
        while not self.at_op(closing):
            items.append(self.list_item())
            if len(items) > MAX_LIST_ITEMS:
                raise self.error(f"literal list is too long (limit {MAX_LIST_ITEMS}); use a named @list")
            if self.at_op(","):
                self.advance()
            elif not self.at_op(closing):
                raise self.error(f"expected ',' or {closing!r} in list, found {_describe(self.peek())}")
        self.advance()
        if not items:
            raise RuleError("empty list", tok.pos, self.text)
        return ListLiteral(tuple(items), tok.pos)

    def list_item(self) -> str | int | float | bool:
        tok = self.peek()
        sign = 1
        if tok.kind == "OP" and tok.value == "-":
            self.advance()
            sign = -1
            tok = self.peek()
            if tok.kind != "NUM":
                raise self.error("expected a number after '-'")
        if tok.kind in ("NUM", "STR"):
            self.advance()
            return tok.value * sign if tok.kind == "NUM" else tok.value
        if tok.kind == "KW" and tok.value in ("true", "false"):
            self.advance()
            return tok.value == "true"
        raise self.error(f"lists may only contain literals, found {_describe(tok)}")

    def sum_expr(self) -> Node:
        node = self.product()
        while self.at_op("+", "-"):
            tok = self.advance()
            node = Binary(tok.value, node, self.product(), tok.pos)
        return node

    def product(self) -> Node:
        node = self.unary()
        while self.at_op("*", "/", "%"):
            tok = self.advance()
            node = Binary(tok.value, node, self.unary(), tok.pos)
        return node

    def unary(self) -> Node:
        if self.at_op("-"):
            tok = self.advance()
            self.enter()
            operand = self.unary()
            self.leave()
            return Unary("-", operand, tok.pos)
        return self.primary()

    def primary(self) -> Node:
        tok = self.peek()
        if tok.kind == "NUM":
            self.advance()
            return Literal(tok.value, tok.pos)
        if tok.kind == "STR":
            self.advance()
            return Literal(tok.value, tok.pos)
        if tok.kind == "KW" and tok.value in ("true", "false", "null"):
            self.advance()
            return Literal({"true": True, "false": False, "null": None}[tok.value], tok.pos)
        if tok.kind == "OP" and tok.value == "(":
            self.advance()
            self.enter()
            node = self.or_expr()
            self.leave()
            if self.at_op(","):
                raise self.error("a list is only allowed after 'in'")
            self.expect_op(")")
            return node
        if tok.kind == "IDENT":
            self.advance()
            name = tok.value
            if self.at_op("("):
                if name not in FUNCTIONS:
                    raise RuleError(
                        f"unknown function {name!r}; allowed functions: {', '.join(sorted(FUNCTIONS))}",
                        tok.pos,
                        self.text,
                    )
                self.advance()
                self.enter()
                args: list[Node] = []
                if not self.at_op(")"):
                    args.append(self.or_expr())
                    while self.at_op(","):
                        self.advance()
                        args.append(self.or_expr())
                self.expect_op(")")
                self.leave()
                return Call(name, tuple(args), tok.pos)
            if self.at_op("["):
                raise self.error("indexing is not allowed")
            return Field(name, tok.pos)
        if tok.kind == "LIST":
            raise self.error("a named list (@name) is only allowed after 'in'")
        raise self.error(f"expected a value, found {_describe(tok)}")


def _describe(tok: Token) -> str:
    if tok.kind == "EOF":
        return "end of expression"
    if tok.kind == "STR":
        return f"string {tok.value!r}"
    if tok.kind == "LIST":
        return f"list @{tok.value}"
    return f"{tok.value!r}"


def parse_expression(text: str) -> Node:
    """Parse ``text`` into an AST (no type checking); raises :class:`RuleError`."""
    return _Parser(text).parse()


# --------------------------------------------------------------------------------------------------
# Type checking and compilation to polars
# --------------------------------------------------------------------------------------------------


def _type_of_dtype(dtype: pl.DataType) -> str:
    if dtype == pl.Boolean:
        return "bool"
    if dtype.is_numeric():
        return "num"
    if dtype == pl.Date:
        return "date"
    if isinstance(dtype, pl.Datetime):
        return "datetime"
    if dtype in (pl.String, pl.Categorical) or isinstance(dtype, pl.Enum):
        return "str"
    return "other"


def _literal_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "num"
    return "str"


def default_schema() -> dict[str, pl.DataType]:
    """Fields rules may use by default: the consignment schema plus label columns."""
    return {**CONSIGNMENT_SCHEMA, **CONSIGNMENT_LABEL_SCHEMA}


@dataclass(frozen=True)
class TextMatch:
    """``field ~ "pattern"`` (case-insensitive regular expression)."""

    field: str
    pattern: str

    def expr(self, text: pl.Expr) -> pl.Expr:
        literals = self.pattern.split("|")
        if all(_PLAIN_WORD.match(w) for w in literals):
            # a plain alternation of ASCII words: Aho-Corasick, same result as the regex, faster
            return text.str.contains_any(literals, ascii_case_insensitive=True)
        return text.str.contains("(?i)" + self.pattern)

    @staticmethod
    def column(index: int) -> str:
        return f"__stopnet_match_{index}"

    def on_distinct(self, values: pl.Series, rows: pl.Series) -> pl.Series:
        """The match of each of ``rows``, computed on its ``values`` (distinct, nulls included):
        rows are looked up among the values that matched; a null row stays null."""
        hit = values.to_frame("v").filter(self.expr(pl.col("v")).fill_null(False)).to_series()
        return rows.is_in(hit.implode())  # null for a null row (tests/risk/test_rules.py)


@dataclass
class _Compiler:
    text: str
    schema: Mapping[str, pl.DataType]
    lists: Mapping[str, Sequence[Any]] | None
    fields_used: set[str] = field(default_factory=set)
    # given: ``field ~ "pattern"`` reads the column of its TextMatch, added to this list, which
    # CompiledRules.evaluate computes on the field's distinct values
    matches: list[TextMatch] | None = None

    def err(self, message: str, node: Any) -> RuleError:
        return RuleError(message, getattr(node, "pos", None), self.text)

    def compile(self, node: Node) -> tuple[pl.Expr, str]:
        if isinstance(node, Field):
            if node.name not in self.schema:
                close = _closest(node.name, self.schema)
                hint = f"; did you mean {close!r}?" if close else ""
                raise self.err(f"unknown field {node.name!r}{hint}", node)
            kind = _type_of_dtype(self.schema[node.name])
            self.fields_used.add(node.name)
            if kind == "other":
                raise self.err(f"field {node.name!r} has unsupported type {self.schema[node.name]}", node)
            return pl.col(node.name), kind
        if isinstance(node, Literal):
            return pl.lit(node.value), _literal_type(node.value)
        if isinstance(node, Unary):
            inner, kind = self.compile(node.operand)
            if node.op == "not":
                self.need(kind, "bool", node, "'not'")
                return ~inner, "bool"
            self.need(kind, "num", node, "unary '-'")
            return -inner, "num"
        if isinstance(node, Call):
            arg_kind, out_kind = FUNCTIONS[node.func]
            if len(node.args) != 1:
                raise self.err(f"{node.func}() takes exactly 1 argument ({len(node.args)} given)", node)
            arg, kind = self.compile(node.args[0])
            self.need(kind, arg_kind, node, f"{node.func}()")
            if node.func == "lower":
                return arg.str.to_lowercase(), out_kind
            if node.func == "upper":
                return arg.str.to_uppercase(), out_kind
            if node.func == "len":
                return arg.str.len_chars().cast(pl.Float64), out_kind
            return arg.abs(), out_kind
        if isinstance(node, Match):
            operand, kind = self.compile(node.operand)
            self.need(kind, "str", node, f"{'!~' if node.negate else '~'}")
            pattern = "(?i)" + node.pattern
            try:
                pl.Series([""], dtype=pl.String).str.contains(pattern)
            except pl.exceptions.PolarsError as exc:
                raise self.err(
                    f"invalid regular expression {node.pattern!r}: {_first_line(exc)}", node
                ) from exc
            match = TextMatch(node.operand.name if isinstance(node.operand, Field) else "", node.pattern)
            if self.matches is not None and isinstance(node.operand, Field):
                if match not in self.matches:
                    self.matches.append(match)
                expr = pl.col(match.column(self.matches.index(match)))
            else:
                expr = match.expr(operand)
            return (~expr if node.negate else expr), "bool"
        if isinstance(node, In):
            operand, kind = self.compile(node.operand)
            if kind not in ("str", "num", "bool"):
                raise self.err(f"'in' needs a text, number or boolean value, got {kind}", node)
            values: list[Any]
            if isinstance(node.container, ListRef):
                if self.lists is None or node.container.name not in self.lists:
                    known = ", ".join("@" + k for k in sorted(self.lists or {})) or "none"
                    raise self.err(
                        f"unknown list @{node.container.name} (known lists: {known})", node.container
                    )
                values = list(self.lists[node.container.name])
                values = [v for v in values if v is not None]
                bad = [v for v in values if _literal_type(v) != kind]
                if bad:
                    raise self.err(
                        f"list @{node.container.name} holds {_KIND_NAMES[_literal_type(bad[0])]} values, "
                        f"but the left side is {_KIND_NAMES[kind]}",
                        node.container,
                    )
            else:
                values = list(node.container.items)
                for v in values:
                    if _literal_type(v) != kind:
                        raise self.err(
                            f"list item {v!r} is {_KIND_NAMES[_literal_type(v)]}, but the left side is {_KIND_NAMES[kind]}",
                            node,
                        )
            dtype = pl.String if kind == "str" else pl.Boolean if kind == "bool" else pl.Float64
            series = pl.Series(values, dtype=dtype).unique(maintain_order=True)
            target = operand.cast(pl.Float64) if kind == "num" else operand
            if 0 < len(series) <= _SMALL_IN:
                # a few values: comparisons, several times faster than hashing every row; a null
                # operand gives null (not a hit) through every comparison, also for 'not in'
                expr = functools.reduce(operator.or_, [target == pl.lit(v, dtype=dtype) for v in series])
            else:
                expr = target.is_in(series.implode()) if len(series) else pl.lit(False)
                # null operand -> null (not a hit), also for 'not in'
                expr = pl.when(operand.is_null()).then(None).otherwise(expr)
            return (~expr if node.negate else expr), "bool"
        if isinstance(node, Binary):
            return self.binary(node)
        raise self.err("lists are only allowed after 'in'", node)

    def need(self, kind: str, expected: str, node: Any, what: str) -> None:
        if kind != expected and kind != "null":
            raise self.err(
                f"{what} needs a {_KIND_NAMES[expected]} value, got {_KIND_NAMES.get(kind, kind)}", node
            )

    def binary(self, node: Binary) -> tuple[pl.Expr, str]:
        op = node.op
        if op in ("and", "or"):
            left, lk = self.compile(node.left)
            right, rk = self.compile(node.right)
            self.need(lk, "bool", node.left, f"'{op}'")
            self.need(rk, "bool", node.right, f"'{op}'")
            return (left & right if op == "and" else left | right), "bool"
        if op in ("+", "-", "*", "/", "%"):
            left, lk = self.compile(node.left)
            right, rk = self.compile(node.right)
            if lk != "num" or rk != "num":
                bad = lk if lk != "num" else rk
                raise self.err(f"arithmetic {op!r} needs numbers, got {_KIND_NAMES.get(bad, bad)}", node)
            lf, rf = left.cast(pl.Float64), right.cast(pl.Float64)
            if op == "+":
                return lf + rf, "num"
            if op == "-":
                return lf - rf, "num"
            if op == "*":
                return lf * rf, "num"
            if op == "/":
                return lf / rf, "num"
            return lf % rf, "num"
        # comparisons
        if op in ("==", "!=") and (_is_null(node.left) or _is_null(node.right)):
            other = node.right if _is_null(node.left) else node.left
            expr, _ = self.compile(other)
            return (expr.is_null() if op == "==" else expr.is_not_null()), "bool"
        left, lk = self.compile(node.left)
        right, rk = self.compile(node.right)
        left, lk, right, rk = self._coerce_dates(node, left, lk, right, rk)
        if lk != rk:
            raise self.err(
                f"cannot compare {_KIND_NAMES.get(lk, lk)} with {_KIND_NAMES.get(rk, rk)} using {op!r}", node
            )
        if op not in ("==", "!=") and lk == "bool":
            raise self.err(f"{op!r} cannot compare booleans", node)
        ops = {
            "==": left == right,
            "!=": left != right,
            "<": left < right,
            "<=": left <= right,
            ">": left > right,
            ">=": left >= right,
        }
        return ops[op], "bool"

    def _coerce_dates(
        self, node: Binary, left: pl.Expr, lk: str, right: pl.Expr, rk: str
    ) -> tuple[pl.Expr, str, pl.Expr, str]:
        if lk in ("date", "datetime") and rk == "str" and isinstance(node.right, Literal):
            return left, lk, self._date_literal(node.right, lk), lk
        if rk in ("date", "datetime") and lk == "str" and isinstance(node.left, Literal):
            return self._date_literal(node.left, rk), rk, right, rk
        return left, lk, right, rk

    def _date_literal(self, lit: Literal, kind: str) -> pl.Expr:
        text = str(lit.value)
        try:
            if kind == "date":
                return pl.lit(dt.date.fromisoformat(text))
            return pl.lit(dt.datetime.fromisoformat(text)).cast(pl.Datetime("us"))
        except ValueError as exc:
            raise self.err(f"{text!r} is not an ISO date", lit) from exc


_KIND_NAMES = {
    "str": "text",
    "num": "number",
    "bool": "boolean (condition)",
    "date": "date",
    "datetime": "datetime",
    "null": "null",
}


def _is_null(node: Node) -> bool:
    return isinstance(node, Literal) and node.value is None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _closest(name: str, candidates: Iterable[str]) -> str | None:
    import difflib

    matches = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.75)
    return matches[0] if matches else None


def compile_expression(
    text: str,
    schema: Mapping[str, pl.DataType] | None = None,
    lists: Mapping[str, Sequence[Any]] | None = None,
) -> pl.Expr:
    """Parse, type-check and compile ``text`` to a boolean polars expression (nulls become ``False``)."""
    return _compile_expression(text, schema, lists)


def _compile_expression(
    text: str,
    schema: Mapping[str, pl.DataType] | None,
    lists: Mapping[str, Sequence[Any]] | None,
    matches: list[TextMatch] | None = None,
) -> pl.Expr:
    """:func:`compile_expression`; with ``matches`` (a list this call extends), ``field ~ "pattern"``
    reads the column of its :class:`TextMatch` instead, which :meth:`CompiledRules.evaluate` computes
    on the field's distinct values."""
    node = parse_expression(text)
    compiler = _Compiler(text, schema if schema is not None else default_schema(), lists, matches=matches)
    expr, kind = compiler.compile(node)
    if kind != "bool":
        raise RuleError(
            f"a rule must be a condition (true/false), but this expression gives a {_KIND_NAMES.get(kind, kind)}",
            0,
            text,
        )
    if not compiler.fields_used:
        expr = pl.repeat(expr, pl.len())  # a constant condition still gives one value per row
    return expr.fill_null(False)


# --------------------------------------------------------------------------------------------------
# Rules
# --------------------------------------------------------------------------------------------------

_RULE_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")


@dataclass(frozen=True)
class Rule:
    """A risk profile. ``weight`` orders rule hits in selection (higher first); inactive rules are skipped."""

    id: str
    name: str
    expression: str
    version: int = 1
    weight: float = 1.0
    active: bool = True

    def __post_init__(self) -> None:
        if not _RULE_ID_RE.match(self.id):
            raise RuleError(f"invalid rule id {self.id!r}: use letters, digits, '_', '-', '.' (max 64)")
        if not (isinstance(self.weight, (int, float)) and math.isfinite(self.weight) and self.weight >= 0):
            raise RuleError(f"rule {self.id}: weight must be a finite number >= 0")
        if not isinstance(self.version, int) or self.version < 1:
            raise RuleError(f"rule {self.id}: version must be a positive integer")

    def compile(
        self,
        schema: Mapping[str, pl.DataType] | None = None,
        lists: Mapping[str, Sequence[Any]] | None = None,
    ) -> pl.Expr:
        return self._compile(schema, lists)

    def _compile(
        self,
        schema: Mapping[str, pl.DataType] | None,
        lists: Mapping[str, Sequence[Any]] | None,
        matches: list[TextMatch] | None = None,
    ) -> pl.Expr:
        try:
            return _compile_expression(self.expression, schema, lists, matches)
        except RuleError as exc:
            raise RuleError(f"rule {self.id}: {exc.message}", exc.position, self.expression) from exc

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "expression": self.expression,
            "version": self.version,
            "weight": self.weight,
            "active": self.active,
        }


def validate_rule(
    rule: Rule,
    schema: Mapping[str, pl.DataType] | None = None,
    lists: Mapping[str, Sequence[Any]] | None = None,
) -> None:
    """Raise :class:`RuleError` if ``rule`` does not compile against ``schema`` and ``lists``."""
    rule.compile(schema, lists)


def any_hit(matrix: np.ndarray) -> np.ndarray:
    """Whether each row of a boolean ``(n, n_rules)`` hit matrix hit any rule (a column-by-column OR:
    several times faster than ``any(axis=1)`` over a few columns)."""
    hits = np.asarray(matrix, dtype=bool)
    if hits.ndim != 2 or hits.shape[1] == 0:
        return np.zeros(hits.shape[0], dtype=bool)
    out = hits[:, 0].copy()
    for j in range(1, hits.shape[1]):
        out |= hits[:, j]
    return out


def weighted_hits(matrix: np.ndarray, weights: np.ndarray, min_weight: float = 0.0) -> np.ndarray:
    """Sum of the weights of the rules each row of a boolean ``(n, n_rules)`` hit matrix hit, counting
    only rules that weigh at least ``min_weight`` (rule by rule: no float copy of the matrix)."""
    out = np.zeros(matrix.shape[0], dtype=np.float64)
    for j in range(matrix.shape[1]):
        if weights[j] >= min_weight and weights[j] > 0:
            out += np.where(matrix[:, j], weights[j], 0.0)
    return out


@dataclass
class RuleHits:
    """Which rows each (active) rule hit: ``matrix[i, j]`` is row ``i`` hit by ``rule_ids[j]``."""

    rule_ids: tuple[str, ...]
    weights: np.ndarray
    matrix: np.ndarray
    versions: tuple[int, ...] = field(default_factory=tuple)

    @property
    def n_rows(self) -> int:
        return int(self.matrix.shape[0])

    def any(self) -> np.ndarray:
        return any_hit(self.matrix)

    def weighted(self, min_weight: float = 0.0) -> np.ndarray:
        """Sum of the weights of the rules each row hit (only rules with weight >= ``min_weight``)."""
        return weighted_hits(self.matrix, self.weights, min_weight)

    def hit_lists(self) -> list[list[str]]:
        ids = self.rule_ids
        return [[ids[j] for j in np.flatnonzero(row)] for row in self.matrix]

    def to_series(self, name: str = "rule_hits") -> pl.Series:
        """A ``list[str]`` column with the ids of the rules each row hit (empty list when none)."""
        return hits_to_series(self.matrix, self.rule_ids, name)

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame({rid: self.matrix[:, j] for j, rid in enumerate(self.rule_ids)})

    def slice(self, start: int, length: int) -> RuleHits:
        return RuleHits(self.rule_ids, self.weights, self.matrix[start : start + length], self.versions)


def hits_to_series(matrix: np.ndarray, rule_ids: Sequence[str], name: str = "rule_hits") -> pl.Series:
    """Turn a boolean hit matrix into a ``list[str]`` Series of rule ids (vectorised)."""
    n = int(matrix.shape[0])
    if not len(rule_ids):
        offsets = np.zeros(n + 1, dtype=np.int64)
        return _list_series(name, offsets, pl.Series([], dtype=pl.String))
    rows, cols = np.nonzero(matrix)  # row-major order -> grouped by row, rule order within row
    counts = np.bincount(rows, minlength=n)
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    values = pl.Series(list(rule_ids), dtype=pl.String).gather(cols)
    return _list_series(name, offsets, values)


def _list_series(name: str, offsets: np.ndarray, values: pl.Series) -> pl.Series:
    import pyarrow as pa

    arr = pa.LargeListArray.from_arrays(pa.array(offsets, type=pa.int64()), values.to_arrow())
    out = pl.Series(name, arr)
    return out.cast(pl.List(pl.String))


@dataclass(frozen=True)
class CompiledRules:
    """Active rules compiled once against a schema and lists (reuse it to score many small frames)."""

    rule_ids: tuple[str, ...]
    weights: np.ndarray
    versions: tuple[int, ...]
    exprs: tuple[pl.Expr, ...]
    #: the same rules reading the columns of ``matches`` (text patterns matched on distinct values)
    distinct_exprs: tuple[pl.Expr, ...] | None = None
    matches: tuple[TextMatch, ...] = ()

    def repetitive(self, frame: pl.DataFrame) -> bool:
        """Whether the pattern-matched text fields of ``frame`` repeat enough for distinct-value
        matching to pay (judged on the first rows: a choice of plan, the hits are the same)."""
        fields = sorted({m.field for m in self.matches})
        if not fields or frame.height < _DISTINCT_MIN_ROWS:
            return False
        sample = frame.head(_DISTINCT_SAMPLE).select(pl.col(c).n_unique() for c in fields)
        return max(sample.row(0)) * _DISTINCT_RATIO <= min(frame.height, _DISTINCT_SAMPLE)

    def evaluate(self, frame: pl.DataFrame) -> RuleHits:
        if self.exprs:
            exprs = self.exprs
            if self.distinct_exprs is not None and self.repetitive(frame):
                # each pattern runs once over its field's distinct values (computed once per field)
                distinct = {f: frame.get_column(f).unique() for f in {m.field for m in self.matches}}
                frame = frame.with_columns(
                    m.on_distinct(distinct[m.field], frame.get_column(m.field)).alias(m.column(i))
                    for i, m in enumerate(self.matches)
                )
                exprs = self.distinct_exprs
            hits = frame.select([e.alias(f"__rule_{j}") for j, e in enumerate(exprs)])
            matrix = np.column_stack(
                [hits.get_column(f"__rule_{j}").to_numpy() for j in range(len(self.exprs))]
            )
            matrix = matrix.astype(bool, copy=False)
        else:
            matrix = np.zeros((frame.height, 0), dtype=bool)
        return RuleHits(self.rule_ids, self.weights, matrix, self.versions)


def compile_rules(
    rules: Sequence[Rule],
    schema: Mapping[str, pl.DataType] | None = None,
    lists: Mapping[str, Sequence[Any]] | None = None,
) -> CompiledRules:
    """Compile the active ``rules`` (duplicate ids are an error); see :func:`evaluate_rules`."""
    active = [r for r in rules if r.active]
    ids = [r.id for r in active]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise RuleError(f"duplicate rule id {dup!r}")
    matches: list[TextMatch] = []
    distinct = tuple(r._compile(schema, lists, matches) for r in active)
    return CompiledRules(
        rule_ids=tuple(ids),
        weights=np.array([float(r.weight) for r in active], dtype=np.float64),
        versions=tuple(r.version for r in active),
        exprs=tuple(r.compile(schema, lists) for r in active),
        distinct_exprs=distinct if matches else None,
        matches=tuple(matches),
    )


def evaluate_rules(
    frame: pl.DataFrame,
    rules: Sequence[Rule] | CompiledRules,
    lists: Mapping[str, Sequence[Any]] | None = None,
    schema: Mapping[str, pl.DataType] | None = None,
) -> RuleHits:
    """Evaluate the active ``rules`` on ``frame`` (vectorised); returns a :class:`RuleHits` matrix.

    ``schema`` defaults to the frame's own schema, so any column of the frame may be used; unknown
    fields are reported with the rule id and position. ``rules`` may be precompiled (:func:`compile_rules`).
    """
    compiled = (
        rules
        if isinstance(rules, CompiledRules)
        else compile_rules(rules, dict(frame.schema) if schema is None else schema, lists)
    )
    return compiled.evaluate(frame)


def rule_performance(
    frame: pl.DataFrame,
    rules: Sequence[Rule],
    lists: Mapping[str, Sequence[Any]] | None = None,
    *,
    date_col: str = "declared_at",
    every: str = "1w",
) -> pl.DataFrame:
    """Per-rule, per-period statistics from inspection results.

    ``frame`` needs the rule fields, ``date_col``, ``inspected`` and ``seized`` (nulls count as false).
    Returns one row per (rule, period) with ``hits``, ``inspections`` (hits that were inspected),
    ``seizures`` (inspected hits that led to a seizure) and ``seizure_rate`` (seizures / inspections,
    null when nothing was inspected). Periods start on Monday for ``every="1w"``.
    """
    for col in (date_col, "inspected", "seized"):
        if col not in frame.columns:
            raise ValueError(f"rule_performance needs column {col!r}")
    hits = evaluate_rules(frame, rules, lists)
    base = frame.select(
        pl.col(date_col).cast(pl.Date).dt.truncate(every).alias("period"),
        pl.col("inspected").fill_null(False).alias("__insp"),
        (pl.col("inspected").fill_null(False) & pl.col("seized").fill_null(False)).alias("__seiz"),
    )
    active = [r for r in rules if r.active]
    parts: list[pl.DataFrame] = []
    for j, rule in enumerate(active):
        hit = pl.Series("__hit", hits.matrix[:, j])
        part = (
            base.with_columns(hit)
            .filter(pl.col("__hit"))
            .group_by("period")
            .agg(
                pl.len().alias("hits"),
                pl.col("__insp").sum().alias("inspections"),
                pl.col("__seiz").sum().alias("seizures"),
            )
            .with_columns(
                pl.lit(rule.id).alias("rule_id"),
                pl.lit(rule.version).alias("rule_version"),
            )
        )
        parts.append(part)
    schema = {
        "rule_id": pl.String,
        "rule_version": pl.Int64,
        "period": pl.Date,
        "hits": pl.Int64,
        "inspections": pl.Int64,
        "seizures": pl.Int64,
    }
    if not parts:
        out = pl.DataFrame(schema=schema)
    else:
        out = pl.concat([p.select([pl.col(c).cast(t) for c, t in schema.items()]) for p in parts])
    return out.with_columns(
        pl.when(pl.col("inspections") > 0)
        .then(pl.col("seizures") / pl.col("inspections"))
        .otherwise(None)
        .alias("seizure_rate")
    ).sort(["rule_id", "period"])


# --------------------------------------------------------------------------------------------------
# Loading rule files
# --------------------------------------------------------------------------------------------------


def load_rules(path: str | Path) -> tuple[list[Rule], dict[str, list[Any]]]:
    """Load rules and named lists from a JSON or TOML file.

    Format (JSON shown; TOML uses ``[[rules]]`` tables and a ``[lists]`` table)::

        {"rules": [{"id": "R1", "name": "...", "expression": "...", "weight": 2, "version": 1,
                    "active": true}],
         "lists": {"watchlist_senders": ["a1b2...", "..."]}}
    """
    p = Path(path)
    text = p.read_text(encoding="utf-8")
    data: Any
    if p.suffix.lower() == ".toml":
        data = tomllib.loads(text)
    elif p.suffix.lower() == ".json":
        data = json.loads(text)
    else:
        raise RuleError(f"unsupported rules file {p.name!r}: use .json or .toml")
    return rules_from_dict(data)


def rules_from_dict(data: Mapping[str, Any]) -> tuple[list[Rule], dict[str, list[Any]]]:
    """Build rules and lists from already-parsed data (see :func:`load_rules`)."""
    if not isinstance(data, Mapping):
        raise RuleError("rules file must contain an object with 'rules' and optional 'lists'")
    raw_rules = data.get("rules", [])
    if not isinstance(raw_rules, list):
        raise RuleError("'rules' must be a list")
    allowed = {"id", "name", "expression", "version", "weight", "active"}
    rules: list[Rule] = []
    for k, item in enumerate(raw_rules):
        if not isinstance(item, Mapping):
            raise RuleError(f"rule #{k + 1} must be an object")
        unknown = set(item) - allowed
        if unknown:
            raise RuleError(f"rule #{k + 1}: unknown key(s) {', '.join(sorted(unknown))}")
        for key in ("id", "expression"):
            if not isinstance(item.get(key), str):
                raise RuleError(f"rule #{k + 1}: {key!r} must be a string")
        rules.append(
            Rule(
                id=item["id"],
                name=str(item.get("name", item["id"])),
                expression=item["expression"],
                version=int(item.get("version", 1)),
                weight=float(item.get("weight", 1.0)),
                active=bool(item.get("active", True)),
            )
        )
    raw_lists = data.get("lists", {})
    if not isinstance(raw_lists, Mapping):
        raise RuleError("'lists' must be an object of name -> list of values")
    lists: dict[str, list[Any]] = {}
    for name, values in raw_lists.items():
        if not _IDENT_RE.fullmatch(str(name)):
            raise RuleError(f"invalid list name {name!r}")
        if not isinstance(values, list):
            raise RuleError(f"list {name!r} must be a list")
        lists[str(name)] = values
    return rules, lists
