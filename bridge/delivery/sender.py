"""POST one batch to ``{SEGMENT_ENDPOINT}/v1/batch`` and classify the answer.

The HTTP client is httpx with an injectable transport (tests may pass one; prefer the
real local collector). Outcomes map onto :mod:`bridge.errors`::

    2xx                                   accepted
    network error, timeout, 408, 429, 5xx RetryableDelivery(retry_after)
    3xx (a redirect)                      RetryableDelivery: fix SEGMENT_ENDPOINT
    any other 4xx                         RejectedDelivery (the calls go to the DLQ)

Each POST has a total deadline of ``timeout`` seconds (BRIDGE_HTTP_TIMEOUT), from the
connect to the last byte of the answer. httpx's timeouts apply to each socket read or
write, so a collector that trickles its answer a byte at a time would otherwise hold
the worker (and every batch behind it) for as long as it likes: the default transport
clamps every socket operation to the time left before the deadline.

A redirect is never followed: a POST must not be silently re-sent elsewhere (httpx
would turn it into a GET for 301/302/303). It means SEGMENT_ENDPOINT is wrong, which
is a configuration error, not a fact about the calls, so the batch is kept and retried
with backoff (the reason names the ``Location``) until the endpoint is fixed: nothing
is lost and nothing needs replaying.
"""

from __future__ import annotations

import email.utils
import gzip
import time
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from httpcore._backends.base import SOCKET_OPTION

from bridge import timefmt
from bridge.errors import RejectedDelivery, RetryableDelivery

RETRYABLE_STATUS = frozenset({408, 429})

#: Characters of the collector's answer kept in errors and dead letters.
ANSWER_CHARS = 1000


def batch_body(calls: bytes, sent_at: str | None = None) -> bytes:
    """The request body, built around the stored JSON array without re-serialising it."""
    return b'{"batch":' + calls + b',"sentAt":"' + (sent_at or timefmt.iso8601()).encode() + b'"}'


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


#: monotonic() time by which the current POST must be over (None: no deadline).
_DEADLINE: ContextVar[float | None] = ContextVar("bridge_post_deadline", default=None)


def _left(timeout: float | None) -> float | None:
    """``timeout`` for one socket operation, cut to what is left of the POST's deadline."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    left = max(deadline - time.monotonic(), 0.001)  # 0 would mean non-blocking
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    """A socket stream whose every read and write ends by the POST's deadline."""

    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _left(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _left(timeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, *args: Any, **kwargs: Any) -> httpcore.NetworkStream:
        if "timeout" in kwargs:
            kwargs["timeout"] = _left(kwargs["timeout"])
        return _DeadlineStream(self._inner.start_tls(*args, **kwargs))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, with streams that honour the POST's deadline."""

    def __init__(self) -> None:
        self._inner = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.connect_tcp(host, port, _left(timeout), local_address, socket_options)
        return _DeadlineStream(inner)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        inner = self._inner.connect_unix_socket(path, _left(timeout), socket_options)
        return _DeadlineStream(inner)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


def deadline_transport() -> httpx.HTTPTransport:
    """httpx's default transport on :class:`_DeadlineBackend` (same pool settings)."""
    transport = httpx.HTTPTransport()
    # httpx has no parameter for the network backend: rebuild its pool with one (the
    # same defaults HTTPTransport() uses).
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=20)
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=limits.max_connections,
        max_keepalive_connections=limits.max_keepalive_connections,
        keepalive_expiry=5.0,
        network_backend=_DeadlineBackend(),
    )
    return transport


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
        self.timeout = timeout
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout),
            auth=httpx.BasicAuth(write_key, "") if write_key else None,
            transport=transport or deadline_transport(),
            follow_redirects=False,
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
        token = _DEADLINE.set(time.monotonic() + self.timeout)
        try:
            response = self._client.post(self.url, content=body, headers=headers)
        except httpx.TransportError as exc:  # connect, read, write, timeouts, protocol
            message = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, httpx.TimeoutException):
                message = f"no complete answer within {self.timeout:g} s ({message})"
            raise RetryableDelivery(message[:ANSWER_CHARS], reason=_slug(exc)) from exc
        finally:
            _DEADLINE.reset(token)
        elapsed = time.perf_counter() - started
        status = response.status_code
        if 200 <= status < 300:
            return Answer(status, elapsed)
        if 300 <= status < 400:
            location = response.headers.get("Location", "(no Location)")
            raise RetryableDelivery(
                f"{status} redirect to {location}: set SEGMENT_ENDPOINT to the collector's "
                "own address (a POST is never re-sent to a redirect)"[:ANSWER_CHARS],
                reason=f"http_{status}",
                status=status,
                location=location,
            )
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
