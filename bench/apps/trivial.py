"""Baseline (a): the cheapest Flask webhook endpoint.

It reads the body (a server has to) and answers a small JSON 200, with no verification
and no storage: the ceiling that Flask + gunicorn set on this machine.

Run: ``gunicorn -w 2 -b 127.0.0.1:8000 bench.apps.trivial:app``
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

app = Flask(__name__)


@app.post("/webhooks/<source>")
def receive(source: str) -> tuple[Response, int]:
    """Accept anything posted to ``/webhooks/<source>``."""
    request.get_data()
    return jsonify(status="accepted", source=source), 200
