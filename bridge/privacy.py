"""Privacy policies: hash, drop and consent rules a source applies to every call.

A mapping file's ``privacy:`` section (any source: webhooks and first-party collection
alike) compiles into one :class:`PrivacyPolicy`; it runs on each complete call before
the call is stored in the outbox, so nothing it removes ever reaches Redis or the
collector::

    privacy:
      hash:
        - paths: [traits.email, context.traits.email]   # SHA-256, trimmed + lower-cased
      drop: [context.ip]
      consent:
        - category: Advertising                           # context.consent.categoryPreferences
          action: drop
        - category: Personalization
          action: strip
          fields: [traits.phone]

A consent category denies when ``context.consent.categoryPreferences.<category>`` is
``false``; a call without consent information is treated as the site decided to send
it (the banner, not bridge, asks the visitor).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bridge.mappings import spec

__all__ = ["PrivacyPolicy", "get_path", "hash_value", "remove_path", "set_path"]

_NOT_PHONE = re.compile(r"[^0-9+]")


def hash_value(value: Any, normalise: str) -> Any:
    """SHA-256 (hex) of ``value`` normalised; non-text values other than numbers are kept."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return value
    text = str(value)
    if normalise == "email":
        text = text.strip().lower()
    elif normalise == "phone":
        text = _NOT_PHONE.sub("", text)
    return hashlib.sha256(text.encode()).hexdigest()


def get_path(call: dict[str, Any], path: str) -> Any:
    """The value at dotted ``path`` (None when absent)."""
    node: Any = call
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def remove_path(call: dict[str, Any], path: str) -> bool:
    """Remove dotted ``path`` from ``call``; whether something was removed."""
    *parents, last = path.split(".")
    node: Any = call
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict) and last in node:
        del node[last]
        return True
    return False


def set_path(call: dict[str, Any], path: str, value: Any) -> None:
    """Set dotted ``path`` in ``call``, creating objects on the way (replacing non-objects)."""
    *parents, last = path.split(".")
    node = call
    for part in parents:
        child = node.get(part)
        if not isinstance(child, dict):
            child = node[part] = {}
        node = child
    node[last] = value


@dataclass(frozen=True)
class PrivacyPolicy:
    """A compiled ``privacy:`` section."""

    hash: tuple[tuple[str, str], ...] = ()
    drop: tuple[str, ...] = ()
    consent: tuple[tuple[str, str, tuple[str, ...]], ...] = ()

    @classmethod
    def from_spec(cls, model: spec.Privacy | None) -> PrivacyPolicy | None:
        if model is None:
            return None
        return cls(
            hash=tuple((p, rule.normalise) for rule in model.hash for p in rule.paths),
            drop=tuple(model.drop),
            consent=tuple((c.category, c.action, tuple(c.fields)) for c in model.consent),
        )

    def apply(self, call: dict[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
        """``call`` with the policy applied (changed in place), or ``(None, reason)``
        when consent says it must not be sent."""
        prefs = get_path(call, "context.consent.categoryPreferences")
        if isinstance(prefs, dict):
            for category, action, fields in self.consent:
                if prefs.get(category) is False:
                    if action == "drop":
                        return None, f"consent_denied: {category}"
                    for path in fields:
                        remove_path(call, path)
        for path in self.drop:
            remove_path(call, path)
        for path, normalise in self.hash:
            value = get_path(call, path)
            if value is not None:
                set_path(call, path, hash_value(value, normalise))
        return call, None

    def apply_all(self, calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The calls that may be sent, each with the policy applied."""
        kept = []
        for call in calls:
            out, _ = self.apply(call)
            if out is not None:
                kept.append(out)
        return kept
