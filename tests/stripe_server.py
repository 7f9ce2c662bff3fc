"""A local HTTP server on 127.0.0.1 that speaks Stripe's API as documented.

Just enough of https://docs.stripe.com/api for bridge's reads, written from the docs:

* ``GET /v1/events``: the list envelope ``{"object": "list", "url": "/v1/events",
  "has_more": ..., "data": [...]}``, newest first (``created`` descending), ``limit``
  (default 10, 1..100), ``starting_after`` (an unknown id is a 400
  ``resource_missing``), ``created[gte|gt|lte|lt]``, ``types[]`` / ``types[N]`` (at
  most 20), ``type``, ``delivery_success``; the ``Stripe-Account`` header lists that
  connected account's events;
* ``GET /v1/events/{id}`` and ``GET /v1/<anything>``: objects registered with
  :meth:`StripeServer.put_object` (404 ``resource_missing`` otherwise);
* ``Authorization: Bearer <key>`` is required (401 ``invalid_request_error``);
* errors in Stripe's format ``{"error": {"type", "code", "message"}}``; scripted failures
  (:meth:`StripeServer.fail_next`) answer e.g. 429 with ``Retry-After`` or 500 with
  ``Stripe-Should-Retry``.

Every request is recorded (path, query, headers) for the tests to read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

API_KEY = "rk_test_bridge_backfill"


@dataclass
class Request:
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]

    def param(self, name: str) -> str | None:
        return next((v for k, v in self.query if k == name), None)


@dataclass
class Failure:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    error_type: str = "api_error"
    message: str = "scripted failure"
    #: Only requests whose path starts with this fail.
    path: str = "/"
    #: Only list requests for the page after this cursor fail (None: any request).
    after: str | None = None


class StripeServer:
    """The state (events per account, objects) and a thread serving it."""

    def __init__(self) -> None:
        #: account (None: the platform) -> events
        self.events: dict[str | None, list[dict[str, Any]]] = {None: []}
        self.objects: dict[tuple[str | None, str], Any] = {}
        self.requests: list[Request] = []
        self.failures: list[Failure] = []
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        #: starting_after cursor -> gate: a list request for that page waits on it.
        self.holds: dict[str, threading.Event] = {}
        #: Set when a held request has arrived (the test knows the client is waiting).
        self.held = threading.Event()

    # --- state --------------------------------------------------------------------

    def add_event(self, event: dict[str, Any], account: str | None = None) -> None:
        with self._lock:
            self.events.setdefault(account, []).append(event)
            self.objects[(account, f"/v1/events/{event['id']}")] = event

    def put_object(self, path: str, obj: Any, account: str | None = None) -> None:
        with self._lock:
            self.objects[(account, path)] = obj

    def fail_next(self, *failures: Failure) -> None:
        with self._lock:
            self.failures.extend(failures)

    def list_requests(self) -> list[Request]:
        with self._lock:
            return [r for r in self.requests if r.path == "/v1/events"]

    # --- serving ------------------------------------------------------------------

    @property
    def url(self) -> str:
        assert self._server is not None
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> StripeServer:
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                status, headers, body = outer.handle(self)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("Request-Id", "req_local")
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    def handle(self, req: BaseHTTPRequestHandler) -> tuple[int, dict[str, str], Any]:
        parts = urlsplit(req.path)
        query = parse_qsl(parts.query, keep_blank_values=True)
        headers = {k: v for k, v in req.headers.items()}
        with self._lock:
            self.requests.append(Request(parts.path, query, headers))
            cursor = dict(query).get("starting_after")
            failure = next(
                (
                    f
                    for f in self.failures
                    if parts.path.startswith(f.path) and f.after in (None, cursor)
                ),
                None,
            )
            if failure is not None:
                self.failures.remove(failure)
        if req.headers.get("Authorization") != f"Bearer {API_KEY}":
            return _error(401, "invalid_request_error", None, "Invalid API Key provided")
        if failure is not None:
            return _error(
                failure.status, failure.error_type, None, failure.message, failure.headers
            )
        account = req.headers.get("Stripe-Account") or req.headers.get("Stripe-Context")
        gate = self.holds.get(dict(query).get("starting_after", ""))
        if parts.path == "/v1/events" and gate is not None:
            self.held.set()
            gate.wait(timeout=30)
        if parts.path == "/v1/events":
            return self._list(query, account)
        with self._lock:
            obj = self.objects.get((account, parts.path))
        if obj is None:
            return _error(
                404,
                "invalid_request_error",
                "resource_missing",
                f"No such object: '{parts.path.rsplit('/', 1)[-1]}'",
            )
        return 200, {}, obj

    def _list(
        self, query: list[tuple[str, str]], account: str | None
    ) -> tuple[int, dict[str, str], Any]:
        params: dict[str, str] = {}
        types: list[str] = []
        for k, v in query:
            if k == "types[]" or (k.startswith("types[") and k[6:-1].isdigit()):
                types.append(v)
            else:
                params[k] = v
        if len(types) > 20:
            return _error(
                400, "invalid_request_error", "parameter_invalid_array", "types: at most 20 types"
            )
        limit = int(params.get("limit", "10"))
        if not 1 <= limit <= 100:
            return _error(
                400,
                "invalid_request_error",
                "parameter_invalid_integer",
                "Invalid limit: must be between 1 and 100",
            )
        with self._lock:
            events = list(self.events.get(account, []))
        events.sort(key=lambda e: (e["created"], e["id"]), reverse=True)

        def keep(e: dict[str, Any]) -> bool:
            c = e["created"]
            checks = {
                "created[gte]": lambda v: c >= v,
                "created[gt]": lambda v: c > v,
                "created[lte]": lambda v: c <= v,
                "created[lt]": lambda v: c < v,
            }
            for name, check in checks.items():
                if name in params and not check(int(params[name])):
                    return False
            if "type" in params and e["type"] != params["type"]:
                return False
            if types and e["type"] not in types:
                return False
            if "delivery_success" in params:
                want = params["delivery_success"] == "true"
                if bool(e.get("_delivery_success", True)) != want:
                    return False
            return True

        events = [e for e in events if keep(e)]
        after = params.get("starting_after")
        if after:
            ids = [e["id"] for e in events]
            if after not in ids:
                return _error(
                    400,
                    "invalid_request_error",
                    "resource_missing",
                    f"No such event: '{after}'",
                    param="starting_after",
                )
            events = events[ids.index(after) + 1 :]
        page = events[:limit]
        data = [{k: v for k, v in e.items() if not k.startswith("_")} for e in page]
        return (
            200,
            {},
            {
                "object": "list",
                "url": "/v1/events",
                "has_more": len(events) > limit,
                "data": data,
            },
        )


def _error(
    status: int,
    type_: str,
    code: str | None,
    message: str,
    headers: dict[str, str] | None = None,
    param: str | None = None,
) -> tuple[int, dict[str, str], Any]:
    error: dict[str, Any] = {"type": type_, "message": message}
    if code:
        error["code"] = code
    if param:
        error["param"] = param
    return status, headers or {}, {"error": error}


def serve() -> Iterator[StripeServer]:
    server = StripeServer().start()
    try:
        yield server
    finally:
        server.stop()


def main() -> None:
    """``python -m tests.stripe_server EVENTS.jsonl``: serve those events (one JSON event
    per line) in a process of its own (benchmarks); prints the base URL, then serves
    until SIGTERM."""
    import signal
    import sys
    import threading as _threading

    server = StripeServer()
    with open(sys.argv[1], "rb") as fh:
        for line in fh:
            if line.strip():
                server.add_event(json.loads(line))
    server.start()
    print(server.url, flush=True)
    done = _threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait(timeout=3600)
    server.stop()


if __name__ == "__main__":
    main()
