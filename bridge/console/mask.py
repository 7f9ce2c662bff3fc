"""Masking: signature values never leave the server; personal data hidden until revealed.

Headers are masked before they are recorded (a signature or token is never stored in
the event log); payloads and calls are stored as they are and masked when rendered,
unless the operator asks to reveal personal data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

#: Header names whose values are credentials or signatures (matched as substrings).
SECRET_HEADER_PARTS = ("signature", "authorization", "cookie", "token", "secret", "api-key")


#: environ key -> (header name, masked?) or None (not a header); bounded, since
#: header names are chosen by whoever sends the request.
_NAMES: dict[str, tuple[str, bool] | None] = {}
_NAMES_MAX = 512


def _header_name(key: str) -> tuple[str, bool] | None:
    if key.startswith("HTTP_"):
        name = key[5:].replace("_", "-").title()
    elif key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        name = key.replace("_", "-").title()
    else:
        return None
    return name, bool(_SECRET_HEADER.search(name))


def environ_headers(environ: Mapping[str, Any]) -> dict[str, str]:
    """A WSGI environ's request headers, masked, in one pass (cheaper than building
    Werkzeug's header view first: this runs on every webhook)."""
    out: dict[str, str] = {}
    names = _NAMES
    for key, value in environ.items():
        try:
            known = names[key]
        except KeyError:
            known = _header_name(key)
            if len(names) < _NAMES_MAX:
                names[key] = known
        if known is not None:
            name, secret = known
            out[name] = mask_value(value) if secret else value
    return out


#: Keys whose values are personal data (matched on the key, lower-case, as a substring).
PERSONAL_KEYS = (
    "email",
    "name",
    "phone",
    "address",
    "line1",
    "line2",
    "postal_code",
    "zip",
    "city",
    "ip",
    "birth",
    "tax_id",
    "last4",
)
#: Keys containing a personal-data word that are not personal data.
NOT_PERSONAL = frozenset({"event", "type", "object", "name_collection", "plan_name", "ip_version"})

#: Objects shown as they are (a call's ``context.library`` names bridge, not a person).
NOT_PERSONAL_TREES = frozenset({"library"})

_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[A-Za-z]{2,}")
#: An international phone number (a leading +); dates and ids without it are not.
_PHONE = re.compile(r"^\+[0-9][0-9 ().-]{6,}[0-9]$")

#: What a masked value shows.
MASK = "••••"


def mask_value(value: str) -> str:
    """A masked credential: nothing of it, only its length."""
    return f"{MASK} ({len(value)} chars, masked)"


#: One pattern for every part: this runs on each webhook, so it must be cheap.
_SECRET_HEADER = re.compile("|".join(map(re.escape, SECRET_HEADER_PARTS)), re.IGNORECASE)


def mask_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Headers with every credential or signature value replaced (names kept)."""
    search = _SECRET_HEADER.search
    return {name: mask_value(value) if search(name) else value for name, value in headers.items()}


def _personal_key(key: str) -> bool:
    lower = key.lower()
    if lower in NOT_PERSONAL:
        return False
    if lower == "ip" or lower.endswith(("_ip", "ip_address")):
        return True
    return any(part in lower for part in PERSONAL_KEYS if part != "ip")


def _personal_value(value: str) -> bool:
    return bool(_EMAIL.search(value) or _PHONE.match(value))


def mask_personal(obj: Any, key: str = "") -> tuple[Any, int]:
    """A copy of ``obj`` with values that look like personal data masked, and how many."""
    if isinstance(obj, dict):
        total = 0
        out: dict[str, Any] = {}
        for k, v in obj.items():
            if k in NOT_PERSONAL_TREES:
                out[k] = v
                continue
            out[k], n = mask_personal(v, str(k))
            total += n
        return out, total
    if isinstance(obj, list):
        items = [mask_personal(v, key) for v in obj]
        return [v for v, _ in items], sum(n for _, n in items)
    if obj is None or isinstance(obj, bool):
        return obj, 0
    if isinstance(obj, str | int | float) and (
        (key and _personal_key(key) and not isinstance(obj, bool))
        or (isinstance(obj, str) and _personal_value(obj))
    ):
        if isinstance(obj, str) and not obj:
            return obj, 0
        return f"{MASK} personal data", 1
    return obj, 0
