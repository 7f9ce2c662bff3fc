"""``bridge preview`` and ``bridge mappings test`` show and compare amounts exactly, as a
user runs them (``python -m bridge``, a mapping folder of their own)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

SHOP = """\
provider: stripe
secrets: ${SHOP_SECRET}
identity:
  user_id: data.object.metadata.user_id
rules:
  - name: paid
    on: invoice.paid
    emit:
      - type: track
        event: Order Completed
        properties:
          total: money(data.object.amount_paid, data.object.currency)
"""


def invoice(amount: int, currency: str) -> dict[str, object]:
    return {
        "id": "evt_1",
        "type": "invoice.paid",
        "created": 1700000000,
        "data": {
            "object": {
                "amount_paid": amount,
                "currency": currency,
                "metadata": {"user_id": "u_1"},
            }
        },
    }


def bridge(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "BRIDGE_MAPPINGS_DIR": str(folder), "SHOP_SECRET": "whsec_x"}
    env["REDIS_URL"] = "redis://127.0.0.1:1/0"  # never needed: the user is in the payload
    return subprocess.run(
        [sys.executable, "-m", "bridge", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    (tmp_path / "shop.yaml").write_text(SHOP)
    return tmp_path


@pytest.mark.parametrize("as_json", [True, False])
def test_preview_prints_every_digit_of_a_large_amount(folder: Path, as_json: bool) -> None:
    payload = folder / "big.json"
    payload.write_bytes(orjson.dumps(invoice(12345678901234567891, "usd")))
    result = bridge(folder, "preview", "shop", str(payload), *(["--json"] if as_json else []))
    assert result.returncode == 0, result.stderr
    assert '"total": 123456789012345678.91' in result.stdout
    assert "Traceback" not in result.stderr


def test_preview_dead_letters_an_unknown_currency(folder: Path) -> None:
    payload = folder / "xyz.json"
    payload.write_bytes(orjson.dumps(invoice(1999, "xyz")))
    result = bridge(folder, "preview", "shop", str(payload))
    assert result.returncode == 1
    assert "mapping error" in result.stderr
    assert "unknown currency 'XYZ'" in result.stderr


def test_mappings_test_compares_yaml_numbers_with_exact_amounts(folder: Path) -> None:
    event = orjson.dumps(invoice(1999, "usd")).decode()
    (folder / "shop.tests.yaml").write_text(
        f"""\
cases:
  - name: dollars and cents
    event: {event}
    expect:
      - properties: {{total: 19.99}}
  - name: a wrong expectation fails
    event: {event}
    expect:
      - properties: {{total: 19.98}}
"""
    )
    # Only this folder (by default the shipped catalogue's cases run too).
    result = bridge(folder, "mappings", "test", str(folder))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 passed, 1 failed" in result.stdout
    assert "FAIL" in result.stdout
    assert "calls[0].properties.total: expected 19.98, got 19.99" in result.stdout
