"""Field values: JMESPath expressions over the provider's event body, plus functions.

An expression is compiled once when a mapping loads (:func:`compile_value`) and then
searched against each event. The standard JMESPath functions are all available; bridge
registers these (see ``docs/mappings.md`` for examples):

=====================================  ==============================================
``money(amount, currency)``            minor units -> exact decimal by ISO-4217 exponent
``upper(s)`` / ``lower(s)`` / ``trim(s)``   text case and whitespace (null stays null)
``iso8601(epoch[, 'ms'])``             Unix seconds (or ms) -> ``2024-05-01T12:00:00.000Z``
``first_non_empty(a, b, ...)``         first argument that is not null, "", [] or {}
``coalesce(a, b, ...)``                same as first_non_empty
``concat(a, b, ...)``                  join as text, skipping nulls
``sha256(s)``                          hex SHA-256 of the text (hash PII)
``add/subtract/multiply(a, b)``        arithmetic; null if either side is null
``total(array)``                       sum; null if the array is null, empty or has a null
``identity(customer)``                 userId learned for a provider customer, or null
``recall(kind, id)``                   a fact a ``remember:`` rule stored, or null
``counted(id)``                        what a ``once:`` claim on ``id`` counted it as, or null
``mrr(items, currency)``               monthly recurring revenue of subscription items
=====================================  ==============================================

Numbers stay exact: ``money()`` returns :class:`~decimal.Decimal` (or ``int``), the
arithmetic functions compute in decimal (a float from the payload counts as the
shortest decimal that reads back as it, which is the text the provider sent), and
every standard function that takes a number takes a Decimal too.

Literals: YAML numbers, booleans and null are literal values. A literal *string* is
written as a JMESPath raw string in single quotes (``plan: "'pro'"``) or as a JSON
literal in backticks (`` `"pro"` ``); everything else is an expression.
"""

from __future__ import annotations

import decimal
import hashlib
import math
import operator
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, ClassVar, TypeVar, cast

import jmespath
import jmespath.exceptions
import jmespath.functions
from jmespath.visitor import TreeInterpreter
from redis.exceptions import RedisError

from bridge import codec, timefmt
from bridge.errors import MappingError
from bridge.mappings import amounts, money, subscriptions
from bridge.mappings.fastpath import compile_node

#: The identity lookup the ``identity()`` function uses while an event is evaluated
#: (set by the engine around each evaluation; unset in lint).
current_lookup: ContextVar[Callable[[str], str | None] | None] = ContextVar(
    "bridge_identity_lookup", default=None
)

#: The once-claim lookup ``counted()`` uses (set by the engine like current_lookup).
current_counted: ContextVar[Callable[[str], str | None] | None] = ContextVar(
    "bridge_counted_lookup", default=None
)

_EMPTY: tuple[Any, ...] = (None, "", [], {})


def iso8601(epoch: float) -> str:
    """Unix seconds -> ISO-8601 UTC with milliseconds and ``Z``."""
    try:
        return timefmt.iso8601(epoch)
    except (OverflowError, OSError, ValueError):
        raise MappingError(f"iso8601(): {epoch!r} is not a usable Unix time") from None


def iso8601_ms(millis: float) -> str:
    """Unix milliseconds -> ISO-8601 UTC, exactly (no float rounding)."""
    try:
        return timefmt.iso8601_millis(millis)
    except (OverflowError, ValueError):
        raise MappingError(f"iso8601(): {millis!r} is not a usable Unix time") from None


Number = int | float | Decimal

#: Arithmetic context: exact for any sum or product of payload numbers (100 digits), and
#: an error rather than a silently rounded result past that.
_EXACT = decimal.Context(
    prec=100,
    traps=[decimal.InvalidOperation, decimal.DivisionByZero, decimal.Overflow, decimal.Inexact],
)


def _number(name: str, value: Any) -> Number:
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise MappingError(f"{name}(): {value!r} is not a number")
    return value


def _decimal(value: Number) -> Decimal:
    # repr() of a float is the shortest text that reads back as it: the JSON text the
    # provider sent, for any number written with 17 significant digits or fewer.
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(value)


def _arith(name: str, a: Any, b: Any, op: Callable[[Any, Any], Any]) -> Number:
    x, y = _number(name, a), _number(name, b)
    if isinstance(x, int) and isinstance(y, int):
        return int(op(x, y))
    try:
        with decimal.localcontext(_EXACT):
            result: Decimal = op(_decimal(x), _decimal(y))
    except decimal.DecimalException:
        raise MappingError(f"{name}(): {x} and {y} have no exact result") from None
    return result


_F = TypeVar("_F", bound=Callable[..., Any])


def signature(*arguments: dict[str, Any]) -> Callable[[_F], _F]:
    """jmespath's ``signature`` decorator, typed."""
    return cast(Callable[[_F], _F], jmespath.functions.signature(*arguments))


class Functions(jmespath.functions.Functions):  # type: ignore[misc]
    """bridge's JMESPath functions (names are the method names minus ``_func_``)."""

    # --- Decimal is a JMESPath number (jmespath checks type *names*: float, int) -------

    def _get_allowed_pytypes(self, types: Any) -> tuple[list[Any], list[Any]]:
        allowed, subtypes = super()._get_allowed_pytypes(types)
        allowed = [*allowed, "Decimal"] if "float" in allowed else allowed
        subtypes = [(*s, "Decimal") if "float" in s else s for s in subtypes]
        return allowed, subtypes

    def _convert_to_jmespath_type(self, pyobject: Any) -> str:
        return (
            "number" if pyobject == "Decimal" else str(super()._convert_to_jmespath_type(pyobject))
        )

    @signature({"types": []})
    def _func_type(self, arg: Any) -> str | None:
        if isinstance(arg, Decimal):
            return "number"
        result: str | None = super()._func_type(arg)
        return result

    @signature({"types": []})
    def _func_to_string(self, arg: Any) -> str:
        # jmespath's json.dumps(default=str) would quote a Decimal ("\"19.99\"").
        return arg if isinstance(arg, str) else codec.dumps(arg).decode()

    @signature({"types": []})
    def _func_to_number(self, arg: Any) -> Number | None:
        if isinstance(arg, Decimal):
            return arg if arg.is_finite() else None
        if not isinstance(arg, str):
            result: Number | None = super()._func_to_number(arg)
            return result
        try:
            return int(arg)
        except ValueError:
            pass
        try:
            number = Decimal(arg)  # exact, where float() would round
        except decimal.InvalidOperation:
            return None
        return number if number.is_finite() else None

    @signature({"types": ["array", "string"]}, {"types": []})
    def _func_contains(self, subject: Any, search: Any) -> bool:
        if isinstance(subject, str):
            return search in subject
        # `0.05` (a float literal) is in a list of Decimal amounts holding 0.05.
        return any(a == b for a, b in (_comparable_exactly(item, search) for item in subject))

    @signature({"types": ["array-number"]})
    def _func_sum(self, values: list[Any]) -> Number:
        result: Number = 0
        for value in values:
            result = _arith("sum", result, value, operator.add)
        return result

    @signature({"types": ["array-number"]})
    def _func_avg(self, values: list[Any]) -> Number | None:
        if not values:
            return None
        total = self._func_sum(values)
        if isinstance(total, Decimal) or any(isinstance(v, Decimal) for v in values):
            return Decimal(total) / len(values)  # rounded to 28 digits: an average
        return total / len(values)

    # --- bridge's functions -----------------------------------------------------------

    @signature({"types": ["number", "string", "null"]}, {"types": ["string", "null"]})
    def _func_money(self, amount: Any, currency: Any) -> int | Decimal | None:
        if amount is None:
            return None
        if currency is None:
            raise MappingError("money(): currency is null")
        return money.to_decimal(amount, currency)

    @signature({"types": ["string", "null"]})
    def _func_upper(self, text: str | None) -> str | None:
        return None if text is None else text.upper()

    @signature({"types": ["string", "null"]})
    def _func_lower(self, text: str | None) -> str | None:
        return None if text is None else text.lower()

    @signature({"types": ["string", "null"]})
    def _func_trim(self, text: str | None) -> str | None:
        return None if text is None else text.strip()

    @signature({"types": [], "variadic": True})
    def _func_iso8601(self, epoch: Any, *unit: Any) -> str | None:
        if unit not in ((), ("s",), ("ms",)):
            raise MappingError("iso8601(): the unit is 's' (default) or 'ms'")
        if epoch is None:
            return None
        if isinstance(epoch, bool) or not isinstance(epoch, int | float):
            raise MappingError(f"iso8601(): {epoch!r} is not a number")
        if unit == ("ms",):
            return iso8601_ms(epoch)
        return iso8601(epoch)

    @signature({"types": [], "variadic": True})
    def _func_first_non_empty(self, *values: Any) -> Any:
        for value in values:
            if value not in _EMPTY:
                return value
        return None

    _func_coalesce = _func_first_non_empty

    @signature({"types": [], "variadic": True})
    def _func_concat(self, *values: Any) -> str:
        parts = []
        for value in values:
            if value is None:
                continue
            if isinstance(value, dict | list):
                raise MappingError(f"concat(): cannot join {type(value).__name__} values")
            parts.append(_text(value))
        return "".join(parts)

    @signature({"types": ["string", "number", "null"]})
    def _func_sha256(self, value: Any) -> str | None:
        if value is None:
            return None
        return hashlib.sha256(_text(value).encode()).hexdigest()

    @signature({"types": []}, {"types": []})
    def _func_add(self, a: Any, b: Any) -> Number | None:
        if a is None or b is None:
            return None
        return _arith("add", a, b, operator.add)

    @signature({"types": []}, {"types": []})
    def _func_subtract(self, a: Any, b: Any) -> Number | None:
        if a is None or b is None:
            return None
        return _arith("subtract", a, b, operator.sub)

    @signature({"types": []}, {"types": []})
    def _func_multiply(self, a: Any, b: Any) -> Number | None:
        if a is None or b is None:
            return None
        return _arith("multiply", a, b, operator.mul)

    @signature({"types": ["array", "null"]})
    def _func_total(self, values: list[Any] | None) -> Number | None:
        if not values or any(v is None for v in values):
            return None
        result: Number = 0
        for value in values:
            result = _arith("total", result, value, operator.add)
        return result

    @signature({"types": ["string", "number", "null"]})
    def _func_identity(self, customer: Any) -> str | None:
        if customer is None or customer == "":
            return None
        lookup = current_lookup.get()
        if lookup is None:
            raise MappingError("identity(): no identity store available here")
        return lookup(_text(customer))

    @signature({"types": ["string"]}, {"types": ["string", "number", "null"]})
    def _func_recall(self, kind: str, key: Any) -> str | None:
        # A fact a `remember:` rule stored: kept in the identity store as "<kind>:<key>".
        if key is None or key == "":
            return None
        lookup = current_lookup.get()
        if lookup is None:
            raise MappingError("recall(): no identity store available here")
        return lookup(f"{kind}:{_text(key)}")

    @signature({"types": ["string", "number", "null"]})
    def _func_counted(self, key: Any) -> str | None:
        # The first `once:` id of the claim holding `key`: what its thing was counted as.
        if key is None or key == "":
            return None
        lookup = current_counted.get()
        if lookup is None:
            raise MappingError("counted(): no claim store available here")
        return lookup(_text(key))

    @signature({"types": ["array", "null"]}, {"types": ["string", "null"]})
    def _func_mrr(self, items: Any, currency: Any) -> Any:
        return subscriptions.mrr(items, currency)

    @signature({"types": ["number", "string", "null"]}, {"types": ["string", "null"]})
    def _func_major(self, amount: Any, currency: Any) -> Any:
        """Decimal text in major units (Shopify, WooCommerce) -> the amount, checked
        against the currency's exponent and given in the type money() gives."""
        if amount is None or amount == "":
            return None
        if currency is None:
            raise MappingError("major(): currency is null")
        return money.to_decimal(amounts.to_minor(amount, currency), currency)

    @signature({"types": ["number", "string", "null"]}, {"types": ["string", "null"]})
    def _func_minor(self, amount: Any, currency: Any) -> int | None:
        """Decimal text in major units -> integer minor units (for add/subtract)."""
        if amount is None or amount == "":
            return None
        if currency is None:
            raise MappingError("minor(): currency is null")
        return amounts.to_minor(amount, currency)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Decimal):
        return format(value, "f")  # never exponent notation ("1E+2")
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


#: Names of every function an expression may call (standard + bridge's).
OPTIONS = jmespath.Options(custom_functions=Functions())


def _comparable_exactly(x: Any, y: Any) -> tuple[Any, Any]:
    # A float literal (`19.99`) against a Decimal amount: compare the decimal it was
    # written as, not the binary float just below it (else 19.99 <= `19.99` is false).
    if isinstance(x, Decimal) and isinstance(y, float) and math.isfinite(y):
        return x, _decimal(y)
    if isinstance(y, Decimal) and isinstance(x, float) and math.isfinite(x):
        return _decimal(x), y
    return x, y


def _exact_comparator(compare: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    return lambda x, y: compare(*_comparable_exactly(x, y))


class Interpreter(TreeInterpreter):  # type: ignore[misc]
    """jmespath's interpreter with comparisons exact between Decimal and float."""

    COMPARATOR_FUNC: ClassVar[dict[str, Callable[[Any, Any], Any]]] = {
        name: _exact_comparator(compare)
        for name, compare in TreeInterpreter.COMPARATOR_FUNC.items()
    }


#: One interpreter for every expression (jmespath builds one per search otherwise).
INTERPRETER = Interpreter(OPTIONS)

#: Names of every function an expression may call (standard + bridge's).
FUNCTION_NAMES: frozenset[str] = frozenset(Functions.FUNCTION_TABLE)


class ExpressionError(ValueError):
    """An expression that does not compile; ``column`` is 0-based within the text."""

    def __init__(self, message: str, column: int = 0) -> None:
        super().__init__(message)
        self.column = column


@dataclass(frozen=True, slots=True)
class Expression:
    """A compiled field value: a JMESPath expression or a literal."""

    source: str
    parsed: Any = None
    literal: Any = None
    #: The parsed tree as closures (see fastpath.py); same results, several times faster.
    run: Callable[[Any], Any] | None = None

    def search(self, data: Any) -> Any:
        """Evaluate against ``data``; bad data raises MappingError (Redis errors pass)."""
        if self.run is None:
            return self.literal
        try:
            return self.run(data)
        except MappingError:
            raise
        except RedisError:
            raise
        except jmespath.exceptions.JMESPathError as exc:
            raise MappingError(_describe(exc)) from None
        except Exception as exc:  # a hostile payload must not crash a worker
            raise MappingError(f"{type(exc).__name__}: {exc}") from None


def _describe(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__


def compile_value(value: Any) -> Expression:
    """Compile a YAML scalar: a string is an expression, anything else a literal."""
    if not isinstance(value, str):
        return Expression(source=repr(value), literal=value)
    try:
        parsed = jmespath.compile(value)
    except jmespath.exceptions.ParseError as exc:
        column = int(getattr(exc, "lex_position", 0) or 0)
        message = str(getattr(exc, "msg", "") or "invalid expression")
        token = getattr(exc, "token_value", None)
        if token is not None:
            message = f"{message} near {token!r}"
        raise ExpressionError(f"{message} in {value!r}", column) from None
    except jmespath.exceptions.JMESPathError as exc:
        raise ExpressionError(f"{_describe(exc)} in {value!r}") from None
    for name, count in sorted(_called_functions(parsed.parsed)):
        if name not in FUNCTION_NAMES:
            raise ExpressionError(f"unknown function {name}() in {value!r}")
        signature = Functions.FUNCTION_TABLE[name]["signature"]
        variadic = bool(signature) and signature[-1].get("variadic", False)
        if (count < len(signature)) if variadic else (count != len(signature)):
            wanted = f"at least {len(signature)}" if variadic else str(len(signature))
            raise ExpressionError(f"{name}() takes {wanted} argument(s), not {count}, in {value!r}")
    if _is_constant(parsed.parsed):
        return Expression(source=value, literal=parsed.search(None, options=OPTIONS))
    return Expression(source=value, parsed=parsed, run=compile_node(parsed.parsed, INTERPRETER))


def _known_functions() -> set[str]:
    return set(OPTIONS.custom_functions.functions)


def _called_functions(node: Any) -> set[tuple[str, int]]:
    found: set[tuple[str, int]] = set()
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            children = item.get("children", [])
            if item.get("type") == "function_expression":
                found.add((str(item.get("value")), len(children)))
            stack.extend(children)
    return found


def _is_constant(node: Any) -> bool:
    return isinstance(node, dict) and node.get("type") == "literal"
