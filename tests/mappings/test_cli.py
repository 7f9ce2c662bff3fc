from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.cli import main
from tests.conftest import ROOT, payload_files
from tests.revenue_secrets import REVENUE_ENV, REVENUE_SOURCES

from .test_loader import MINIMAL

ENV = {
    "STRIPE_WEBHOOK_SECRET": "a",
    "GITHUB_WEBHOOK_SECRET": "b",
    "CLERK_WEBHOOK_SECRET": "c",
    "BRIDGE_WRITE_KEYS": "wk",
    **REVENUE_ENV,
    "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "BRIDGE_REDIS_TIMEOUT": "0.3",
}


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args), env=ENV if env is None else env)
    return result.exit_code, result.output


def test_check_ok() -> None:
    code, out = invoke("mappings", "check")
    assert code == 0, out
    assert out.startswith(f"OK: {4 + len(REVENUE_SOURCES)} mapping(s)")


def test_check_reports_unset_secret_of_a_pinned_source(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(MINIMAL)
    code, out = invoke("mappings", "check", str(tmp_path), env={**ENV, "BRIDGE_SOURCES": "shop"})
    assert code == 1
    assert f"{tmp_path / 'shop.yaml'}:2:10: secret: environment variable SECRET is not set" in out
    assert "Traceback" not in out


def test_test_command_passes_for_shipped_mappings() -> None:
    code, out = invoke("mappings", "test")
    assert code == 0, out
    assert " passed in " in out
    assert "failed" not in out


def test_test_command_shows_a_readable_diff(tmp_path: Path) -> None:
    (tmp_path / "shop.yaml").write_text(MINIMAL)
    (tmp_path / "shop.tests.yaml").write_text(
        "cases:\n"
        "  - name: wrong name\n"
        "    event: {id: e1, type: invoice.paid, data: {object: {metadata: {user_id: u}}}}\n"
        "    expect: [{event: Order Paid}]\n"
    )
    code, out = invoke("mappings", "test", str(tmp_path), env={**ENV, "SECRET": "x"})
    assert code == 1
    assert f"FAIL {tmp_path / 'shop.tests.yaml'}:2: wrong name" in out
    assert "calls[0].event: expected 'Order Paid', got 'Order Completed'" in out
    assert "0 passed, 1 failed" in out


def test_schema_is_json_schema() -> None:
    code, out = invoke("mappings", "schema")
    assert code == 0
    schema = json.loads(out)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert set(schema["required"]) == {"provider", "secrets"}
    assert schema["anyOf"] == [{"required": ["rules"]}, {"required": ["collect"]}]
    assert schema["additionalProperties"] is False


@pytest.mark.skipif(not payload_files("stripe"), reason="payloads absent")
def test_preview_needs_no_redis_when_the_user_is_in_the_payload(tmp_path: Path) -> None:
    body = json.loads((payload_files("stripe")[0].parent / "stripe__invoice.paid.json").read_text())
    body["data"]["object"]["metadata"] = {"user_id": "u1"}
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps(body))
    code, out = invoke("preview", "stripe", str(payload), "--json")
    assert code == 0, out
    calls = json.loads(out)
    assert calls[0]["event"] == "Order Completed"
    assert calls[0]["userId"] == "u1"
    code, out = invoke("preview", "stripe", str(payload))
    assert code == 0
    assert "# track Order Completed  (userId=u1" in out


def test_preview_says_when_redis_is_needed_but_unreachable(tmp_path: Path) -> None:
    payload = tmp_path / "p.json"
    payload.write_text(
        json.dumps(
            {
                "id": "e",
                "type": "invoice.paid",
                "created": 1,
                "data": {
                    "object": {
                        "id": "in_1",
                        "customer": "cus_1",
                        "amount_paid": 5,
                        "currency": "usd",
                    }
                },
            }
        )
    )
    code, out = invoke("preview", "stripe", str(payload))
    assert code == 2
    assert "needs an identity lookup" in out
    assert "redis://127.0.0.1:1/0" in out
    assert "Traceback" not in out


def test_preview_uses_redis_when_reachable(tmp_path: Path, redis_url: str, redis: object) -> None:
    from redis import Redis

    from bridge import keys

    client = Redis.from_url(redis_url)
    client.set(keys.identity("stripe", "cus_1"), "u_from_store")
    payload = tmp_path / "p.json"
    payload.write_text(
        json.dumps(
            {
                "id": "e",
                "type": "invoice.paid",
                "created": 1,
                "data": {
                    "object": {
                        "id": "in_1",
                        "customer": "cus_1",
                        "amount_paid": 5,
                        "currency": "usd",
                    }
                },
            }
        )
    )
    code, out = invoke(
        "preview", "stripe", str(payload), "--json", env={**ENV, "REDIS_URL": redis_url}
    )
    assert code == 0, out
    assert json.loads(out)[0]["userId"] == "u_from_store"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("preview", "paypal", "x.json"), "no mapping for source 'paypal'"),
        (("preview", "stripe", "missing.json"), "cannot read missing.json"),
    ],
)
def test_preview_errors(args: tuple[str, ...], message: str) -> None:
    code, out = invoke(*args)
    assert code == 2
    assert message in out


def test_preview_ignored_type_and_mapping_error(
    tmp_path: Path, redis_url: str, redis: object
) -> None:
    payload = tmp_path / "p.json"
    payload.write_text(json.dumps({"id": "e", "type": "charge.succeeded", "data": {}}))
    code, out = invoke("preview", "stripe", str(payload))
    assert (code, out.strip()) == (
        0,
        f"ignored: no rule of {ROOT / 'mappings' / 'stripe.yaml'} "
        "takes event type 'charge.succeeded'",
    )
    payload.write_text(
        json.dumps(
            {
                "id": "e",
                "type": "charge.refunded",
                "created": 1,
                "data": {"object": {"id": "ch", "amount_refunded": 1.5, "currency": "usd"}},
            }
        )
    )
    # A refund looks up the order its payment was counted as: Redis is read.
    code, out = invoke("preview", "stripe", str(payload), env={**ENV, "REDIS_URL": redis_url})
    assert code == 1
    assert "mapping error: rule 'charge-refunded'" in out


def test_check_refuses_a_pinned_source_that_does_not_exist() -> None:
    # What the release phase runs: a typo in BRIDGE_SOURCES fails the deploy.
    code, out = invoke("mappings", "check", env={**ENV, "BRIDGE_SOURCES": "stripe,strpie"})
    assert code == 1
    assert "BRIDGE_SOURCES lists 'strpie': no such source" in out
