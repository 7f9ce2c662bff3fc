"""Provider plugins: each verifies its own signature scheme with the same ``verify()``.

Built-ins register exactly the way a third-party package would: by class, through
:func:`register`, or through the ``bridge.providers`` entry-point group.
"""

from __future__ import annotations

from importlib.metadata import entry_points

from bridge.errors import ConfigError
from bridge.providers.base import (
    DEFAULT_TOLERANCE,
    EventFacts,
    Provider,
    ProviderBase,
    Sample,
    VerifiedEvent,
)
from bridge.providers.chargebee import ChargebeeProvider
from bridge.providers.github import GitHubProvider
from bridge.providers.lemonsqueezy import LemonSqueezyProvider
from bridge.providers.paddle import PaddleProvider
from bridge.providers.paystack import PaystackProvider
from bridge.providers.polar import PolarProvider
from bridge.providers.razorpay import RazorpayProvider
from bridge.providers.recurly import RecurlyProvider
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
    "register",
]

_REGISTRY: dict[str, type[Provider]] = {}


def register(cls: type[Provider]) -> type[Provider]:
    """Make a provider class available to mapping files under ``cls.identifier``."""
    _REGISTRY[cls.identifier] = cls
    return cls


for _cls in (StripeProvider, StandardWebhooksProvider, GitHubProvider):
    register(_cls)

# Issue 11: the revenue providers beyond Stripe.
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


def get_provider(identifier: str) -> Provider:
    """An instance of the provider registered as ``identifier``."""
    if identifier not in _REGISTRY:
        _load_entry_points()
    try:
        return _REGISTRY[identifier]()
    except KeyError:
        raise ConfigError(
            f"unknown provider {identifier!r}; known: {', '.join(known_providers())}"
        ) from None
