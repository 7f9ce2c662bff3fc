"""Provider registration: built-ins and third parties the same way."""

from __future__ import annotations

from typing import ClassVar

import pytest

from bridge.errors import ConfigError
from bridge.providers import get_provider, known_providers, register


def test_builtins_are_registered() -> None:
    assert {"stripe", "standard-webhooks", "github"} <= set(known_providers())


def test_unknown_provider_names_the_known_ones() -> None:
    with pytest.raises(ConfigError, match=r"known: .*stripe"):
        get_provider("paypal")


def test_a_third_party_provider_registers_like_a_builtin() -> None:
    class Echo:
        identifier: ClassVar[str] = "test-echo"

    register(Echo)  # type: ignore[arg-type]
    assert isinstance(get_provider("test-echo"), Echo)
