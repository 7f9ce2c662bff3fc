"""Baseline (b) for bench_e2e.py: the naive pipeline, end to end.

A Flask handler that verifies with ``stripe.Webhook.construct_event`` and enqueues one
RQ job per webhook; the job (on the default forking ``rq worker``) maps the event by
hand and sends it with ``segment-analytics-python`` in ``sync_mode`` (one HTTP request
per call). Configured by STRIPE_WEBHOOK_SECRET, REDIS_URL, SEGMENT_ENDPOINT.

    gunicorn -w 2 bench.naive_app:app ; rq worker --url $REDIS_URL naive
"""

from __future__ import annotations

import functools
import json
import os

import stripe
from flask import Flask, Response, jsonify, request
from redis import Redis
from rq import Queue

app = Flask(__name__)


@functools.cache
def _queue() -> Queue:
    return Queue("naive", connection=Redis.from_url(os.environ["REDIS_URL"]))


@app.post("/webhooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    payload = request.get_data()
    try:
        event = stripe.Webhook.construct_event(
            payload,
            request.headers.get("Stripe-Signature", ""),
            os.environ["STRIPE_WEBHOOK_SECRET"],
        )
    except (ValueError, stripe.SignatureVerificationError):
        return jsonify(error="invalid"), 400
    _queue().enqueue("bench.naive_app.deliver", payload.decode())
    return jsonify(status="accepted", id=event.id), 200


def deliver(payload: str) -> None:
    """Map by hand and send one track call synchronously."""
    from segment.analytics import Client

    event = json.loads(payload)
    obj = event["data"]["object"]
    client = Client("naive", host=os.environ["SEGMENT_ENDPOINT"], sync_mode=True)
    client.track(
        obj.get("client_reference_id") or obj.get("customer") or "anonymous",
        "Order Completed",
        {"order_id": obj.get("payment_intent") or obj["id"], "total": obj["amount_total"] / 100},
        message_id=f"naive:{event['id']}",
    )
