from __future__ import annotations

from typing import Any

import pytest

from bridge import __version__
from bridge.envelope import Envelope
from bridge.errors import MappingError
from bridge.mappings import Mapping, MemoryIdentityStore, load_text
from bridge.mappings.engine import message_id

MAPPING = """\
provider: stripe
secrets: s
options:
  test_mode: {when: "livemode == `false`", action: skip}
  account: {from: account, action: tag}
identity:
  user_id: data.object.metadata.user_id
  customer: data.object.customer
rules:
  - name: subs
    on: customer.subscription.*
    when: data.object.status != 'incomplete'
    emit:
      - type: track
        event: Subscription Changed
        properties:
          plan: data.object.plan.id
          label: "'fixed text'"
          seats: 3
          nested: {a: data.object.missing}
      - type: group
        when: data.object.org
        groupId: data.object.org
        traits: {name: data.object.org_name}
  - name: alias
    on: customer.created
    identity: {user_id: data.object.metadata.user_id}
    emit:
      - {type: alias, previousId: "concat('stripe:', data.object.id)"}
      - {type: page, name: Welcome}
      - {type: screen, name: Welcome, properties: {x: "`1`"}}
"""


@pytest.fixture
def mapping() -> Mapping:
    loaded, problems = load_text(MAPPING, "shop", {})
    assert loaded is not None, problems
    return loaded


def env(event_type: str, obj: dict[str, Any], **top: Any) -> Envelope:
    body = {"id": "evt_1", "type": event_type, "livemode": True, "data": {"object": obj}, **top}
    return Envelope("shop", "evt_1", event_type, 1700000000.5, 0.0, body)


def test_complete_calls(mapping: Mapping) -> None:
    obj = {"metadata": {"user_id": "u1"}, "status": "active", "plan": {"id": "pro"}, "org": "o1"}
    calls = mapping.evaluate(env("customer.subscription.updated", obj), MemoryIdentityStore())
    assert calls[0] == {
        "type": "track",
        "messageId": "shop:evt_1:subs:0",
        "timestamp": "2023-11-14T22:13:20.500Z",
        "userId": "u1",
        "event": "Subscription Changed",
        "properties": {"plan": "pro", "label": "fixed text", "seats": 3},
        "context": {"library": {"name": "bridge", "version": __version__}},
    }
    assert calls[1]["type"] == "group"
    assert calls[1]["groupId"] == "o1"
    assert calls[1]["messageId"] == "shop:evt_1:subs:1"
    assert calls[1]["traits"] == {}


def test_glob_handles_and_when(mapping: Mapping) -> None:
    assert mapping.handles("customer.subscription.deleted")
    assert not mapping.handles("customer.subscriptionX")
    assert not mapping.handles("invoice.paid")
    obj = {"metadata": {"user_id": "u1"}, "status": "incomplete"}
    assert mapping.evaluate(env("customer.subscription.created", obj), MemoryIdentityStore()) == []


def test_test_mode_skip_and_connect_tag(mapping: Mapping) -> None:
    obj = {"metadata": {"user_id": "u1"}, "status": "active"}
    store = MemoryIdentityStore()
    assert mapping.evaluate(env("customer.subscription.created", obj, livemode=False), store) == []
    calls = mapping.evaluate(env("customer.subscription.created", obj, account="acct_1"), store)
    assert calls[0]["context"]["groupId"] == "acct_1"


def test_connect_identities_are_kept_per_account(mapping: Mapping) -> None:
    store = MemoryIdentityStore()
    obj = {"metadata": {"user_id": "u1"}, "customer": "cus_1", "status": "active"}
    mapping.evaluate(env("customer.subscription.created", obj, account="acct_1"), store)
    assert store.pairs == {"acct_1/cus_1": "u1"}
    other = {"customer": "cus_1", "status": "active"}
    calls = mapping.evaluate(env("customer.subscription.created", other, account="acct_2"), store)
    assert calls[0]["anonymousId"] == "shop:acct_2/cus_1"


def test_alias_page_screen(mapping: Mapping) -> None:
    obj = {"id": "cus_1", "metadata": {"user_id": "u1"}}
    calls = mapping.evaluate(env("customer.created", obj), MemoryIdentityStore())
    assert [c["type"] for c in calls] == ["alias", "page", "screen"]
    assert calls[0]["previousId"] == "stripe:cus_1"
    assert calls[1]["name"] == "Welcome"
    assert calls[2]["properties"] == {"x": 1}


def test_alias_without_user_is_a_mapping_error(mapping: Mapping) -> None:
    with pytest.raises(MappingError, match="rule 'alias'"):
        mapping.evaluate(env("customer.created", {"id": "cus_1"}), MemoryIdentityStore())


def test_no_identity_at_all_is_a_mapping_error(mapping: Mapping) -> None:
    with pytest.raises(MappingError, match="no userId or anonymousId"):
        mapping.evaluate(
            env("customer.subscription.created", {"status": "a"}), MemoryIdentityStore()
        )


def test_bad_user_id_type_is_a_mapping_error(mapping: Mapping) -> None:
    obj = {"metadata": {"user_id": {"nested": 1}}, "status": "a"}
    with pytest.raises(MappingError, match=r"identity\.user_id"):
        mapping.evaluate(env("customer.subscription.created", obj), MemoryIdentityStore())


def test_identity_fallback_error() -> None:
    text = MAPPING.replace("options:\n", "options:\n  identity_fallback: error\n")
    mapping, _ = load_text(text, "shop", {})
    assert mapping is not None
    with pytest.raises(MappingError, match="no userId"):
        mapping.evaluate(
            env("customer.subscription.created", {"customer": "c", "status": "a"}),
            MemoryIdentityStore(),
        )


def test_message_ids_are_deterministic_and_short() -> None:
    short = message_id("stripe", "evt_1", "rule", 0)
    assert short == "stripe:evt_1:rule:0"
    long = message_id("stripe", "e" * 200, "rule", 1)
    assert len(long) == 100
    assert long == message_id("stripe", "e" * 200, "rule", 1)
    assert long != message_id("stripe", "e" * 200, "rule", 2)
    assert long.startswith("stripe:eee")
