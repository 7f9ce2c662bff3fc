"""Baseline (b): the Stripe handler most tutorials show.

``stripe.Webhook.construct_event`` (verify and build a full ``stripe.Event``), then one
plain ``rq.Queue.enqueue`` per webhook, with no deduplication. The job function is
referred to by its import path, so the web process never imports the worker's code.

Environment (read on the first request, not at import, so that an RQ worker can import
:func:`handle_event` without it): ``STRIPE_WEBHOOK_SECRET`` (required),
``REDIS_URL`` (default ``redis://127.0.0.1:6379/0``), ``NAIVE_QUEUE`` (default ``naive``).

Run: ``gunicorn -w 2 -b 127.0.0.1:8000 bench.apps.naive:app``;
worker: ``rq worker -u $REDIS_URL naive``.
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any

import stripe
from flask import Flask, Response, jsonify, request
from redis import Redis
from rq import Queue

#: Import path of the job each webhook enqueues.
JOB = "bench.apps.naive.handle_event"

app = Flask(__name__)


@functools.cache
def _secret() -> str:
    return os.environ["STRIPE_WEBHOOK_SECRET"]


@functools.cache
def _queue() -> Queue:
    redis = Redis.from_url(os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    return Queue(os.environ.get("NAIVE_QUEUE", "naive"), connection=redis)


@app.post("/webhooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    """Verify a Stripe webhook the documented way and enqueue one job for it."""
    payload = request.get_data()
    header = request.headers.get("Stripe-Signature", "")
    try:
        event = stripe.Webhook.construct_event(payload, header, _secret())
    except ValueError:
        return jsonify(error="invalid payload"), 400
    except stripe.SignatureVerificationError:
        return jsonify(error="invalid signature"), 400
    _queue().enqueue(JOB, payload.decode("utf-8"))
    return jsonify(status="accepted", id=event.id), 200


def handle_event(payload: str) -> dict[str, Any]:
    """The job: rebuild the ``stripe.Event`` and do nothing else with it.

    Returns a tiny summary so a benchmark can see that the job ran.
    """
    event = stripe.Event.construct_from(json.loads(payload), stripe.api_key)
    return {"id": event.id, "type": event.type}
