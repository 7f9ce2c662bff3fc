"""Helpers that build ``context`` members of Segment calls for :class:`~bridge.delivery.Client`.

    from bridge.delivery.context import browser_anonymous_id, consent, external_ids, merge

    client.track(
        user_id="u1",
        event="Order Completed",
        properties={"revenue": 30},
        # Join the browser's session: the id analytics.js keeps in its cookie.
        anonymous_id=browser_anonymous_id(request.headers.get("Cookie")),
        context=merge(
            consent({"Analytics": True, "Advertising": False}),
            external_ids(("cus_123", "stripe_customer_id")),
        ),
    )
"""

from __future__ import annotations

from collections.abc import Mapping
from http.cookies import CookieError, SimpleCookie
from typing import Any

from bridge.collect.middleware import ANONYMOUS_COOKIE, cookie_value

__all__ = ["browser_anonymous_id", "consent", "external_ids", "merge"]


def external_ids(
    *ids: tuple[str, str], collection: str = "users", encoding: str = "none"
) -> dict[str, Any]:
    """``context.externalIds`` from ``(id, type)`` pairs (``("cus_1", "stripe_customer_id")``)."""
    return {
        "externalIds": [
            {"id": str(i), "type": t, "collection": collection, "encoding": encoding}
            for i, t in ids
        ]
    }


def consent(categories: Mapping[str, bool]) -> dict[str, Any]:
    """``context.consent`` as Segment's consent management writes it."""
    return {"consent": {"categoryPreferences": {k: bool(v) for k, v in categories.items()}}}


def browser_anonymous_id(cookies: str | Mapping[str, str] | None) -> str | None:
    """The ``ajs_anonymous_id`` analytics.js set in the browser, from a ``Cookie`` header
    or a mapping of cookies (``request.cookies``); None when there is none."""
    if cookies is None:
        return None
    if isinstance(cookies, str):
        jar = SimpleCookie()
        try:
            jar.load(cookies)
        except CookieError:
            return None
        morsel = jar.get(ANONYMOUS_COOKIE)
        return cookie_value(morsel.value) if morsel is not None else None
    return cookie_value(cookies.get(ANONYMOUS_COOKIE))


def merge(*contexts: Mapping[str, Any] | None) -> dict[str, Any]:
    """One ``context`` from several (later ones win, objects merged one level deep)."""
    out: dict[str, Any] = {}
    for ctx in contexts:
        for key, value in (ctx or {}).items():
            if isinstance(value, dict) and isinstance(out.get(key), dict):
                out[key] = {**out[key], **value}
            else:
                out[key] = value
    return out
