"""A first-party source compiled for the collection API: who may send, and what happens.

:class:`Sites` indexes the catalogue's ``provider: segment`` sources that are on by
write key, so a request finds its source in one dict lookup; two sources may not share
a key (it would be ambiguous which source's policies apply).
"""

from __future__ import annotations

import fnmatch
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from bridge.catalogue import Catalogue, Source
from bridge.errors import ConfigError
from bridge.mappings import spec
from bridge.mappings.expressions import Expression, ExpressionError, compile_value
from bridge.privacy import PrivacyPolicy, remove_path, set_path

__all__ = ["CompiledRule", "Site", "Sites"]

_LOCAL_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]", "::1"})

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class CompiledRule:
    """One ``collect.rules[]`` entry, compiled."""

    name: str
    patterns: tuple[str, ...]
    when: Expression | None
    drop: bool
    set: tuple[tuple[str, Any], ...]

    def matches(self, call: dict[str, Any]) -> bool:
        kind = str(call.get("type"))
        label = f"{kind}:{call.get('event')}" if kind == "track" else kind
        if not any(
            fnmatch.fnmatchcase(kind, p) or fnmatch.fnmatchcase(label, p) for p in self.patterns
        ):
            return False
        if self.when is None:
            return True
        value = self.when.search(call)
        return value not in (None, False, "", [], {})


@dataclass(frozen=True)
class Site:
    """One ``provider: segment`` source that is on."""

    name: str
    keys: tuple[str, ...]
    origins: frozenset[str] = frozenset()
    any_origin: bool = False
    allow_localhost: bool = False
    blocked: tuple[Network, ...] = ()
    forwarded_hops: int = 0
    per_ip: int = 0
    per_key: int = 0
    window: int = 60
    rules: tuple[CompiledRule, ...] = ()
    privacy: PrivacyPolicy | None = field(default=None)
    #: Seconds a messageId is remembered (None: BRIDGE_DEDUP_TTL).
    dedup_ttl: int | None = None

    @classmethod
    def from_source(cls, source: Source) -> Site:
        mapping = source.mapping
        collect = mapping.collect or spec.Collect.model_validate({})
        raw = collect.allowed_origins
        items = raw.split(",") if isinstance(raw, str) else [o for r in raw for o in r.split(",")]
        origins = {o.strip().rstrip("/").lower() for o in items if o.strip()}
        problems: list[str] = []
        blocked: list[Network] = []
        for text in collect.blocked_ips:
            try:
                blocked.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError as exc:
                problems.append(f"{source.name}: collect.blocked_ips: {exc}")
        rules = []
        for rule in collect.rules:
            try:
                when = compile_value(rule.when) if rule.when is not None else None
                sets = tuple(
                    (path, _compile_tree(value)) for path, value in (rule.set or {}).items()
                )
            except ExpressionError as exc:
                problems.append(f"{source.name}: collect.rules {rule.name!r}: {exc}")
                continue
            patterns = (rule.on,) if isinstance(rule.on, str) else tuple(rule.on)
            rules.append(CompiledRule(rule.name, patterns, when, rule.drop, sets))
        if problems:
            raise ConfigError("invalid collection settings", problems)
        return cls(
            name=source.name,
            keys=tuple(k for k in mapping.secrets if k),
            origins=frozenset(origins - {"*"}),
            any_origin="*" in origins,
            allow_localhost=collect.allow_localhost,
            blocked=tuple(blocked),
            forwarded_hops=collect.forwarded_hops,
            per_ip=collect.rate_limit.per_ip,
            per_key=collect.rate_limit.per_key,
            window=collect.rate_limit.window,
            rules=tuple(rules),
            privacy=mapping.privacy,
            dedup_ttl=collect.dedup_ttl,
        )

    def origin_allowed(self, origin: str) -> bool:
        """Whether a browser on ``origin`` (``scheme://host[:port]``) may send."""
        origin = origin.rstrip("/").lower()
        if self.any_origin or origin in self.origins:
            return True
        if self.allow_localhost:
            parts = urlsplit(origin)
            host = parts.hostname or ""
            return parts.scheme in ("http", "https") and (
                host in _LOCAL_HOSTS or f"[{host}]" in _LOCAL_HOSTS
            )
        return False

    def ip_blocked(self, ip: str) -> bool:
        try:
            address = ipaddress.ip_address(ip)
        except ValueError:
            return False
        return any(address in net for net in self.blocked)

    def transform(self, call: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """Apply the rules, then the privacy policy; ``(None, reason)`` when dropped."""
        for rule in self.rules:
            if not rule.matches(call):
                continue
            if rule.drop:
                return None, f"rule:{rule.name}"
            for path, value in rule.set:
                result = _render(value, call)
                if result is None:
                    remove_path(call, path)
                else:
                    set_path(call, path, result)
        if self.privacy is not None:
            return self.privacy.apply(call)
        return call, None


def _compile_tree(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _compile_tree(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_compile_tree(v) for v in value]
    return compile_value(value)


def _render(value: Any, data: Any) -> Any:
    if isinstance(value, Expression):
        return value.search(data)
    if isinstance(value, dict):
        return {k: _render(v, data) for k, v in value.items()}
    return [_render(v, data) for v in value]


@dataclass(frozen=True)
class Sites:
    """The first-party sources that are on, by write key."""

    by_key: dict[str, Site] = field(default_factory=dict)

    @classmethod
    def from_catalogue(cls, catalogue: Catalogue) -> Sites:
        return cls.build(Site.from_source(s) for s in catalogue if s.on and _collects(s))

    @classmethod
    def build(cls, sites: Iterable[Site]) -> Sites:
        by_key: dict[str, Site] = {}
        problems = []
        for site in sites:
            for key in site.keys:
                other = by_key.get(key)
                if other is not None and other.name != site.name:
                    problems.append(f"sources {other.name!r} and {site.name!r} share a write key")
                by_key[key] = site
        if problems:
            raise ConfigError("invalid collection settings", problems)
        return cls(by_key)

    def get(self, key: str) -> Site | None:
        return self.by_key.get(key)

    def __bool__(self) -> bool:
        return bool(self.by_key)


def _collects(source: Source) -> bool:
    return bool(getattr(source.provider, "collects", False))
