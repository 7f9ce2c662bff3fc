"""What the HMAC-signing providers share: decoding, constant-time matching, headers.

Shopify, Paddle Billing, Lemon Squeezy, Paystack, Razorpay, Square, WooCommerce and
Recurly all sign with an HMAC keyed by a shared secret; they differ in the hash, the
encoding (hex or base64), what is signed (the body; ``ts:body``; ``url + body``) and
where the event id, type and time live. Each provider module states those facts and
uses these helpers, so the security-relevant parts are written once:

- a signature value is *decoded* first (a value that is not hex/base64 of the right
  length is ``malformed_signature``), then compared as bytes with
  :func:`hmac.compare_digest` against the HMAC of every configured secret (rotation);
- no secret configured, a missing header, any decoding problem: rejection (fail closed).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.base import VerifiedEvent, signed_digest

__all__ = [
    "b64",
    "event",
    "header",
    "hexdigest",
    "iso_seconds",
    "mac",
    "match_any",
    "require_header",
    "require_text",
    "signed_digest",
    "text_member",
    "unb64",
    "unhex",
]

def mac(algorithm: str, secret: str, message: bytes) -> bytes:
    """Raw HMAC of ``message`` keyed with the UTF-8 bytes of ``secret`` (OpenSSL's one-shot
    HMAC: faster than ``hmac.new().digest()``)."""
    return hmac.digest(secret.encode("utf-8"), message, algorithm)


def hexdigest(algorithm: str, secret: str, message: bytes) -> str:
    return mac(algorithm, secret, message).hex()


def b64(algorithm: str, secret: str, message: bytes) -> str:
    return base64.b64encode(mac(algorithm, secret, message)).decode("ascii")


def header(headers: Mapping[str, str], name: str) -> str | None:
    """A header's value (headers are case-insensitive in intake), None when absent/empty."""
    value = headers.get(name)
    if value is None:
        # Plain dicts (tests, ``bridge send``) are case-sensitive: try a lower-case key.
        value = headers.get(name.lower())
    return value or None


def require_header(headers: Mapping[str, str], name: str) -> str:
    """The signature header, or ``missing_signature``."""
    value = header(headers, name)
    if value is None or not value.strip():
        raise SignatureError(f"missing {name} header", reason="missing_signature")
    return value.strip()


def _malformed(name: str, expected: str) -> SignatureError:
    return SignatureError(
        f"malformed {name} header: expected {expected}", reason="malformed_signature"
    )


_HEX = re.compile(r"[0-9a-fA-F]+")


def unhex(value: str, size: int, name: str) -> bytes:
    """Decode a hex signature of ``size`` bytes or raise ``malformed_signature``."""
    if len(value) != 2 * size or not _HEX.fullmatch(value):
        raise _malformed(name, f"{2 * size} hex digits")
    return bytes.fromhex(value)


def unb64(value: str, size: int, name: str) -> bytes:
    """Decode a base64 signature of ``size`` bytes or raise ``malformed_signature``."""
    try:
        raw = base64.b64decode(value.encode("ascii"), validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError):
        raise _malformed(name, "base64") from None
    if len(raw) != size:
        raise _malformed(name, f"base64 of {size} bytes")
    return raw


def match_any(
    secrets: Sequence[str], compute: Callable[[str], bytes], candidates: Sequence[bytes]
) -> None:
    """Pass when the MAC of any secret equals any candidate; compare in constant time.

    Every (secret, candidate) pair is compared (no early exit on the first secret), and
    blank entries of a comma-separated list are skipped; none left is a rejection."""
    usable = [s.strip() for s in secrets if s.strip()]
    if not usable:
        raise SignatureError("no secret configured for this source", reason="no_secret")
    matched = False
    for secret in usable:
        expected = compute(secret)
        for candidate in candidates:
            matched |= hmac.compare_digest(expected, candidate)
    if not matched:
        raise SignatureError("signature matches none of the source's secrets")


def event(
    *,
    id: str,
    type: str,
    time: float,
    body: Any,
    raw: bytes,
    digest_of: tuple[bytes, ...] | None = None,
) -> VerifiedEvent:
    """A :class:`VerifiedEvent`; with ``digest_of`` (what the signature covers, for ids
    that are not signed), its SHA-256 as the event's ``signed_digest``."""
    digest = signed_digest(*digest_of) if digest_of is not None else None
    return VerifiedEvent(id=id, type=type, time=time, body=body, raw=raw, signed_digest=digest)


_FRACTION = re.compile(r"(\.\d{6})\d+")


def iso_seconds(value: object) -> float | None:
    """Unix seconds of an ISO-8601 time (``Z``, offsets, nanoseconds, or no zone = UTC);
    None when ``value`` is not one."""
    if not isinstance(value, str) or not value:
        return None
    text = _FRACTION.sub(r"\1", value.strip()).replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def text_member(body: Any, *path: str) -> str | None:
    """``body[path[0]][path[1]]…`` when it is a non-empty string or an integer, as text."""
    value = body
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    return value if isinstance(value, str) and value else None


def require_text(body: Any, *path: str, provider: str) -> str:
    value = text_member(body, *path)
    if value is None:
        raise MalformedPayload(f"{provider} payload has no {'.'.join(path)}")
    return value
