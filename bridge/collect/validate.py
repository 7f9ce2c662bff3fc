"""Check and sanitise one Segment call as a client sent it.

A call is refused (:class:`InvalidCall`, naming the field) when the Segment spec does
not allow it: unknown type, no ``userId`` nor ``anonymousId``, a track without event
name, a group without ``groupId``, an alias without ``previousId``, a ``messageId``
that is not text of at most 100 characters, a timestamp that is not ISO-8601, members
of the wrong JSON type, or more than 32 KB once sanitised. What can be kept is kept:
identity and name strings are trimmed, numbers must be finite, and a member of
``properties``/``traits``/``context`` larger than :data:`MAX_MEMBER_BYTES` (or holding
a number no JSON collector can read) is dropped and counted instead of failing the call.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bridge import codec
from bridge.delivery.outbox import MAX_CALL_BYTES
from bridge.errors import MappingError

__all__ = [
    "CALL_TYPES",
    "MAX_ID_CHARS",
    "MAX_MEMBER_BYTES",
    "InvalidCall",
    "encode",
    "iso_now",
    "sanitise",
]

#: The call types and the short path letter analytics.js posts each to (``/v1/t``).
CALL_TYPES = {"track": "t", "identify": "i", "page": "p", "screen": "s", "group": "g", "alias": "a"}

#: Longest userId / anonymousId / groupId / previousId / messageId / event / name kept.
MAX_ID_CHARS = 100

#: Longest event or page name.
MAX_NAME_CHARS = 200

#: A member of properties, traits or context larger than this (as JSON) is dropped.
MAX_MEMBER_BYTES = 16 * 1024

#: Members that must be JSON objects when present.
_OBJECTS = ("properties", "traits", "context", "integrations")

#: Members that are identities or names: text, trimmed, bounded.
_TEXT = {
    "userId": MAX_ID_CHARS,
    "anonymousId": MAX_ID_CHARS,
    "groupId": MAX_ID_CHARS,
    "previousId": MAX_ID_CHARS,
    "event": MAX_NAME_CHARS,
    "name": MAX_NAME_CHARS,
    "category": MAX_NAME_CHARS,
}

_MAX_INT = 2**63


class InvalidCall(ValueError):
    """A call the collection API refuses; ``reason`` says which field and why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def iso_now() -> str:
    return iso(datetime.now(UTC))


def _text(call: dict[str, Any], key: str, limit: int) -> None:
    value = call.get(key)
    if value is None:
        call.pop(key, None)
        return
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise InvalidCall(f"{key} must be text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        call.pop(key)
        return
    if len(text) > limit:
        raise InvalidCall(f"{key} is {len(text)} characters; the limit is {limit}")
    call[key] = text


def _parse_time(value: Any, key: str) -> datetime:
    if not isinstance(value, str):
        raise InvalidCall(f"{key} must be an ISO-8601 text, got {type(value).__name__}")
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidCall(f"{key} is not an ISO-8601 date-time: {value[:40]!r}") from None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def iso(moment: datetime) -> str:
    """ISO-8601 UTC with milliseconds and ``Z``, as Segment writes times."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _timestamp(value: Any, key: str) -> str:
    return iso(_parse_time(value, key))


def _bad_number(value: Any) -> bool:
    """Whether ``value`` holds a number a collector cannot read (not finite, too big)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -_MAX_INT <= value < 2**64
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Decimal):
        return not value.is_finite() or not math.isfinite(float(value))
    if isinstance(value, dict):
        return any(_bad_number(v) for v in value.values())
    if isinstance(value, list):
        return any(_bad_number(v) for v in value)
    return False


def _members(obj: dict[str, Any], where: str, dropped: Callable[[str], None]) -> None:
    for key in list(obj):
        value = obj[key]
        if _bad_number(value):
            del obj[key]
            dropped(f"{where}.{key}: number_not_finite_or_too_large")
            continue
        if isinstance(value, (dict, list)) or (isinstance(value, str) and len(value) > 1024):
            try:
                size = len(codec.dumps(value))
            except MappingError:
                del obj[key]
                dropped(f"{where}.{key}: not_encodable")
                continue
            if size > MAX_MEMBER_BYTES:
                del obj[key]
                dropped(f"{where}.{key}: too_large")


def sanitise(
    raw: Any,
    *,
    kind: str | None,
    now: datetime,
    dropped: Callable[[str], None],
    sent_at: Any = None,
) -> dict[str, Any]:
    """The call ``raw`` checked and cleaned (a new dict), or InvalidCall.

    ``kind`` is the type the path says (``/v1/track``), None for batch items;
    ``now`` is when bridge received it; ``dropped`` is told each member removed
    (``properties.blob: too_large``). ``sent_at`` is the body's ``sentAt`` (a call's own
    wins): as Segment's API does, the client's clock skew is taken out of ``timestamp``
    (``timestamp = now - (sentAt - timestamp)``; the client's value is kept as
    ``originalTimestamp``), because the batch bridge forwards carries bridge's ``sentAt``.
    """
    if not isinstance(raw, dict):
        raise InvalidCall(f"a call must be a JSON object, got {type(raw).__name__}")
    call = dict(raw)
    given = call.get("type")
    if kind is not None:
        if given is not None and given != kind:
            raise InvalidCall(f"type is {given!r} but was sent to /v1/{kind}")
        call["type"] = kind
    elif not isinstance(given, str) or given not in CALL_TYPES:
        raise InvalidCall(f"type must be one of {', '.join(CALL_TYPES)}, got {given!r}")
    kind = call["type"]
    call.pop("writeKey", None)  # analytics.js puts the key in the body; never forward it
    sent = call.pop("sentAt", None) or sent_at
    for key, limit in _TEXT.items():
        _text(call, key, limit)
    if "userId" not in call and "anonymousId" not in call:
        raise InvalidCall("needs a userId or an anonymousId")
    if kind == "track" and "event" not in call:
        raise InvalidCall("track needs an event name")
    if kind == "group" and "groupId" not in call:
        raise InvalidCall("group needs a groupId")
    if kind == "alias" and ("previousId" not in call or "userId" not in call):
        raise InvalidCall("alias needs a previousId and a userId")
    message_id = call.get("messageId")
    if message_id is None or message_id == "":
        call["messageId"] = str(uuid.uuid4())
    elif not isinstance(message_id, str) or len(message_id) > MAX_ID_CHARS:
        raise InvalidCall(f"messageId must be text of at most {MAX_ID_CHARS} characters")
    for key in _OBJECTS:
        if key in call and call[key] is not None and not isinstance(call[key], dict):
            raise InvalidCall(f"{key} must be an object, got {type(call[key]).__name__}")
        if call.get(key) is None:
            call.pop(key, None)
    if call.get("originalTimestamp") is not None:
        call["originalTimestamp"] = _timestamp(call["originalTimestamp"], "originalTimestamp")
    if call.get("timestamp") not in (None, ""):
        happened = _parse_time(call["timestamp"], "timestamp")
        try:
            skew = _parse_time(sent, "sentAt") - now if sent else None
        except InvalidCall:
            skew = None  # sentAt is only a hint: a bad one is ignored, not refused
        if skew is not None and skew.total_seconds() != 0:
            call.setdefault("originalTimestamp", iso(happened))
            happened -= skew
        call["timestamp"] = iso(happened)
    else:
        call["timestamp"] = iso(now)
    for key in ("properties", "traits", "context"):
        if key in call:
            call[key] = dict(call[key])
            _members(call[key], key, dropped)
            if key == "context" and isinstance(call[key].get("traits"), dict):
                _members(call[key]["traits"], "context.traits", dropped)
    for key in list(call):
        if key not in _OBJECTS and _bad_number(call[key]):
            raise InvalidCall(f"{key}: number not finite or too large")
    return call


def encode(call: dict[str, Any]) -> bytes:
    """``call`` as the JSON stored and sent, or InvalidCall when it is over 32 KB (checked
    last, after the source's rules and privacy policy)."""
    try:
        data = codec.dumps(call)
    except MappingError as exc:
        raise InvalidCall(str(exc)) from None
    if len(data) > MAX_CALL_BYTES:
        raise InvalidCall(f"call is {len(data)} bytes as JSON; the limit is {MAX_CALL_BYTES}")
    return data
