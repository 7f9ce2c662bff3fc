"""Stripe's API as bridge uses it: list events, fetch one event or object.

Backfill, reconcile and enrichment all read through :class:`StripeApi`, built on the
official ``stripe`` SDK (``StripeClient.raw_request``: the SDK signs, versions and
decodes errors; the raw body keeps each event exactly as Stripe rendered it). The base
URL is ``STRIPE_API_BASE`` (tests point it at a local server, egress proxies at
themselves). The key only needs to read events, and objects for enrichment:

* ``rk_…`` restricted key with **Events: Read** (backfill, reconcile); add **Checkout
  Sessions: Read** for ``products`` on Checkout orders and the read permission of each
  object type a thin event points to.

Rate limits and failures: the SDK's own retries are off; :meth:`StripeApi.request`
retries 429 (waiting ``Retry-After`` when given), 409, 5xx, timeouts and connection
errors with capped exponential backoff, and defers to ``Stripe-Should-Retry`` when
Stripe sends it. When the attempts are spent it raises
:class:`~bridge.errors.ProviderApiError` (``retryable=True``): the caller keeps its
checkpoint or its event and tries again later; nothing is dropped.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import stripe

from bridge.errors import ConfigError, ProviderApiError
from bridge.log import get_logger
from bridge.settings import Settings

__all__ = ["MAX_TYPES", "PAGE_SIZE", "RETENTION_SECONDS", "EventPage", "StripeApi"]

log = get_logger("bridge.stripe_api")

#: Stripe keeps events behind the List Events API for 30 days.
RETENTION_SECONDS = 30 * 24 * 3600

#: Events per page (Stripe's maximum ``limit``).
PAGE_SIZE = 100

#: Stripe accepts at most 20 ``types[]`` per list request.
MAX_TYPES = 20

#: The permission a restricted key needs for backfill and reconcile.
PERMISSION = "Events: Read"


@dataclass(frozen=True)
class EventPage:
    """One page of ``GET /v1/events``: each event as raw JSON bytes and parsed."""

    events: list[tuple[bytes, dict[str, Any]]]
    has_more: bool

    @property
    def last_id(self) -> str | None:
        """The cursor for the next page (``starting_after``)."""
        return str(self.events[-1][1]["id"]) if self.events else None


@dataclass
class StripeApi:
    """A read-only client of Stripe's API with retries that honour rate limits."""

    client: stripe.StripeClient
    #: Attempts per request before giving up (429, 5xx, network errors).
    attempts: int = 5
    #: First backoff (s); doubles per attempt, with jitter, capped at ``backoff_max``.
    backoff: float = 0.5
    backoff_max: float = 30.0
    #: Waits between attempts go through here (tests record instead of sleeping).
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings, **kwargs: Any) -> StripeApi:
        """The client the settings describe; ConfigError without ``STRIPE_API_KEY``."""
        if settings.stripe_api_key is None:
            raise ConfigError(
                "STRIPE_API_KEY is not set: backfill, reconcile and enrichment need a "
                f"restricted key (rk_...) with {PERMISSION}"
            )
        client = stripe.StripeClient(
            settings.stripe_api_key.get_secret_value(),
            base_addresses={"api": settings.stripe_api_base},
            max_network_retries=0,  # retried here, honouring Retry-After
            http_client=stripe.RequestsClient(timeout=settings.stripe_api_timeout),
        )
        return cls(client, **kwargs)

    # --- requests -------------------------------------------------------------------

    def request(
        self, path: str, params: Mapping[str, Any] | None = None, *, account: str | None = None
    ) -> bytes:
        """``GET path`` and return the raw body; retry what can pass later."""
        options: dict[str, Any] = dict(params or {})
        if account:
            # v1 names a connected account with Stripe-Account, v2 with Stripe-Context.
            options["stripe_context" if path.startswith("/v2/") else "stripe_account"] = account
        last: ProviderApiError | None = None
        for attempt in range(1, self.attempts + 1):
            try:
                response = self.client.raw_request("get", path, **options)
            except stripe.StripeError as exc:
                last = _classify(exc, path)
                if not last.retryable or attempt == self.attempts:
                    raise last from None
                wait = self._wait(attempt, last.retry_after)
                log.warning(
                    "stripe_api_retry",
                    path=path,
                    status=last.status,
                    attempt=attempt,
                    wait=round(wait, 3),
                    error=last.message,
                )
                self.sleep(wait)
                continue
            body = response.body
            return body.encode() if isinstance(body, str) else bytes(body)
        raise last or ProviderApiError(f"GET {path} failed", retryable=True)  # pragma: no cover

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.backoff_max)
        base = min(self.backoff * 2.0 ** (attempt - 1), self.backoff_max)
        return base * (0.5 + random.random() / 2)

    def get_json(
        self, path: str, params: Mapping[str, Any] | None = None, *, account: str | None = None
    ) -> tuple[bytes, dict[str, Any]]:
        """``GET path`` as raw bytes and the parsed object."""
        raw = self.request(path, params, account=account)
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ProviderApiError(f"GET {path}: answer is not a JSON object", retryable=True)
        return raw, data

    # --- events ---------------------------------------------------------------------

    def list_events_page(
        self,
        *,
        gte: int | None = None,
        lte: int | None = None,
        types: Sequence[str] = (),
        starting_after: str | None = None,
        delivery_success: bool | None = None,
        account: str | None = None,
        limit: int = PAGE_SIZE,
    ) -> EventPage:
        """One page of ``GET /v1/events`` (newest first)."""
        # The SDK encodes these as created[gte]=..., types[0]=... (Stripe's form encoding).
        params: dict[str, Any] = {"limit": limit}
        created = {k: v for k, v in (("gte", gte), ("lte", lte)) if v is not None}
        if created:
            params["created"] = created
        if starting_after:
            params["starting_after"] = starting_after
        if delivery_success is not None:
            params["delivery_success"] = "true" if delivery_success else "false"
        if types:
            if len(types) > MAX_TYPES:
                raise ConfigError(f"Stripe lists at most {MAX_TYPES} event types at once")
            params["types"] = list(types)
        _, data = self.get_json("/v1/events", params, account=account)
        items = data.get("data")
        if data.get("object") != "list" or not isinstance(items, list):
            raise ProviderApiError("GET /v1/events: answer is not a list", retryable=True)
        events = [(orjson.dumps(item), item) for item in items if isinstance(item, dict)]
        return EventPage(events, bool(data.get("has_more")))

    def iter_events(
        self,
        *,
        starting_after: str | None = None,
        max_pages: int = 100_000,
        **filters: Any,
    ) -> Iterator[EventPage]:
        """Every page from ``starting_after`` on, following ``has_more`` (bounded)."""
        cursor = starting_after
        for _ in range(max_pages):
            page = self.list_events_page(starting_after=cursor, **filters)
            yield page
            if not page.has_more or page.last_id is None:
                return
            cursor = page.last_id

    def retrieve_event(self, event_id: str, *, account: str | None = None) -> bytes:
        """``GET /v1/events/{id}``: a snapshot event as Stripe renders it."""
        return self.request(f"/v1/events/{event_id}", account=account)


def _classify(exc: stripe.StripeError, path: str) -> ProviderApiError:
    """A bridge error saying whether the SDK's error can pass on a later attempt."""
    status = exc.http_status
    headers = exc.headers or {}
    should_retry = _header(headers, "Stripe-Should-Retry")
    retry_after: float | None = None
    raw_after = _header(headers, "Retry-After")
    if raw_after is not None:
        try:
            retry_after = float(raw_after)
        except ValueError:
            retry_after = None
    if isinstance(exc, stripe.APIConnectionError):
        retryable = True
        detail = f"no answer ({exc.user_message or 'connection error or timeout'})"
    else:
        retryable = status in (409, 429) or (status is not None and status >= 500)
        detail = f"HTTP {status}: {exc.user_message or type(exc).__name__}"
    if should_retry == "false":
        retryable = False
    elif should_retry == "true":
        retryable = True
    message = f"GET {path}: {detail}"
    if isinstance(exc, stripe.AuthenticationError | stripe.PermissionError):
        message += f" (STRIPE_API_KEY must be a key with {PERMISSION})"
    return ProviderApiError(message, retryable=retryable, status=status, retry_after=retry_after)


def _header(headers: Mapping[str, str], name: str) -> str | None:
    lowered = name.lower()
    for key, value in headers.items():
        if key.lower() == lowered:
            return value
    return None
