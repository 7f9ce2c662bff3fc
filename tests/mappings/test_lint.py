from __future__ import annotations

from pathlib import Path

import pytest

from bridge.mappings import load_text
from bridge.mappings.lint import check

from .test_loader import MINIMAL


def lint(text: str) -> list[str]:
    _, problems = load_text(text, "src", {"SECRET": "s"}, "m.yaml")
    return [str(p) for p in problems]


def test_a_clean_mapping_has_no_findings() -> None:
    assert lint(MINIMAL) == []


def test_bad_expression_points_into_the_text() -> None:
    text = MINIMAL.replace(
        "        event: Order Completed",
        "        event: Order Completed\n        properties:\n          total: money(data.amount,",
    )
    found = lint(text)
    assert len(found) == 1
    assert found[0].startswith("m.yaml:12:")
    assert ": expression: " in found[0]


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            ("event: Order Completed", "event: Order Completed\n        name: x"),
            "m.yaml:11:9: schema: rule 'paid': track does not take 'name'",
        ),
        (
            ("        event: Order Completed\n", ""),
            "m.yaml:9:9: required: rule 'paid': track needs 'event'",
        ),
        (
            ("type: track\n        event: Order Completed", "type: group"),
            "m.yaml:9:9: required: rule 'paid': group needs 'groupId'",
        ),
        (
            ("provider: stripe", "provider: paypal"),
            "m.yaml:1:11: provider: unknown provider 'paypal'",
        ),
        (("on: invoice.paid", "on: 'invoice.**'"), "m.yaml:7:9: pattern: rule 'paid'"),
        (("type: track", "type: tracks"), "m.yaml:9:15: schema: rules.0.emit.0.type: expected"),
        (("when: x", "when: x"), None),
    ],
)
def test_findings(change: tuple[str, str], expected: str | None) -> None:
    found = lint(MINIMAL.replace(*change))
    if expected is None:
        assert found == []
    else:
        assert len(found) == 1, found
        assert found[0].startswith(expected)


def test_rule_without_identity_source() -> None:
    text = MINIMAL.replace("identity:\n  user_id: data.object.metadata.user_id\n", "")
    found = lint(text)
    assert found == [
        "m.yaml:7:7: identity: rule 'paid' emits calls but has no identity source: set "
        "`identity.user_id`, `customer` or `anonymous_id` (file or rule)"
    ]


def test_alias_needs_a_user_id_source() -> None:
    text = MINIMAL.replace(
        "user_id: data.object.metadata.user_id", "customer: data.object.customer"
    )
    text = text.replace(
        "type: track\n        event: Order Completed", "type: alias\n        previousId: a"
    )
    assert [p.split(": ")[1] for p in lint(text)] == ["identity"]


def test_duplicate_rule_names() -> None:
    rule = MINIMAL.split("rules:\n")[1]
    assert "duplicate rule name 'paid'" in lint(MINIMAL + rule)[0]


def test_unset_secret_of_a_pinned_source_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(MINIMAL)
    result = check([tmp_path], {}, pinned=["s"])
    assert [str(p) for p in result.problems] == [
        f"{tmp_path / 's.yaml'}:2:10: secret: environment variable SECRET is not set "
        "(and has no default); BRIDGE_SOURCES lists 's', so it must be set"
    ]


def test_unset_secret_of_an_unpinned_source_is_a_note(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(MINIMAL)
    result = check([tmp_path], {})
    assert result.problems == []
    assert [str(p) for p in result.notes] == [
        f"{tmp_path / 's.yaml'}:2:10: info: source 's' is off: SECRET is not set"
    ]


def test_other_problems_of_an_off_source_are_still_findings(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(MINIMAL.replace("rules:", "bogus: 1\nrules:"))
    result = check([tmp_path], {})
    assert [p.kind for p in result.problems] == ["unknown-key"]


def test_pinning_an_unknown_source_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(MINIMAL)
    result = check([tmp_path], {"SECRET": "x"}, pinned=["s", "nope"])
    assert [p.message for p in result.problems] == ["BRIDGE_SOURCES lists 'nope': no such source"]


def test_test_files_are_linted(tmp_path: Path) -> None:
    (tmp_path / "s.yaml").write_text(MINIMAL)
    (tmp_path / "s.tests.yaml").write_text("cases:\n  - name: x\n    evnt: {}\n")
    result = check([tmp_path], {"SECRET": "x"})
    kinds = [(p.line, p.kind) for p in result.problems]
    assert (3, "test") in kinds
    assert result.rules == 1
