"""What ``bridge dev`` needs of the console: a token for this run and its login link,
and dead letters as terminal lines as they happen."""

from __future__ import annotations

import contextlib
import secrets
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from redis import Redis
from redis.exceptions import RedisError

from bridge import keys
from bridge.delivery.deadletter import DeadLetters


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


#: Entries printed per poll at most (a burst of failures must not flood the terminal).
MAX_LINES = 20


@dataclass
class DeadLetterTail:
    """Remembers what it has shown; :meth:`poll` returns lines for the new entries."""

    redis: Redis
    console_url: str = ""
    _since: float = 0.0
    _seen: set[str] = field(default_factory=set)

    def poll(self) -> list[str]:
        """Lines for the dead letters added since the last poll (none if Redis is away)."""
        raw: Any = []
        with contextlib.suppress(RedisError, OSError):
            raw = self.redis.zrangebyscore(keys.DLQ_INDEX, self._since, "+inf", withscores=True)
        store = DeadLetters(self.redis)
        lines: list[str] = []
        fresh = [(m.decode() if isinstance(m, bytes) else str(m), s) for m, s in raw]
        fresh = [(m, s) for m, s in fresh if m not in self._seen]
        for entry_id, _ in fresh[:MAX_LINES]:
            entry = store.get(entry_id)
            if entry is None:
                continue
            what = " ".join(x for x in (entry.source, entry.event_id) if x) or (
                f"{len(entry.calls)} call(s)"
            )
            link = (
                f" — {self.console_url}/console/dead-letters/{entry_id}" if self.console_url else ""
            )
            lines.append(f"dead letter: {what}: {entry.reason}{link}")
        if len(fresh) > MAX_LINES:
            lines.append(f"… and {len(fresh) - MAX_LINES} more dead letters")
        if fresh:
            # Next time: from the newest score on, skipping the ids already shown at it.
            self._since = max(score for _, score in fresh)
            self._seen = {m for m, score in fresh if score == self._since}
        return lines
