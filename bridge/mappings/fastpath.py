"""Evaluate jmespath's own AST with closures instead of its tree-walking interpreter.

jmespath parses every expression (it stays the language); this module only changes
how a parsed tree is evaluated. ``jmespath.search`` builds an interpreter and
dispatches each node through ``getattr`` on every call; a typical Stripe rule runs ~20
expressions per event, so that overhead was most of a worker's mapping time
(bench/bench_mappings.py). Each node type below mirrors ``jmespath.visitor.
TreeInterpreter`` line for line; any other node type (projections, filters, slices,
multi-selects) is handed to that interpreter, so results are identical by
construction — and tests/mappings/test_fastpath.py compares both on random data.
"""

from __future__ import annotations

from collections.abc import Callable
from numbers import Number
from typing import Any

from jmespath.visitor import TreeInterpreter

Fn = Callable[[Any], Any]


def is_false(value: Any) -> bool:
    """JMESPath falsiness, spelled as TreeInterpreter._is_false spells it (0 is true)."""
    return value == "" or value == [] or value == {} or value is None or value is False


def _is_number(value: Any) -> bool:
    return isinstance(value, Number) and not isinstance(value, bool)


def _comparable(value: Any) -> bool:
    return _is_number(value) or isinstance(value, str)


def compile_node(node: dict[str, Any], interpreter: TreeInterpreter) -> Fn:
    """A function of the current value that evaluates ``node`` as jmespath does."""
    kind = node["type"]
    children: list[Any] = node.get("children", [])

    if kind == "field":
        name = node["value"]

        def field(value: Any) -> Any:
            try:
                return value.get(name)
            except AttributeError:
                return None

        return field
    if kind in ("subexpression", "index_expression", "pipe"):
        steps = [compile_node(child, interpreter) for child in children]

        def chain(value: Any) -> Any:
            for step in steps:
                value = step(value)
            return value

        return chain
    if kind == "index":
        position = node["value"]

        def index(value: Any) -> Any:
            if not isinstance(value, list):
                return None
            try:
                return value[position]
            except IndexError:
                return None

        return index
    if kind == "literal":
        constant = node["value"]
        return lambda _value: constant
    if kind in ("current", "identity"):
        return lambda value: value
    if kind == "or_expression":
        left, right = (compile_node(child, interpreter) for child in children)

        def either(value: Any) -> Any:
            matched = left(value)
            return right(value) if is_false(matched) else matched

        return either
    if kind == "and_expression":
        left, right = (compile_node(child, interpreter) for child in children)

        def both(value: Any) -> Any:
            matched = left(value)
            return matched if is_false(matched) else right(value)

        return both
    if kind == "not_expression":
        inner = compile_node(children[0], interpreter)

        def negate(value: Any) -> Any:
            result = inner(value)
            if _is_number(result) and result == 0:
                return False
            return not result

        return negate
    if kind == "comparator":
        op = node["value"]
        compare = interpreter.COMPARATOR_FUNC[op]  # bridge's: exact for Decimal amounts
        left, right = (compile_node(child, interpreter) for child in children)
        if op in ("eq", "ne"):
            return lambda value: compare(left(value), right(value))

        def order(value: Any) -> Any:
            a, b = left(value), right(value)
            if not (_comparable(a) and _comparable(b)):
                return None
            return compare(a, b)

        return order
    if kind == "function_expression":
        name = node["value"]
        args = [compile_node(child, interpreter) for child in children]
        call = interpreter._functions.call_function

        def function(value: Any) -> Any:
            return call(name, [arg(value) for arg in args])

        return function
    # Everything else keeps jmespath's own evaluation.
    return lambda value: interpreter.visit(node, value)
