"""docs/catalogue.md names every Stripe event type the catalogue takes and every call
it emits, so the reference cannot silently fall behind the mapping."""

from __future__ import annotations

import yaml

from tests.conftest import ROOT

DOC = (ROOT / "docs" / "catalogue.md").read_text()
RULES = yaml.safe_load((ROOT / "mappings" / "stripe.yaml").read_text())["rules"]


def test_every_event_type_and_call_is_in_the_catalogue_reference() -> None:
    ons = [r.get("on", r.get(True)) for r in RULES]  # PyYAML reads a bare `on` as true
    types = {t for on in ons for t in ([on] if isinstance(on, str) else on)}
    events = {c["event"] for r in RULES for c in r["emit"] if c["type"] == "track"}
    assert sorted(t for t in types if f"`{t}`" not in DOC) == []
    assert sorted(e for e in events if f"`{e}`" not in DOC) == []
