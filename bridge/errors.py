"""The errors bridge raises, as one small tree.

Every error says whether retrying the same work later can succeed (``retryable``).
Intake turns them into HTTP answers (``status``); workers use ``retryable`` to choose
between a retry with backoff and the dead-letter store.

::

    BridgeError
    ├── ConfigError                 invalid settings or mapping files (not retryable)
    ├── WebhookError                a request intake refuses (4xx, not retryable)
    │   ├── UnknownSource           no mapping file for <source> (404)
    │   ├── SourceOff               <source> is in the catalogue but off (404)
    │   ├── PayloadTooLarge         body over BRIDGE_MAX_BODY_BYTES (413)
    │   ├── UnreadableBody          the body could not be read (bad chunking, cut off) (400)
    │   ├── SignatureError          missing/malformed/wrong/unverifiable signature (400)
    │   │   └── TimestampOutOfTolerance   signed timestamp too old or too new (400)
    │   └── MalformedPayload        verified body is not what the provider sends (400)
    ├── StoreUnavailable            Redis unreachable, full or refusing writes (503, retryable)
    ├── MappingError                an event cannot be mapped (dead letter, not retryable)
    └── DeliveryError               the collector did not take a batch
        ├── RetryableDelivery       network error, timeout or POST deadline, 3xx, 408, 429, 5xx
        └── RejectedDelivery        any other 4xx, or a call/batch over the size limits
    └── ProviderApiError            a provider API call failed (retryable: 429, 5xx, network)
"""

from __future__ import annotations


class BridgeError(Exception):
    """Base of every error bridge raises on purpose."""

    #: Whether the same work can succeed if tried again later.
    retryable: bool = False

    def __init__(self, message: str, **context: object) -> None:
        super().__init__(message)
        self.message = message
        #: Structured facts for logs (never secrets, never whole bodies).
        self.context = context

    def __str__(self) -> str:
        return self.message


class ConfigError(BridgeError):
    """Settings or mapping files are invalid; ``problems`` lists each one."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or [message]

    def __str__(self) -> str:
        if self.problems == [self.message]:
            return self.message
        return "\n".join([f"{self.message}:", *(f"  {p}" for p in self.problems)])


class WebhookError(BridgeError):
    """A webhook request that intake refuses. ``status`` is the HTTP answer, ``reason``
    a stable machine-readable slug used in metrics and logs."""

    status: int = 400
    reason: str = "bad_request"


class UnknownSource(WebhookError):
    """No mapping file defines this source."""

    status = 404
    reason = "unknown_source"


class SourceOff(WebhookError):
    """The source exists in the catalogue but is switched off (e.g. its secret is unset)."""

    status = 404
    reason = "source_off"


class PayloadTooLarge(WebhookError):
    """The body is larger than the configured limit."""

    status = 413
    reason = "payload_too_large"


class UnreadableBody(WebhookError):
    """The request body could not be read: broken chunked encoding, a client that went
    away mid-body. Nothing was verified, so nothing is stored."""

    reason = "unreadable_body"


class SignatureError(WebhookError):
    """The signature is missing, malformed, or matches none of the source's secrets."""

    reason = "bad_signature"

    def __init__(self, message: str, reason: str | None = None, **context: object) -> None:
        super().__init__(message, **context)
        if reason is not None:
            self.reason = reason


class TimestampOutOfTolerance(SignatureError):
    """The signed timestamp is further from now than the source's tolerance."""

    reason = "timestamp_out_of_tolerance"


class MalformedPayload(WebhookError):
    """The signature is fine but the body is not what the provider sends."""

    reason = "malformed_payload"


class StoreUnavailable(BridgeError):
    """Redis cannot take the event (unreachable, full, read-only); the provider should
    retry (HTTP 503). ``reason``: ``unavailable``, ``store_full``,
    ``store_refusing_writes`` or ``store_not_replicated`` (``BRIDGE_REPLICAS_ACK``)."""

    retryable = True

    def __init__(self, message: str, reason: str = "unavailable", **context: object) -> None:
        super().__init__(message, **context)
        self.reason = reason


class MappingError(BridgeError):
    """An event cannot be turned into calls (bad payload for the rule, no identity)."""


class DeliveryError(BridgeError):
    """The collector did not accept a batch."""


class RetryableDelivery(DeliveryError):
    """Network error, timeout or total POST deadline, a redirect (3xx: never followed, the
    reason names the fix), 408, 429 or 5xx: send the same batch again later."""

    retryable = True

    def __init__(self, message: str, retry_after: float | None = None, **context: object) -> None:
        super().__init__(message, **context)
        #: Seconds the collector asked us to wait (``Retry-After``), if it said.
        self.retry_after = retry_after


class RejectedDelivery(DeliveryError):
    """The collector refused the calls for good, or they can never be sent as they are."""


class ProviderApiError(BridgeError):
    """A call to a provider's API (Stripe's Events API, an object fetch) failed.

    ``retryable`` is per instance: rate limits, timeouts and 5xx can pass later; a bad
    key or a missing permission cannot."""

    def __init__(
        self,
        message: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        **context: object,
    ) -> None:
        super().__init__(message, **context)
        self.retryable = retryable
        #: HTTP status of the last answer (None: no answer, a network error or timeout).
        self.status = status
        #: Seconds the API asked us to wait (``Retry-After``), if it said.
        self.retry_after = retry_after
