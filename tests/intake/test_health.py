"""GET /healthz, /readyz and /metrics."""

from __future__ import annotations

from collections.abc import Callable

from flask import Flask
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from bridge.devtools.redis_server import free_port
from tests.signing import STRIPE_SECRET, STRIPE_SECRET_NEXT, stripe_event, stripe_headers


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_healthz(client: FlaskClient) -> None:
    resp = client.get("/healthz")
    assert (resp.status_code, resp.get_json()) == (200, {"status": "ok"})


def test_readyz_lists_sources(client: FlaskClient) -> None:
    resp = client.get("/readyz")
    assert resp.status_code == 200
    assert {"clerk", "github", "stripe"} <= set(resp.get_json()["sources"])


def test_readyz_is_503_when_redis_is_down(make_app: Callable[..., Flask]) -> None:
    app = make_app(REDIS_URL=f"redis://127.0.0.1:{free_port()}/0", BRIDGE_REDIS_TIMEOUT="0.3")
    resp = app.test_client().get("/readyz")
    assert resp.status_code == 503
    assert "redis unreachable" in resp.get_json()["problems"][0]


def test_metrics_count_webhooks_by_outcome(client: FlaskClient) -> None:
    body = stripe_event()
    headers = stripe_headers(body, STRIPE_SECRET)
    client.post("/webhooks/stripe", data=body, headers=headers)
    client.post("/webhooks/stripe", data=body, headers=headers)  # duplicate
    client.post("/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET_NEXT))
    ignored = stripe_event("balance.available")
    client.post("/webhooks/stripe", data=ignored, headers=stripe_headers(ignored, STRIPE_SECRET))
    client.post("/webhooks/nope", data=b"{}")

    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.mimetype == "text/plain"
    got = samples(resp.get_data(as_text=True))
    src = (("source", "stripe"),)
    assert got[("bridge_webhooks_received_total", src)] == 4
    assert got[("bridge_webhooks_accepted_total", src)] == 1
    assert got[("bridge_webhooks_duplicate_total", src)] == 1
    assert got[("bridge_webhooks_ignored_total", src)] == 1
    assert (
        got[("bridge_webhooks_rejected_total", (("reason", "bad_signature"), ("source", "stripe")))]
        == 1
    )
    assert (
        got[
            (
                "bridge_webhooks_rejected_total",
                (("reason", "unknown_source"), ("source", "_unknown")),
            )
        ]
        == 1
    )
    assert got[("bridge_inbox_depth", ())] == 1


def test_unknown_path_is_json_404(client: FlaskClient) -> None:
    resp = client.get("/nothing/here")
    assert resp.status_code == 404
    assert resp.get_json()["error"]
