"""Sources are switched on by configuration: secrets set, or BRIDGE_SOURCES."""

from __future__ import annotations

from pathlib import Path

import pytest

from bridge.catalogue import Catalogue
from bridge.errors import ConfigError
from bridge.settings import Settings
from tests.conftest import ROOT
from tests.revenue_secrets import REVENUE_SOURCES

#: Every shipped source, as lists in messages name them.
KNOWN = ", ".join(sorted(["clerk", "github", "site", "stripe", *REVENUE_SOURCES]))

SHIPPED = ROOT / "mappings"


def test_only_the_source_whose_secret_is_set_is_on() -> None:
    catalogue = Catalogue.load(SHIPPED, {"STRIPE_WEBHOOK_SECRET": "whsec_x"})
    assert catalogue.on == ["stripe"]
    assert catalogue.off == {
        "clerk": "CLERK_WEBHOOK_SECRET is not set",
        "github": "GITHUB_WEBHOOK_SECRET is not set",
        "site": "BRIDGE_WRITE_KEYS is not set",
        **{n: f"{n.upper()}_WEBHOOK_SECRET is not set" for n in REVENUE_SOURCES},
    }


def test_an_off_source_has_no_secret_to_verify_with() -> None:
    catalogue = Catalogue.load(SHIPPED, {"STRIPE_WEBHOOK_SECRET": "whsec_x"})
    clerk = catalogue.get("clerk")
    assert clerk is not None
    assert clerk.mapping.secrets == ()  # verifiers fail closed on no secret
    assert clerk.secret_vars == ("CLERK_WEBHOOK_SECRET",)
    # Still compiled: events made durable while it was on are still mapped.
    assert clerk.mapping.handles("user.created")


def test_an_empty_secret_counts_as_unset() -> None:
    catalogue = Catalogue.load(SHIPPED, {"STRIPE_WEBHOOK_SECRET": "", "GITHUB_WEBHOOK_SECRET": "g"})
    assert catalogue.on == ["github"]


def test_no_secret_at_all_is_a_valid_catalogue_with_every_source_off() -> None:
    catalogue = Catalogue.load(SHIPPED, {})
    assert catalogue.on == []
    assert set(catalogue.off) == {"clerk", "github", "site", "stripe", *REVENUE_SOURCES}


def test_pinned_sources_are_exactly_the_ones_on() -> None:
    env = {"STRIPE_WEBHOOK_SECRET": "s", "GITHUB_WEBHOOK_SECRET": "g", "CLERK_WEBHOOK_SECRET": "c"}
    catalogue = Catalogue.load(SHIPPED, env, pinned=["stripe"])
    assert catalogue.on == ["stripe"]
    assert catalogue.off == {
        "clerk": "not listed in BRIDGE_SOURCES",
        "github": "not listed in BRIDGE_SOURCES",
        "site": "not listed in BRIDGE_SOURCES (and BRIDGE_WRITE_KEYS is not set)",
        **{
            n: f"not listed in BRIDGE_SOURCES (and {n.upper()}_WEBHOOK_SECRET is not set)"
            for n in REVENUE_SOURCES
        },
    }


def test_a_pinned_source_without_its_secret_stops_the_boot_with_one_line() -> None:
    with pytest.raises(ConfigError) as info:
        Catalogue.load(SHIPPED, {"GITHUB_WEBHOOK_SECRET": "g"}, pinned=["stripe", "github"])
    assert info.value.problems == [
        f"{SHIPPED / 'stripe.yaml'}:13:10: secret: environment variable STRIPE_WEBHOOK_SECRET "
        "is not set (and has no default); BRIDGE_SOURCES lists 'stripe', so it must be set"
    ]


def test_pinning_an_unknown_source_stops_the_boot() -> None:
    with pytest.raises(ConfigError) as info:
        Catalogue.load(SHIPPED, {"STRIPE_WEBHOOK_SECRET": "s"}, pinned=["stripe", "paypal"])
    assert info.value.problems == [
        f"BRIDGE_SOURCES: no mapping for 'paypal' in {SHIPPED} (known: {KNOWN})"
    ]


def test_bridge_sources_is_read_from_the_environment() -> None:
    settings = Settings.from_env({"BRIDGE_SOURCES": " stripe, github ,,stripe"})
    assert settings.sources == ("stripe", "github")
    assert Settings.from_env({}).sources == ()


def test_a_broken_file_stops_the_boot_even_when_its_source_would_be_off(tmp_path: Path) -> None:
    text = (SHIPPED / "clerk.yaml").read_text().replace("rules:", "rulez:", 1)
    (tmp_path / "clerk.yaml").write_text(text)
    with pytest.raises(ConfigError) as info:
        Catalogue.load(tmp_path, {})
    assert any("unknown key 'rulez'" in p for p in info.value.problems)


def test_describe_names_variables_never_values() -> None:
    catalogue = Catalogue.load(SHIPPED, {"STRIPE_WEBHOOK_SECRET": "whsec_very_secret"})
    stripe = catalogue.get("stripe")
    assert stripe is not None
    described = stripe.describe()
    assert described["secrets"] == ["STRIPE_WEBHOOK_SECRET"]
    assert "whsec_very_secret" not in repr(described)
    assert described["on"] is True
    assert "invoice.paid" in described["event_types"]
