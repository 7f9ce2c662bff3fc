"""POST one batch to ``{SEGMENT_ENDPOINT}/v1/batch`` and classify the answer.

The HTTP client is httpx with an injectable transport (tests may pass one; prefer the
real local collector). Outcomes map onto :mod:`bridge.errors`::

    2xx                                   accepted
    network error, timeout, 408, 429, 5xx RetryableDelivery(retry_after)
    any other 4xx                         RejectedDelivery (the calls go to the DLQ)
"""

from __future__ import annotations

import email.utils
import gzip
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from bridge.errors import RejectedDelivery, RetryableDelivery

RETRYABLE_STATUS = frozenset({408, 429})

#: Characters of the collector's answer kept in errors and dead letters.
ANSWER_CHARS = 1000


def iso_now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def batch_body(calls: bytes, sent_at: str | None = None) -> bytes:
    """The request body, built around the stored JSON array without re-serialising it."""
    return b'{"batch":' + calls + b',"sentAt":"' + (sent_at or iso_now()).encode() + b'"}'


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


@dataclass
class Answer:
    """What the collector said to an accepted batch."""

    status: int
    elapsed: float


class Sender:
    """Sends batch bodies; one instance per process (it keeps a connection pool)."""

    def __init__(
        self,
        url: str,
        write_key: str | None,
        *,
        timeout: float = 10.0,
        gzip_body: bool = True,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.url = url
        self.gzip = gzip_body
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            auth=httpx.BasicAuth(write_key, "") if write_key else None,
            transport=transport,
            headers={"Content-Type": "application/json", "User-Agent": "bridge"},
        )

    def send(self, calls: bytes) -> Answer:
        """POST the batch holding ``calls`` (a JSON array); raise a DeliveryError."""
        body = batch_body(calls)
        headers = {}
        if self.gzip:
            body = gzip.compress(body, compresslevel=5)
            headers["Content-Encoding"] = "gzip"
        started = time.perf_counter()
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect, read, write, timeouts, protocol
            raise RetryableDelivery(
                f"{type(exc).__name__}: {exc}"[:ANSWER_CHARS], reason=_slug(exc)
            ) from exc
        elapsed = time.perf_counter() - started
        status = response.status_code
        if 200 <= status < 300:
            return Answer(status, elapsed)
        answer = f"{status} {response.text[:ANSWER_CHARS]}"
        if status in RETRYABLE_STATUS or status >= 500:
            raise RetryableDelivery(
                answer,
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
                reason=f"http_{status}",
            )
        raise RejectedDelivery(answer, reason=f"http_{status}", status=status)

    def close(self) -> None:
        self._client.close()


def _slug(exc: Exception) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return "timeout"
    if isinstance(exc, httpx.ConnectError):
        return "connect_error"
    return "network_error"
