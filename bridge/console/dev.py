"""What ``bridge dev`` needs of the console: a token for this run and its login link,
and dead letters as terminal lines as they happen."""

from __future__ import annotations

import secrets
from urllib.parse import quote


def console_env(env: dict[str, str], web_url: str) -> str:
    """Turn the console on in ``env`` (a fresh token unless one is set; served on the web
    port over plain http, so the cookie is not ``Secure``) and return the login link.

    The token rides in the link's fragment, which the browser never sends to a server:
    the login page's script fills it in and logs in."""
    if not env.get("BRIDGE_CONSOLE_TOKEN"):
        env["BRIDGE_CONSOLE_TOKEN"] = secrets.token_urlsafe(24)
    env["BRIDGE_CONSOLE_PORT"] = ""
    env["BRIDGE_CONSOLE_SECURE_COOKIE"] = "false"
    return f"{web_url}/console/login#token={quote(env['BRIDGE_CONSOLE_TOKEN'], safe='')}"
