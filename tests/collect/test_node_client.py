"""``@segment/analytics-node``, as it ships, pointed at bridge: the collector receives
exactly the calls the library sent, through real gunicorn, Redis and rq workers."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from bridge.devtools.collector import Collector
from tests.collect.js import run_node_client
from tests.conftest import ROOT
from tests.delivery import support
from tests.delivery.support import Worker
from tests.processes import gunicorn

pytestmark = pytest.mark.e2e

KEY = "wk_node_test"

CALLS = [
    {"method": "track", "params": {"userId": "u1", "event": "Order Completed",
                                   "properties": {"revenue": 42.5, "currency": "EUR"}}},
    {"method": "identify", "params": {"userId": "u1", "traits": {"plan": "pro"}}},
    {"method": "group", "params": {"userId": "u1", "groupId": "acme",
                                   "traits": {"name": "Acme"}}},
    {"method": "page", "params": {"anonymousId": "anon-1", "name": "Pricing",
                                  "properties": {"path": "/pricing"}}},
]  # fmt: skip


def test_analytics_node_calls_reach_the_collector_exactly(
    redis_url: str,
    collector: Collector,
    workers: Callable[[dict[str, str]], Worker],
) -> None:
    environ = support.env(redis_url, collector.url, ROOT / "mappings", BRIDGE_WRITE_KEYS=KEY)
    workers(environ)
    batch = [
        {"method": "track", "params": {"userId": f"b{i}", "event": "B", "properties": {"i": i}}}
        for i in range(20)
    ]
    with gunicorn(environ, workers=1) as url:
        reported = run_node_client(url, KEY, {"maxEventsInBatch": 10, "calls": CALLS + batch})
    assert not [r for r in reported if "error" in r], reported
    sent = {r["messageId"] for r in reported}
    assert len(sent) == 24
    assert collector.wait_for_ids(sent, timeout=30)
    received = collector.calls
    assert sorted(c["messageId"] for c in received) == sorted(sent)  # each once, no others
    # The library reports calls batch by batch, in no set order: find each by what it is.
    [track] = [c for c in received if c.get("event") == "Order Completed"]
    [identify] = [c for c in received if c["type"] == "identify"]
    [group] = [c for c in received if c["type"] == "group"]
    [page] = [c for c in received if c["type"] == "page"]
    batched = [c for c in received if c.get("event") == "B"]
    assert (track["type"], track["userId"]) == ("track", "u1")
    assert track["properties"] == {"revenue": 42.5, "currency": "EUR"}
    assert track["context"]["library"]["name"] == "@segment/analytics-node"
    assert (identify["userId"], identify["traits"]) == ("u1", {"plan": "pro"})
    assert (group["groupId"], group["traits"]) == ("acme", {"name": "Acme"})
    assert (page["anonymousId"], page["name"]) == ("anon-1", "Pricing")
    assert page["properties"] == {"path": "/pricing"}
    assert sorted((c["userId"], c["properties"]["i"]) for c in batched) == sorted(
        (f"b{i}", i) for i in range(20)
    )
    assert all("writeKey" not in c for c in received)
