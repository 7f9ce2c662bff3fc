"""Compiled mappings: match an event to rules and turn it into complete Segment calls.

:func:`load_file` compiles a checked file into a :class:`Mapping` once;
:meth:`Mapping.evaluate` then only runs compiled JMESPath searches and builds dicts.
A payload a rule cannot map raises :class:`~bridge.errors.MappingError` naming the
rule and the field; nothing else escapes except Redis errors from the identity store
(the worker retries those).
"""

from __future__ import annotations

import fnmatch
import hashlib
import ipaddress
import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError, create_model

from bridge import __version__
from bridge.envelope import Envelope
from bridge.errors import MappingError
from bridge.mappings import spec
from bridge.mappings.expressions import (
    Expression,
    ExpressionError,
    compile_value,
    current_counted,
    current_lookup,
    iso8601,
)
from bridge.mappings.fastpath import is_false
from bridge.mappings.identity import IdentityStore
from bridge.mappings.loader import (
    Loc,
    Positions,
    parse_file,
    parse_text,
    schema_problems,
    source_of,
)
from bridge.mappings.problems import Problem
from bridge.privacy import PrivacyPolicy
from bridge.providers import (
    DEFAULT_TOLERANCE,
    Provider,
    get_provider,
    known_providers,
    provider_class,
)

#: The longest messageId Segment accepts.
MAX_MESSAGE_ID = 100

#: ``context.library`` of every call.
LIBRARY = {"name": "bridge", "version": __version__}

_PATTERN = re.compile(r"^[A-Za-z0-9_.:/*?-]+$")
_KIND = re.compile(r"^[a-z][a-z0-9_]{0,31}$")
_CACHE_LIMIT = 4096

Compiled = Any  # Expression | dict[str, Compiled] | list[Compiled]


def truthy(value: Any) -> bool:
    """JMESPath truth: false, null, "", [] and {} are false; everything else is true."""
    return not is_false(value)


def render(value: Compiled, data: Any) -> Any:
    """Evaluate a compiled value tree; members that come out null (or, for nested
    objects written in the mapping, empty) are dropped."""
    if isinstance(value, Expression):
        return value.search(data)
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            try:
                result = render(item, data)
            except MappingError as exc:
                raise MappingError(
                    f"{key}.{exc.message}" if _nested(exc) else f"{key}: {exc.message}"
                ) from None
            if result is None or (result == {} and isinstance(item, dict)):
                continue
            out[key] = result
        return out
    return [render(item, data) for item in value]


def _nested(exc: MappingError) -> bool:
    head = exc.message.split(":", 1)[0]
    return " " not in head and "(" not in head


def message_id(source: str, event_id: str, rule: str | None, index: int) -> str:
    """Deterministic id of one emitted call, at most 100 characters. A call counted
    once is named by what it counts, without the rule (``rule`` None): any event of one
    payment that emits it, by any rule, gives it the same id."""
    text = f"{source}:{event_id}:{index}" if rule is None else f"{source}:{event_id}:{rule}:{index}"
    if len(text) <= MAX_MESSAGE_ID:
        return text
    digest = hashlib.sha256(text.encode()).hexdigest()[:32]
    return f"{text[: MAX_MESSAGE_ID - 33]}:{digest}"


@dataclass(frozen=True, slots=True)
class CompiledIdentity:
    user_id: tuple[Expression, ...] = ()
    customer: tuple[Expression, ...] = ()
    anonymous_id: tuple[Expression, ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledCall:
    type: str
    index: int
    when: Expression | None
    label: str
    event: str | None = None
    name: str | None = None
    group_id: Expression | None = None
    previous_id: Expression | None = None
    members: tuple[tuple[str, Compiled], ...] = ()


@dataclass(frozen=True, slots=True)
class CompiledRule:
    name: str
    patterns: tuple[str, ...]
    when: Expression | None
    identity: CompiledIdentity
    calls: tuple[CompiledCall, ...]
    #: ``once:`` expressions: the ids of what this rule counts once.
    once: tuple[Expression, ...] = ()
    #: ``remember:`` facts: (kind, key expressions, value expression).
    remember: tuple[tuple[str, tuple[Expression, ...], Expression], ...] = ()

    def matches(self, event_type: str) -> bool:
        return any(fnmatch.fnmatchcase(event_type, p) for p in self.patterns)


@dataclass(frozen=True, slots=True)
class Resolved:
    user_id: str | None
    anonymous_id: str | None


@dataclass(eq=False)
class Mapping:
    """One source: how intake verifies it and how workers map its events."""

    source: str
    provider: str
    secrets: tuple[str, ...]
    tolerance: int = DEFAULT_TOLERANCE
    rules: tuple[CompiledRule, ...] = ()
    test_mode: tuple[Expression, str] | None = None
    account: tuple[Expression, str] | None = None
    identity_fallback: str = "anonymous"
    path: Path | None = None
    #: Environment variables ``secrets`` names (``STRIPE_WEBHOOK_SECRET``), never values.
    secret_vars: tuple[str, ...] = ()
    #: ``options.public_url``: the URL the provider signs, behind a rewriting proxy.
    public_url: str | None = None
    #: The shipped mapping this one ``extends`` (None: a mapping of its own).
    extends: str | None = None
    #: Rules of the shipped mapping this one replaced or dropped (by name).
    changed_rules: tuple[str, ...] = ()
    #: The validated ``signature`` block (providers configured in the mapping).
    provider_config: BaseModel | None = None
    #: ``options.account.accounts``: connected accounts listed through the provider's API.
    connect_accounts: tuple[str, ...] = ()

    def plugin(self) -> Provider:
        """An instance of this mapping's provider, with its configuration."""
        return get_provider(self.provider, self.provider_config)

    #: ``privacy:``: hash/drop/consent applied to every call (a PrivacyPolicy).
    privacy: PrivacyPolicy | None = None
    #: ``collect:``: first-party collection settings (``provider: segment``).
    collect: spec.Collect | None = None
    _exact: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)
    _globs: tuple[CompiledRule, ...] = field(default=(), repr=False)
    _cache: dict[str, tuple[CompiledRule, ...]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        exact: dict[str, list[CompiledRule]] = {}
        globs = []
        for rule in self.rules:
            if any(_is_glob(p) for p in rule.patterns):
                globs.append(rule)
            else:
                for p in rule.patterns:
                    exact.setdefault(p, []).append(rule)
        self._exact = {k: tuple(v) for k, v in exact.items()}
        self._globs = tuple(globs)

    def rules_for(self, event_type: str) -> tuple[CompiledRule, ...]:
        """Rules whose ``on`` matches ``event_type``, in file order."""
        cached = self._cache.get(event_type)
        if cached is not None:
            return cached
        found = tuple(
            r
            for r in self.rules
            if r in self._exact.get(event_type, ()) or (r in self._globs and r.matches(event_type))
        )
        if len(self._cache) >= _CACHE_LIMIT:
            self._cache.clear()
        self._cache[event_type] = found
        return found

    @property
    def event_types(self) -> tuple[str, ...]:
        """Every ``on`` pattern of the rules (exact types and globs), in file order."""
        return tuple(dict.fromkeys(p for rule in self.rules for p in rule.patterns))

    def handles(self, event_type: str) -> bool:
        """Whether any rule matches ``event_type`` (intake answers "ignored" if not)."""
        return bool(self.rules_for(event_type))

    def evaluate(self, envelope: Envelope, identity: IdentityStore) -> list[dict[str, Any]]:
        """The complete Segment calls ``envelope`` maps to (possibly none)."""
        rules = self.rules_for(envelope.type)
        if not rules:
            return []
        body = envelope.body
        context: dict[str, Any] = {"library": LIBRARY}
        if self.test_mode is not None:
            when, action = self.test_mode
            if action != "keep" and truthy(_search(when, body, "options.test_mode.when")):
                if action == "skip":
                    return []
                context["testMode"] = True
        account: str | None = None
        if self.account is not None:
            expr, action = self.account
            value = _search(expr, body, "options.account.from")
            if truthy(value):
                account = _scalar_text(value, "options.account.from")
                if action == "skip":
                    return []
                context["groupId"] = account
        timestamp = iso8601(envelope.time)
        calls: list[dict[str, Any]] = []
        claims: list[tuple[CompiledRule, list[str], list[dict[str, Any]]]] = []
        token = current_lookup.set(lambda c: identity.resolve(self.source, [_ns(account, c)]))
        counted = current_counted.set(
            lambda k: _un_ns(account, identity.counted(self.source, _ns(account, k)))
        )
        try:
            for rule in rules:
                if rule.when is not None and not truthy(
                    _search(rule.when, body, f"rule {rule.name!r}: when")
                ):
                    continue
                if rule.remember and not rule.once:
                    self._remember(rule, body, identity, account)
                who = self._resolve(rule, body, identity, account)
                ids = self._once_ids(rule, body, account) if rule.once else None
                built = []
                for call in rule.calls:
                    if call.when is not None and not truthy(
                        _search(call.when, body, f"rule {rule.name!r}, {call.label}: when")
                    ):
                        continue
                    built.append(
                        self._build(envelope, rule, call, who, timestamp, context, body, ids)
                    )
                if ids is not None and built:
                    claims.append((rule, ids, built))
                calls.extend(built)
            # Claims are made last, once every rule has mapped: an event that fails to
            # map (a dead letter) must not hold a claim that keeps its payment from
            # counting. A once-rule's `remember` facts are the winner's only.
            for rule, ids, built in claims:
                # What it is counted as (its first id: the calls' messageId), and by whom:
                # this very envelope (its id and when intake stored it), so that the same
                # envelope mapped again after a crash finds its own claim and re-emits,
                # while a later delivery under the same id (a provider whose id is derived
                # from the payment's state, re-sent after the dedup window) counts nothing.
                owner = f"{ids[0]}\t{envelope.id}@{envelope.received_at!r}/{rule.name}"
                if identity.claim(self.source, ids, owner) != owner:
                    drop = {id(c) for c in built}
                    calls = [c for c in calls if id(c) not in drop]
                elif rule.remember:
                    self._remember(rule, body, identity, account)
        finally:
            current_lookup.reset(token)
            current_counted.reset(counted)
        if self.privacy is not None:
            return self.privacy.apply_all(calls)
        return calls

    def _remember(
        self, rule: CompiledRule, body: Any, store: IdentityStore, account: str | None
    ) -> None:
        for kind, key_exprs, value_expr in rule.remember:
            where = f"rule {rule.name!r}: remember.{kind}"
            value = _search(value_expr, body, f"{where}.value")
            if not truthy(value):
                continue
            text = _scalar_text(value, f"{where}.value")
            ids = []
            for expr in key_exprs:
                key = _search(expr, body, f"{where}.key")
                if truthy(key):
                    ids.append(_ns(account, f"{kind}:{_scalar_text(key, where + '.key')}"))
            store.remember(self.source, ids, text)

    def _once_ids(self, rule: CompiledRule, body: Any, account: str | None) -> list[str]:
        where = f"rule {rule.name!r}: once"
        ids: list[str] = []
        for expr in rule.once:
            value = _search(expr, body, where)
            if truthy(value):
                key = _ns(account, _scalar_text(value, where))
                if key not in ids:
                    ids.append(key)
        if not ids:
            sources = ", ".join(e.source for e in rule.once)
            raise MappingError(
                f"{where}: no id to count this event once by ({sources})", rule=rule.name
            )
        return ids

    def _resolve(
        self, rule: CompiledRule, body: Any, store: IdentityStore, account: str | None
    ) -> Resolved:
        where = f"rule {rule.name!r}: identity"
        user_id = None
        for expr in rule.identity.user_id:
            value = _search(expr, body, f"{where}.user_id")
            if truthy(value):
                user_id = _scalar_text(value, f"{where}.user_id")
                break
        customers: list[str] = []
        for expr in rule.identity.customer:
            value = _search(expr, body, f"{where}.customer")
            if truthy(value):
                customers.append(_ns(account, _scalar_text(value, f"{where}.customer")))
        if user_id is not None:
            if customers:
                store.learn(self.source, customers, user_id)
            return Resolved(user_id, None)
        if customers:
            user_id = store.resolve(self.source, customers)
            if user_id is not None:
                return Resolved(user_id, None)
        if not rule.calls:
            return Resolved(None, None)
        if self.identity_fallback == "anonymous":
            candidates = list(customers)
            for expr in rule.identity.anonymous_id:
                value = _search(expr, body, f"{where}.anonymous_id")
                if truthy(value):
                    candidates.append(_scalar_text(value, f"{where}.anonymous_id"))
            if candidates:
                return Resolved(None, f"{self.source}:{candidates[0]}")
        return Resolved(None, None)

    def _build(
        self,
        envelope: Envelope,
        rule: CompiledRule,
        call: CompiledCall,
        who: Resolved,
        timestamp: str,
        context: dict[str, Any],
        body: Any,
        once: list[str] | None = None,
    ) -> dict[str, Any]:
        where = f"rule {rule.name!r}, {call.label}"
        if who.user_id is None and who.anonymous_id is None:
            raise MappingError(
                f"{where}: no userId or anonymousId: the identity expressions found "
                "nothing and no customer id is known",
                rule=rule.name,
            )
        if call.type == "alias" and who.user_id is None:
            raise MappingError(f"{where}: alias needs a userId and none was found")
        out: dict[str, Any] = {
            "type": call.type,
            # A counted-once call is named by what it counts, not by the event: any
            # event of one payment that gets to emit it gives it the same messageId.
            "messageId": (
                message_id(self.source, once[0], None, call.index)
                if once
                else message_id(self.source, envelope.id, rule.name, call.index)
            ),
            "timestamp": timestamp,
        }
        if who.user_id is not None:
            out["userId"] = who.user_id
        if who.anonymous_id is not None:
            out["anonymousId"] = who.anonymous_id
        if call.event is not None:
            out["event"] = call.event
        if call.name is not None:
            out["name"] = call.name
        if call.group_id is not None:
            value = _search(call.group_id, body, f"{where}: groupId")
            if not truthy(value):
                raise MappingError(f"{where}: groupId is empty ({call.group_id.source})")
            out["groupId"] = _scalar_text(value, f"{where}: groupId")
        if call.previous_id is not None:
            value = _search(call.previous_id, body, f"{where}: previousId")
            if not truthy(value):
                raise MappingError(f"{where}: previousId is empty ({call.previous_id.source})")
            out["previousId"] = _scalar_text(value, f"{where}: previousId")
        extra_context: dict[str, Any] = {}
        for key, compiled in call.members:
            try:
                value = render(compiled, body)
            except MappingError as exc:
                raise MappingError(f"{where}: {key}: {exc.message}", rule=rule.name) from None
            if key == "context":
                extra_context = value
            else:
                out[key] = value
        out["context"] = {**extra_context, **context} if extra_context else dict(context)
        return out


def _ns(account: str | None, customer: str) -> str:
    return customer if account is None else f"{account}/{customer}"


def _un_ns(account: str | None, key: str | None) -> str | None:
    if key is None or account is None:
        return key
    return key.removeprefix(f"{account}/")


def _search(expr: Expression, body: Any, where: str) -> Any:
    try:
        return expr.search(body)
    except MappingError as exc:
        raise MappingError(f"{where}: {exc.message} ({expr.source})") from None


def _scalar_text(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return str(int(value))
    raise MappingError(f"{where}: expected text or a whole number, got {value!r}")


def _is_glob(pattern: str) -> bool:
    return any(c in pattern for c in "*?")


# --- compiling a checked file ------------------------------------------------------------


class _Compiler:
    def __init__(self, file: str, positions: Positions) -> None:
        self.file = file
        self.positions = positions
        self.problems: list[Problem] = []

    def problem(self, loc: Loc, kind: str, message: str, *, key: bool = False) -> None:
        line, col = self.positions.key(loc) if key else self.positions.value(loc)
        file = self.positions.file_of(loc, self.file)
        self.problems.append(Problem(file, line, col, kind, message))

    def expr(self, value: Any, loc: Loc) -> Expression:
        try:
            return compile_value(value)
        except ExpressionError as exc:
            line, col = self.positions.inside(loc, exc.column)
            file = self.positions.file_of(loc, self.file)
            self.problems.append(Problem(file, line, col, "expression", str(exc)))
            return Expression(source=str(value), literal=None)

    def tree(self, value: Any, loc: Loc) -> Compiled:
        if isinstance(value, dict):
            return {k: self.tree(v, (*loc, k)) for k, v in value.items()}
        if isinstance(value, list):
            return [self.tree(v, (*loc, i)) for i, v in enumerate(value)]
        return self.expr(value, loc)

    def exprs(self, value: str | list[str] | None, loc: Loc) -> tuple[Expression, ...]:
        if value is None:
            return ()
        if isinstance(value, str):
            return (self.expr(value, loc),)
        return tuple(self.expr(v, (*loc, i)) for i, v in enumerate(value))


def compile_model(
    model: spec.MappingFile,
    positions: Positions,
    file: str,
    source: str,
    prior: list[Problem] | None = None,
) -> tuple[Mapping, list[Problem]]:
    """Compile a schema-checked file; semantic mistakes are returned as problems
    (``prior``: problems already found while reading, not repeated)."""
    c = _Compiler(file, positions)
    provider_config: BaseModel | None = None
    if model.provider not in known_providers():
        c.problem(
            ("provider",),
            "provider",
            f"unknown provider {model.provider!r}; known: {', '.join(known_providers())}",
        )
    else:
        provider_config = _provider_config(c, model)
    raw = model.secrets if isinstance(model.secrets, list) else [model.secrets]
    secrets = tuple(s.strip() for item in raw for s in item.split(",") if s.strip())
    if not secrets and not any(p.kind == "secret" for p in prior or ()):
        c.problem(("secrets",), "secret", "no signing secret: set `secrets` (e.g. ${VAR})")
    if not model.rules and model.collect is None:
        c.problem(("rules",), "schema", "rules: at least one rule is needed")
    if model.collect is not None:
        _check_collect(c, model.collect)
    opts = model.options
    test_mode = None
    if opts.test_mode is not None:
        when = c.expr(opts.test_mode.when, ("options", "test_mode", "when"))
        test_mode = (when, opts.test_mode.action)
    account = None
    if opts.account is not None:
        account = (c.expr(opts.account.from_, ("options", "account", "from")), opts.account.action)
    base = model.identity
    file_identity = CompiledIdentity(
        c.exprs(base.user_id, ("identity", "user_id")),
        c.exprs(base.customer, ("identity", "customer")),
        c.exprs(base.anonymous_id, ("identity", "anonymous_id")),
    )
    rules = []
    seen: set[str] = set()
    for r, rule in enumerate(model.rules):
        loc: Loc = ("rules", r)
        if rule.name in seen:
            c.problem((*loc, "name"), "schema", f"duplicate rule name {rule.name!r}")
        seen.add(rule.name)
        patterns = (rule.on,) if isinstance(rule.on, str) else tuple(rule.on)
        if not patterns:
            c.problem((*loc, "on"), "pattern", f"rule {rule.name!r}: `on` is empty")
        for i, pattern in enumerate(patterns):
            ploc = (*loc, "on") if isinstance(rule.on, str) else (*loc, "on", i)
            if not _PATTERN.match(pattern) or "**" in pattern:
                c.problem(
                    ploc,
                    "pattern",
                    f"rule {rule.name!r}: {pattern!r} is not an event type or glob "
                    "(letters, digits, _ . : / - and the wildcards * ?)",
                )
        ident = file_identity
        if rule.identity is not None:
            o = rule.identity
            iloc = (*loc, "identity")
            ident = CompiledIdentity(
                c.exprs(o.user_id, (*iloc, "user_id"))
                if o.user_id is not None
                else file_identity.user_id,
                c.exprs(o.customer, (*iloc, "customer"))
                if o.customer is not None
                else file_identity.customer,
                c.exprs(o.anonymous_id, (*iloc, "anonymous_id"))
                if o.anonymous_id is not None
                else file_identity.anonymous_id,
            )
        if rule.emit and not (ident.user_id or ident.customer or ident.anonymous_id):
            c.problem(
                (*loc, "emit"),
                "identity",
                f"rule {rule.name!r} emits calls but has no identity source: set "
                "`identity.user_id`, `customer` or `anonymous_id` (file or rule)",
            )
        calls = tuple(
            _compile_call(c, call, (*loc, "emit", i), i, rule.name, ident)
            for i, call in enumerate(rule.emit)
        )
        condition = c.expr(rule.when, (*loc, "when")) if rule.when is not None else None
        once = c.exprs(rule.once, (*loc, "once"))
        if once and not calls:
            c.problem((*loc, "once"), "schema", f"rule {rule.name!r}: `once` needs calls to count")
        remember = []
        for kind, fact in (rule.remember or {}).items():
            if not _KIND.match(kind):
                c.problem(
                    (*loc, "remember", kind),
                    "schema",
                    f"rule {rule.name!r}: remember kind {kind!r} is not a lower-case name",
                    key=True,
                )
            floc = (*loc, "remember", kind)
            remember.append(
                (
                    kind,
                    c.exprs(fact.key, (*floc, "key")),
                    c.expr(fact.value, (*floc, "value")),
                )
            )
        rules.append(
            CompiledRule(
                rule.name, patterns, condition, ident, calls, once=once, remember=tuple(remember)
            )
        )
    mapping = Mapping(
        source=source,
        provider=model.provider,
        secrets=secrets,
        tolerance=opts.tolerance,
        rules=tuple(rules),
        test_mode=test_mode,
        account=account,
        identity_fallback=opts.identity_fallback,
        public_url=opts.public_url,
        connect_accounts=(
            opts.account.accounts
            if opts.account is not None and opts.account.action == "tag"
            else ()
        ),
        extends=model.extends,
        changed_rules=positions.changed_rules,
        provider_config=provider_config,
        privacy=PrivacyPolicy.from_spec(model.privacy),
        collect=model.collect,
        secret_vars=tuple(
            dict.fromkeys(
                name
                for loc, names in positions.variables.items()
                if loc[:1] == ("secrets",)
                for name in names
            )
        ),
    )
    return mapping, c.problems


def _provider_config(c: _Compiler, model: spec.MappingFile) -> BaseModel | None:
    """Validate the ``signature`` block against the provider's own model."""
    config_model: type[BaseModel] | None = getattr(
        provider_class(model.provider), "config_model", None
    )
    if config_model is None:
        if model.signature is not None:
            c.problem(
                ("signature",),
                "schema",
                f"provider {model.provider!r} takes no `signature` block",
                key=True,
            )
        return None
    if model.signature is None:
        c.problem(
            ("provider",),
            "required",
            f"provider {model.provider!r} needs a `signature` block (how it signs)",
        )
        return None
    wrapper = create_model("Mapping", signature=(config_model, ...))
    try:
        validated: BaseModel = dict(wrapper.model_validate({"signature": model.signature}))[
            "signature"
        ]
        return validated
    except ValidationError as exc:
        c.problems.extend(schema_problems(exc, {"signature": model.signature}, c.positions, c.file))
        return None


def _check_collect(c: _Compiler, collect: spec.Collect) -> None:
    """Report problems of a ``collect:`` section with their position (``mappings check``);
    the collection API compiles it again when the app starts."""
    for i, text in enumerate(collect.blocked_ips):
        try:
            ipaddress.ip_network(text.strip(), strict=False)
        except ValueError as exc:
            c.problem(("collect", "blocked_ips", i), "schema", f"blocked_ips: {exc}")
    for i, rule in enumerate(collect.rules):
        loc: Loc = ("collect", "rules", i)
        if rule.when is not None:
            c.expr(rule.when, (*loc, "when"))
        for key, value in (rule.set or {}).items():
            c.tree(value, (*loc, "set", key))
        if not rule.drop and not rule.set:
            c.problem(loc, "schema", f"collect rule {rule.name!r}: give `drop: true` or `set`")


def _compile_call(
    c: _Compiler, call: spec.Call, loc: Loc, index: int, rule: str, ident: CompiledIdentity
) -> CompiledCall:
    kind = spec.CALL_TYPES[call.type]
    given = call.model_dump(exclude_none=True)
    for key in given:
        if key not in spec.COMMON_CALL_KEYS and key not in kind["fields"]:
            c.problem(
                (*loc, key),
                "schema",
                f"rule {rule!r}: {call.type} does not take {key!r} "
                f"(it takes {', '.join(kind['fields'])})",
                key=True,
            )
    for key in kind["required"]:
        if key not in given:
            c.problem(loc, "required", f"rule {rule!r}: {call.type} needs {key!r}")
    if call.type == "alias" and not ident.user_id:
        c.problem(loc, "identity", f"rule {rule!r}: alias needs an `identity.user_id` source")
    for key in ("event", "name"):
        text = given.get(key)
        if isinstance(text, str) and not text.strip():
            c.problem((*loc, key), "required", f"rule {rule!r}: {key} is empty")
    members = []
    for key in ("properties", "traits", "context", "integrations"):
        value = getattr(call, key)
        if value is not None:
            members.append((key, c.tree(value, (*loc, key))))
    label = f"emit[{index}] {call.type}" + (f" {call.event!r}" if call.event else "")
    return CompiledCall(
        type=call.type,
        index=index,
        when=c.expr(call.when, (*loc, "when")) if call.when is not None else None,
        label=label,
        event=call.event,
        name=call.name,
        group_id=c.expr(call.groupId, (*loc, "groupId")) if call.groupId is not None else None,
        previous_id=(
            c.expr(call.previousId, (*loc, "previousId")) if call.previousId is not None else None
        ),
        members=tuple(members),
    )


def load_file(path: Path, environ: MappingABC[str, str]) -> tuple[Mapping | None, list[Problem]]:
    """Load and compile one mapping file; the mapping is None when there are problems."""
    model, positions, problems = parse_file(path, environ)
    mapping, problems = _compile(model, positions, problems, str(path), source_of(path))
    if mapping is not None:
        mapping.path = path
    return mapping, problems


def load_text(
    text: str, source: str, environ: MappingABC[str, str], file: str = "<text>"
) -> tuple[Mapping | None, list[Problem]]:
    """Load and compile mapping text (docs examples, tests)."""
    model, positions, problems = parse_text(text, file, environ)
    return _compile(model, positions, problems, file, source)


def _compile(
    model: spec.MappingFile | None,
    positions: Positions,
    problems: list[Problem],
    file: str,
    source: str,
) -> tuple[Mapping | None, list[Problem]]:
    if model is None:
        return None, problems
    mapping, more = compile_model(model, positions, file, source, problems)
    problems = problems + more
    return (None if problems else mapping), problems
