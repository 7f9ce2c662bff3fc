from __future__ import annotations

from pathlib import Path

import pytest

from bridge.catalogue import Catalogue
from bridge.errors import ConfigError
from bridge.mappings.loader import interpolate, parse_text

MINIMAL = """\
provider: stripe
secrets: ${SECRET}
identity:
  user_id: data.object.metadata.user_id
rules:
  - name: paid
    on: invoice.paid
    emit:
      - type: track
        event: Order Completed
"""


def problems_of(text: str, env: dict[str, str] | None = None) -> list[str]:
    from bridge.mappings import load_text

    _, problems = load_text(text, "src", {"SECRET": "s"} if env is None else env, "m.yaml")
    return [str(p) for p in problems]


def test_interpolation() -> None:
    unset: list[str] = []
    env = {"A": "1", "EMPTY": ""}
    assert (
        interpolate("${A}-${B:two}-${EMPTY:three}-$${A}", env, unset.append) == "1-two-three-${A}"
    )
    assert interpolate("${MISSING}", env, unset.append) == ""
    assert unset == ["MISSING"]


def test_catalogue_keys_by_stem_and_splits_rotated_secrets(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(MINIMAL)
    (tmp_path / "shop.tests.yaml").write_text("cases: []\n")  # not a mapping
    found = Catalogue.load(tmp_path, {"SECRET": "whsec_new, whsec_old"}).mappings()
    assert list(found) == ["shop"]
    shop = found["shop"]
    assert (shop.source, shop.provider, shop.tolerance) == ("shop", "stripe", 300)
    assert shop.secrets == ("whsec_new", "whsec_old")
    assert shop.handles("invoice.paid")
    assert not shop.handles("invoice.created")


def test_secret_list_and_tolerance(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "secrets: ${SECRET}", "secrets: [a, '${SECRET:b}']\noptions: {tolerance: 60}"
    )
    (tmp_path / "x.yaml").write_text(text)
    mapping = Catalogue.load(tmp_path, {}).mappings()["x"]
    assert mapping.secrets == ("a", "b")
    assert mapping.tolerance == 60


def test_config_error_lists_every_problem_with_position(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(MINIMAL)
    (tmp_path / "b.yaml").write_text(MINIMAL.replace("invoice.paid", "invoice paid"))
    with pytest.raises(ConfigError) as info:
        Catalogue.load(tmp_path, {}, pinned=["a"])  # pinned: its unset secret is a problem
    problems = info.value.problems
    assert (
        f"{tmp_path / 'a.yaml'}:2:10: secret: environment variable SECRET is not set" in problems[0]
    )
    assert any(p.startswith(f"{tmp_path / 'b.yaml'}:7:9: pattern:") for p in problems)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="invalid mapping files"):
        Catalogue.load(tmp_path / "nope", {})


def test_yaml_syntax_error_has_position() -> None:
    assert problems_of("provider: [stripe\nsecrets: x\n")[0].startswith("m.yaml:2:")


def test_unknown_key_points_at_the_key() -> None:
    text = MINIMAL.replace("    on: invoice.paid", "    on: invoice.paid\n    colour: red")
    assert problems_of(text) == ["m.yaml:8:5: unknown-key: unknown key 'colour'"]


def test_missing_required_keys() -> None:
    found = problems_of("provider: stripe\nsecrets: x\nrules:\n  - on: a\n")
    assert found == ["m.yaml:4:5: required: rules.0: missing required key 'name', 'emit'"]


def test_wrong_type() -> None:
    found = problems_of(MINIMAL.replace("on: invoice.paid", "on: {a: 1}"))
    assert len(found) == 1
    assert found[0].startswith("m.yaml:7:9: schema: rules.0.on:")


def test_parse_text_keeps_positions() -> None:
    model, positions, problems = parse_text(MINIMAL, "m.yaml", {"SECRET": "x"})
    assert model is not None
    assert not problems
    assert positions.value(("rules", 0, "emit", 0, "event")) == (10, 16)
    assert positions.key(("rules", 0, "on")) == (7, 5)
