"""The closure evaluator gives exactly what jmespath's own interpreter gives."""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import Any

import jmespath
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bridge.mappings.expressions import INTERPRETER, OPTIONS
from bridge.mappings.fastpath import compile_node
from tests.conftest import ROOT

CURATED = [
    "a",
    "a.b.c",
    "a[0]",
    "a[-1].b",
    "a || b",
    "a && b",
    "!a",
    "a == b",
    "a != `1`",
    "a < b",
    "a >= `2`",
    "`true`",
    "'text'",
    "@",
    "a | b",
    "a[*].b",
    "a[].b",
    "a[?b > `1`].c",
    "a[1:3]",
    "{x: a, y: b}",
    "[a, b]",
    "*.b",
    "length(a)",
    "upper(b)",
    "money(a, 'usd')",
    "first_non_empty(a, b, 'x')",
    "a.b || a.c || `0`",
    "!(a == `0`)",
    "a[?b == 'x'] | [0]",
    "sum(a[*].b)",
    "not_null(a, b)",
    "to_string(a)",
    "a.b[0].c || b",
]


def _parses(text: str) -> bool:
    # The regex also catches prose from comments; text that only parses with jmespath's
    # deprecated literal syntax is prose, not one of our expressions.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            jmespath.compile(text)
        except (jmespath.exceptions.JMESPathError, PendingDeprecationWarning):
            return False
    return True


# The one-line expressions the shipped mappings use, as written there.
SHIPPED = sorted(
    {
        m.strip()
        for path in (ROOT / "mappings").glob("*.yaml")
        for m in re.findall(r":\s+(\w[\w.\[\]|&!=<>(), `'@*-]*)$", Path(path).read_text(), re.M)
        if ("." in m or "(" in m) and _parses(m.strip())
    }
)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-3, 3)
    | st.floats(allow_nan=False, width=32)
    | st.sampled_from(["", "x", "usd", "JPY"]),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(st.sampled_from(["a", "b", "c", "x"]), inner, max_size=3)
    ),
    max_leaves=12,
)


def outcome(fn: Any, data: Any) -> tuple[str, Any]:
    try:
        return "value", fn(data)
    except Exception as exc:
        return "error", type(exc).__name__


def compiled(expression: str) -> tuple[Any, Any]:
    parsed = jmespath.compile(expression)
    return compile_node(parsed.parsed, INTERPRETER), lambda d: parsed.search(d, options=OPTIONS)


@pytest.mark.parametrize("expression", CURATED + SHIPPED)
@settings(max_examples=60, deadline=None)
@given(data=json_values)
def test_same_result_as_jmespath(expression: str, data: Any) -> None:
    fast, slow = compiled(expression)
    assert outcome(fast, data) == outcome(slow, data)


def test_shipped_expressions_were_found() -> None:
    assert len(SHIPPED) > 30
    assert any("money(" in e for e in SHIPPED)
