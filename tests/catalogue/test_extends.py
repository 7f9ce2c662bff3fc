"""Customise without forking: an operator's file ``extends`` a shipped mapping."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from bridge.catalogue import Catalogue
from bridge.cli import main
from bridge.envelope import Envelope
from bridge.errors import ConfigError
from bridge.mappings import MemoryIdentityStore, layers
from tests.conftest import ROOT
from tests.revenue_secrets import REVENUE_SOURCES

SHIPPED = ROOT / "mappings"

CUSTOM = """\
extends: stripe
identity:
  user_id:
    - data.object.metadata.app_user_id
    - data.object.client_reference_id
    - data.object.metadata.user_id
drop: [customer-identify]
rules:
  - name: checkout-order-completed
    on: checkout.session.completed
    when: data.object.payment_status == 'paid'
    emit:
      - type: track
        event: Order Completed
        properties:
          order_id: data.object.id
          plan: data.object.metadata.plan
  - name: invoice-created
    on: invoice.created
    emit:
      - type: track
        event: Invoice Created
        properties:
          invoice_id: data.object.id
"""

OWN_CASES = """\
cases:
  - name: an app user id wins and the plan is added
    event:
      id: evt_own_1
      type: checkout.session.completed
      created: 1700000000
      data: {object: {id: cs_1, payment_status: paid, metadata: {app_user_id: app_7, plan: pro}}}
    expect:
      - event: Order Completed
        userId: app_7
        properties: {order_id: cs_1, plan: pro}
"""


def session(**metadata: str) -> Envelope:
    body = {
        "id": "evt_1",
        "type": "checkout.session.completed",
        "created": 1700000000,
        "livemode": True,
        "data": {
            "object": {
                "id": "cs_1",
                "mode": "payment",
                "payment_status": "paid",
                "amount_total": 1000,
                "amount_subtotal": 1000,
                "currency": "usd",
                "client_reference_id": "u_1",
                "metadata": metadata,
            }
        },
    }
    return Envelope("stripe", "evt_1", body["type"], 1700000000.0, 0.0, body)


@pytest.fixture
def operator(tmp_path: Path) -> Path:
    folder = tmp_path / "mine"
    folder.mkdir()
    (folder / "stripe.yaml").write_text(CUSTOM)
    return folder


def test_add_replace_and_drop_rules_by_name(operator: Path) -> None:
    catalogue = Catalogue.load([SHIPPED, operator], {"STRIPE_WEBHOOK_SECRET": "s"})
    stripe = catalogue.get("stripe")
    assert stripe is not None
    assert stripe.on
    names = [r.name for r in stripe.mapping.rules]
    shipped_names = [r.name for r in Catalogue.load(SHIPPED, {}).sources["stripe"].mapping.rules]
    # Replaced in place, dropped, added at the end; every other shipped rule kept as is.
    expected = [n for n in shipped_names if n != "customer-identify"] + ["invoice-created"]
    assert names == expected
    assert set(stripe.mapping.changed_rules) == {"checkout-order-completed", "customer-identify"}
    assert stripe.mapping.extends == "stripe"
    assert not stripe.mapping.handles("customer.created")
    assert stripe.mapping.handles("invoice.created")
    # The secret, options and the other rules still come from the shipped file.
    assert stripe.secret_vars == ("STRIPE_WEBHOOK_SECRET",)
    assert stripe.mapping.tolerance == 300


def test_replaced_rule_and_overridden_identity_apply(operator: Path) -> None:
    stripe = Catalogue.load([SHIPPED, operator], {"STRIPE_WEBHOOK_SECRET": "s"}).sources["stripe"]
    calls = stripe.mapping.evaluate(session(app_user_id="app_7", plan="pro"), MemoryIdentityStore())
    assert [(c["event"], c["userId"], c["properties"]) for c in calls] == [
        ("Order Completed", "app_7", {"order_id": "cs_1", "plan": "pro"})
    ]
    # Without the new id the shipped identity order still holds.
    calls = stripe.mapping.evaluate(session(plan="pro"), MemoryIdentityStore())
    assert calls[0]["userId"] == "u_1"


def test_an_override_of_options_merges_key_by_key(operator: Path) -> None:
    text = CUSTOM.replace("identity:", "options:\n  tolerance: 900\nidentity:", 1)
    (operator / "stripe.yaml").write_text(text)
    stripe = Catalogue.load([SHIPPED, operator], {"STRIPE_WEBHOOK_SECRET": "s"}).sources["stripe"]
    assert stripe.mapping.tolerance == 900
    assert stripe.mapping.test_mode is not None  # the shipped options.test_mode is kept


def test_shipped_cases_run_against_the_extended_mapping(operator: Path) -> None:
    (operator / "stripe.tests.yaml").write_text(OWN_CASES)
    env = {"BRIDGE_MAPPINGS_DIR": str(operator), "STRIPE_WEBHOOK_SECRET": "s"}
    result = CliRunner().invoke(main, ["mappings", "test", "-v"], env=env)
    out = result.output
    assert result.exit_code == 0, out
    assert f"PASS {operator / 'stripe.tests.yaml'}:2: an app user id wins" in out
    against = f"[against {operator / 'stripe.yaml'}]"
    shipped_cases = [line for line in out.splitlines() if against in line]
    skipped = [line for line in out.splitlines() if line.startswith("skip ")]
    assert shipped_cases
    assert skipped
    assert all(line.startswith(f"PASS {SHIPPED / 'stripe.tests.yaml'}:") for line in shipped_cases)
    assert all("changed by" in line for line in skipped)
    assert any("customer-identify" in line for line in skipped)
    assert any("checkout-order-completed" in line for line in skipped)
    # The other shipped sources' cases run against their shipped mappings as before.
    assert f"PASS {SHIPPED / 'clerk.tests.yaml'}:" in out


def test_two_stripe_accounts_side_by_side(tmp_path: Path) -> None:
    for region in ("us", "eu"):
        (tmp_path / f"stripe-{region}.yaml").write_text(
            f"extends: stripe\nsecrets: ${{STRIPE_{region.upper()}_WEBHOOK_SECRET}}\n"
        )
    env = {"STRIPE_US_WEBHOOK_SECRET": "whsec_us", "STRIPE_EU_WEBHOOK_SECRET": "whsec_eu"}
    catalogue = Catalogue.load([SHIPPED, tmp_path], env)
    assert catalogue.on == ["stripe-eu", "stripe-us"]
    assert catalogue.off["stripe"] == "STRIPE_WEBHOOK_SECRET is not set"
    us, eu = catalogue.sources["stripe-us"], catalogue.sources["stripe-eu"]
    assert (us.mapping.secrets, eu.mapping.secrets) == (("whsec_us",), ("whsec_eu",))
    assert us.secret_vars == ("STRIPE_US_WEBHOOK_SECRET",)
    body = session().body
    for source in (us, eu):
        envelope = Envelope(source.name, "evt_1", body["type"], 1700000000.0, 0.0, body)
        [call] = source.mapping.evaluate(envelope, MemoryIdentityStore())
        # A call counted once is named <source>:<what it counts>:<index>: here the
        # session itself (no invoice, no payment intent).
        assert call["messageId"] == f"{source.name}:cs_1:0"


def test_lint_points_into_either_layer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    shipped = tmp_path / "shipped"
    shutil.copytree(SHIPPED, shipped)
    text = (shipped / "stripe.yaml").read_text()
    broken = text.replace("checkout_id: data.object.id", "checkout_id: data.object.id.", 1)
    (shipped / "stripe.yaml").write_text(broken)
    line = broken.splitlines().index("          checkout_id: data.object.id.") + 1
    monkeypatch.setattr(layers, "shipped_dir", lambda: shipped)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "stripe-us.yaml").write_text(
        "extends: stripe\nsecrets: ${US}\nrules:\n  - name: extra\n    on: x.y\n"
        "    emit: [{type: track, event: X, properties: {a: 'b.'}}]\n"
    )
    with pytest.raises(ConfigError) as info:
        Catalogue.load([shipped, mine], {"US": "u", "STRIPE_WEBHOOK_SECRET": "s"})
    found = sorted(p for p in info.value.problems if ": expression: " in p)
    # JMESPath reports the end of the expression (where a name should follow the dot);
    # the columns are 1-based, inside the quotes of a quoted scalar.
    shipped_line = broken.splitlines()[line - 1]
    shipped_col = shipped_line.index("data.object.id.") + 1 + len("data.object.id.")
    mine_line = (mine / "stripe-us.yaml").read_text().splitlines()[5]
    mine_col = mine_line.index("'b.'") + 2 + len("b.")
    assert [p.split(": expression")[0] for p in found] == sorted(
        [
            f"{shipped / 'stripe.yaml'}:{line}:{shipped_col}",  # the shipped stripe source
            f"{shipped / 'stripe.yaml'}:{line}:{shipped_col}",  # ... the base of stripe-us
            f"{mine / 'stripe-us.yaml'}:6:{mine_col}",  # the operator's layer
        ]
    )


def test_extending_an_unknown_mapping_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "paypal.yaml").write_text("extends: paypal\nsecrets: x\n")
    with pytest.raises(ConfigError) as info:
        Catalogue.load([SHIPPED, tmp_path], {})
    assert info.value.problems == [
        f"{tmp_path / 'paypal.yaml'}:1:10: schema: extends: no shipped mapping 'paypal' "
        f"(shipped: {', '.join(sorted(['clerk', 'github', 'site', 'stripe', *REVENUE_SOURCES]))})"
    ]


def test_dropping_a_rule_the_shipped_mapping_lacks_is_a_finding(tmp_path: Path) -> None:
    (tmp_path / "stripe.yaml").write_text("extends: stripe\ndrop: [nope]\n")
    with pytest.raises(ConfigError) as info:
        Catalogue.load([SHIPPED, tmp_path], {"STRIPE_WEBHOOK_SECRET": "s"})
    assert info.value.problems == [
        f"{tmp_path / 'stripe.yaml'}:2:8: schema: drop: shipped 'stripe' has no rule 'nope'"
    ]


def test_check_and_sources_see_both_layers(operator: Path) -> None:
    env = {"BRIDGE_MAPPINGS_DIR": str(operator), "STRIPE_WEBHOOK_SECRET": "s"}
    runner = CliRunner()
    result = runner.invoke(main, ["mappings", "check"], env=env)
    assert result.exit_code == 0, result.output
    # Shipped and operator layers, one file per source: stripe is the operator's.
    # clerk, github, site, stripe and the ten revenue providers
    assert result.output.splitlines()[-1].startswith("OK: 14 mapping(s)")
    assert f"{SHIPPED / 'clerk.yaml'}:5:10: info: source 'clerk' is off" in result.output
    sources = {
        s["source"]: s
        for s in json.loads(runner.invoke(main, ["sources", "--json"], env=env).stdout)
    }
    assert sources["stripe"]["file"] == str(operator / "stripe.yaml")
    assert sources["stripe"]["extends"] == "stripe"
    assert sources["stripe"]["on"] is True

    broken = CUSTOM.replace("plan: data.object.metadata.plan", "plan: data.object.metadata.")
    (operator / "stripe.yaml").write_text(broken)
    result = runner.invoke(main, ["mappings", "check"], env=env)
    assert result.exit_code == 1
    line = broken.splitlines().index("          plan: data.object.metadata.") + 1
    assert f"{operator / 'stripe.yaml'}:{line}:" in result.output


def test_a_shipped_file_cannot_extend_itself(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shipped = tmp_path / "shipped"
    shipped.mkdir()
    (shipped / "stripe.yaml").write_text("extends: stripe\n")
    monkeypatch.setattr(layers, "shipped_dir", lambda: shipped)
    with pytest.raises(ConfigError) as info:
        Catalogue.load(shipped, {})
    assert info.value.problems == [
        f"{shipped / 'stripe.yaml'}:1:10: schema: extends: {shipped / 'stripe.yaml'} is the "
        "shipped 'stripe' itself; extend it from your own folder"
    ]
