"""``bridge sources``: every source, provider, on/off and why, variables never values."""

from __future__ import annotations

import json

from click.testing import CliRunner

from bridge.cli import main
from tests.conftest import ROOT
from tests.revenue_secrets import REVENUE_SOURCES

SECRET_VALUE = "whsec_value_that_must_not_show"
ENV = {
    "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
    "STRIPE_WEBHOOK_SECRET": SECRET_VALUE,
    "CLERK_WEBHOOK_SECRET": "",
    "GITHUB_WEBHOOK_SECRET": "",
    "BRIDGE_SOURCES": "",
}


def run(*args: str, **env: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["sources", *args], env={**ENV, **env})
    return result.exit_code, result.stdout, result.stderr


def test_table_lists_every_source_with_state_reason_and_variables() -> None:
    code, out, err = run()
    assert code == 0, out + err
    lines = out.splitlines()
    assert lines[0].split() == [
        "SOURCE", "PROVIDER", "STATE", "WHY", "SECRET", "VARIABLES", "RULES", "EVENT", "TYPES"
    ]  # fmt: skip
    rows = {line.split()[0]: line for line in lines[1:]}
    assert set(rows) == {"clerk", "github", "site", "stripe", *REVENUE_SOURCES}
    assert rows["stripe"].split()[1:3] == ["stripe", "on"]
    assert "STRIPE_WEBHOOK_SECRET set" in rows["stripe"]
    assert rows["clerk"].split()[1:3] == ["standard-webhooks", "off"]
    assert "CLERK_WEBHOOK_SECRET is not set" in rows["clerk"]
    assert rows["github"].split()[1:3] == ["github", "off"]
    # The shipped clerk.yaml has two rules: user.created and user.updated.
    assert rows["clerk"].split()[-3:] == ["2", "user.created,", "user.updated"]
    assert SECRET_VALUE not in out + err
    assert f"1 of {4 + len(REVENUE_SOURCES)} source(s) on" in err


def test_json_output() -> None:
    code, out, _ = run("--json")
    assert code == 0
    by_name = {s["source"]: s for s in json.loads(out)}
    assert by_name["clerk"] == {
        "source": "clerk",
        "provider": "standard-webhooks",
        "dedup_on": "message id (webhook-id header)",
        "on": False,
        "reason": "CLERK_WEBHOOK_SECRET is not set",
        "secrets": ["CLERK_WEBHOOK_SECRET"],
        "rules": 2,
        "event_types": ["user.created", "user.updated"],
        "file": str(ROOT / "mappings" / "clerk.yaml"),
        "extends": None,
    }
    assert SECRET_VALUE not in out


def test_pinned_source_without_secret_is_an_error() -> None:
    code, _, err = run(BRIDGE_SOURCES="clerk")
    assert code == 2
    assert "CLERK_WEBHOOK_SECRET is not set" in err
    assert "BRIDGE_SOURCES lists 'clerk'" in err
