"""Provider plugins: each verifies its own signature scheme with the same ``verify()``.

Built-ins register exactly the way a third-party package would: by class, through
:func:`register`, or through the ``bridge.providers`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from pydantic import BaseModel

from bridge.errors import ConfigError
from bridge.providers.base import (
    DEFAULT_TOLERANCE,
    EventFacts,
    Provider,
    ProviderBase,
    Sample,
    VerifiedEvent,
    verify_closed,
)
from bridge.providers.chargebee import ChargebeeProvider
from bridge.providers.generic_hmac import GenericHmacProvider
from bridge.providers.github import GitHubProvider
from bridge.providers.lemonsqueezy import LemonSqueezyProvider
from bridge.providers.paddle import PaddleProvider
from bridge.providers.paystack import PaystackProvider
from bridge.providers.polar import PolarProvider
from bridge.providers.razorpay import RazorpayProvider
from bridge.providers.recurly import RecurlyProvider
from bridge.providers.segment import SegmentProvider
from bridge.providers.shopify import ShopifyProvider
from bridge.providers.square import SquareProvider
from bridge.providers.standard_webhooks import StandardWebhooksProvider
from bridge.providers.stripe import StripeProvider
from bridge.providers.woocommerce import WooCommerceProvider

__all__ = [
    "DEFAULT_TOLERANCE",
    "EventFacts",
    "Provider",
    "ProviderBase",
    "Sample",
    "VerifiedEvent",
    "get_provider",
    "known_providers",
    "provider_class",
    "register",
    "verify_closed",
]

_REGISTRY: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Make a provider class available to mapping files under ``cls.identifier``."""
    _REGISTRY[cls.identifier] = cls
    return cls


for _cls in (
    StripeProvider,
    StandardWebhooksProvider,
    GitHubProvider,
    GenericHmacProvider,
    SegmentProvider,
):
    register(_cls)

# The revenue providers beyond Stripe.
_REVENUE: tuple[type[Provider], ...] = (
    ShopifyProvider,
    PaddleProvider,
    LemonSqueezyProvider,
    PaystackProvider,
    RazorpayProvider,
    SquareProvider,
    WooCommerceProvider,
    RecurlyProvider,
    ChargebeeProvider,
    PolarProvider,
)
for _provider in _REVENUE:
    register(_provider)


def _load_entry_points() -> None:
    for ep in entry_points(group="bridge.providers"):
        if ep.name not in _REGISTRY:
            register(ep.load())


def known_providers() -> list[str]:
    """Identifiers a mapping file may name in ``provider:``."""
    _load_entry_points()
    return sorted(_REGISTRY)


def provider_class(identifier: str) -> type[Provider]:
    """The class registered as ``identifier`` (ConfigError naming the known ones)."""
    if identifier not in _REGISTRY:
        _load_entry_points()
    try:
        return _REGISTRY[identifier]
    except KeyError:
        raise ConfigError(
            f"unknown provider {identifier!r}; known: {', '.join(known_providers())}"
        ) from None


def get_provider(identifier: str, config: BaseModel | None = None) -> Provider:
    """An instance of the provider registered as ``identifier`` (``config``: its
    validated ``signature`` block, for providers configured in the mapping)."""
    cls = provider_class(identifier)
    if config is None:
        return cls()
    return cls(config)  # type: ignore[call-arg]
