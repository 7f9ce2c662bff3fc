"""A small local Segment-compatible collector: ``POST /v1/batch`` on 127.0.0.1.

For tests, benchmarks and ``bridge dev``. It accepts batches (gzip or not), checks
HTTP Basic auth when given a write key, records every call in memory (and optionally
appends it to a JSON-lines file, and prints it readably), and can be told to misbehave::

    collector = Collector(port=0, file="calls.jsonl").start()
    collector.fail(503)                     # answer 503 until recover()
    collector.fail(429, retry_after=2, times=3)
    collector.fail(400)                     # a permanent refusal
    collector.hang(30)                      # hold requests past the client's timeout
    collector.trickle(0.2)                  # answer 200, one byte every 0.2 s
    collector.redirect("http://elsewhere/v1/batch", status=301)
    collector.drop()                        # close the connection without an answer
    collector.recover()
    collector.wait_for_calls(100, timeout=10)

The same controls over HTTP: ``POST /control`` with a JSON body such as
``{"mode": "fail", "status": 429, "retry_after": 2, "times": 3}`` (modes ``ok``,
``fail``, ``hang`` with ``seconds``, ``trickle`` with ``seconds`` per byte, ``redirect``
with ``location`` and ``status``, ``drop``); ``GET /stats`` answers the counts.
Run it alone with ``python -m bridge.devtools.collector --port 8081 --file calls.jsonl``.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import gzip
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import IO, Any

import orjson

#: Segment's limits, enforced so that tests see what the real API would refuse.
MAX_BATCH_BYTES = 500 * 1000
MAX_CALL_BYTES = 32 * 1024


@dataclass
class Mode:
    """How the collector answers the next requests."""

    name: str = "ok"  # ok | fail | hang | trickle | redirect | drop
    status: int = 200
    retry_after: float | None = None
    seconds: float = 0.0
    location: str = ""
    #: Answer this way this many more times, then recover (None: until told).
    times: int | None = None


@dataclass(frozen=True)
class Received:
    """One call as recorded: when it arrived and the call itself."""

    at: float
    call: dict[str, Any]


def describe(call: dict[str, Any]) -> str:
    """A one-line human reading of a call, as ``bridge dev`` prints it."""
    who = call.get("userId") or f"anon:{call.get('anonymousId')}"
    kind = call.get("type", "?")
    what = call.get("event") or call.get("name") or call.get("groupId") or ""
    if kind == "alias":
        what = f"{call.get('previousId')} ->"
    body = call.get("properties") or call.get("traits") or {}
    detail = orjson.dumps(body).decode()
    if len(detail) > 200:
        detail = detail[:197] + "..."
    return f"{kind:<8} {who:<24} {what}  {detail}".rstrip()


class Collector:
    """The collector server, running in a background thread."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        write_key: str | None = None,
        file: str | Path | None = None,
        echo: IO[str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.write_key = write_key
        self.file = Path(file) if file else None
        self.echo = echo
        self.received: list[Received] = []
        self.requests = 0
        self.accepted_requests = 0
        self.refused_requests = 0
        self.bytes_in = 0
        self.mode = Mode()
        #: messageIds whose batches are refused with 400 (see :meth:`poison`).
        self.poisoned: set[str] = set()
        #: Called with each accepted batch's calls (after they are recorded).
        self.on_batch: Callable[[list[dict[str, Any]]], None] | None = None
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._fh: IO[bytes] | None = None

    # -- lifecycle ---------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL to use as SEGMENT_ENDPOINT."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> Collector:
        handler = _make_handler(self)
        self._server = ThreadingHTTPServer((self.host, self.port), handler)
        self._server.daemon_threads = True
        self._server.request_queue_size = 128
        self.port = int(self._server.server_address[1])
        if self.file:
            self.file.parent.mkdir(parents=True, exist_ok=True)
            self._fh = self.file.open("ab")
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def __enter__(self) -> Collector:
        return self.start() if self._server is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def serve_forever(self) -> None:
        """Run in the foreground until interrupted (``python -m bridge.devtools.collector``)."""
        self.start()
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        finally:
            self.stop()

    # -- behaviour ---------------------------------------------------------------------
    def fail(
        self, status: int = 503, *, retry_after: float | None = None, times: int | None = None
    ) -> None:
        """Answer ``status`` (with ``Retry-After`` if given) and record nothing."""
        self.mode = Mode("fail", status=status, retry_after=retry_after, times=times)

    def hang(self, seconds: float, *, times: int | None = None) -> None:
        """Hold each request ``seconds`` then close it unanswered (a client timeout)."""
        self.mode = Mode("hang", seconds=seconds, times=times)

    def trickle(self, seconds_per_byte: float, *, times: int | None = None) -> None:
        """Answer 200 one byte at a time, ``seconds_per_byte`` apart, without recording
        the calls: each read is quick, the whole answer is slow (a client needs a total
        deadline, not only a read timeout)."""
        self.mode = Mode("trickle", seconds=seconds_per_byte, times=times)

    def redirect(self, location: str, *, status: int = 301, times: int | None = None) -> None:
        """Answer ``status`` with ``Location: location`` (a moved collector)."""
        self.mode = Mode("redirect", status=status, location=location, times=times)

    def drop(self, *, times: int | None = None) -> None:
        """Read each request, then close the connection without answering."""
        self.mode = Mode("drop", times=times)

    def poison(self, *message_ids: str) -> None:
        """Refuse with 400 every batch holding one of these messageIds (as a collector
        does with a call it cannot accept): the rest of the batch must still arrive."""
        with self._lock:
            self.poisoned.update(message_ids)

    def recover(self) -> None:
        self.mode = Mode()

    def reset(self) -> None:
        """Forget what was received (keeps the mode)."""
        with self._lock:
            self.received.clear()
            self.requests = self.accepted_requests = self.refused_requests = 0
            self.bytes_in = 0

    # -- what arrived ------------------------------------------------------------------
    @property
    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.call for r in self.received]

    def message_ids(self) -> list[str]:
        """Every messageId received, duplicates included, in arrival order."""
        with self._lock:
            return [str(r.call.get("messageId")) for r in self.received]

    def wait_for_calls(self, count: int, timeout: float) -> bool:
        """Block until at least ``count`` calls arrived (True) or ``timeout`` passed."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.received) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(left)
        return True

    def wait_for_ids(self, ids: set[str], timeout: float) -> bool:
        """Block until every messageId in ``ids`` arrived at least once."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not ids <= {str(r.call.get("messageId")) for r in self.received}:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 0.5))
        return True

    def stats(self, distinct: bool = True) -> dict[str, Any]:
        with self._lock:
            calls = len(self.received)
            ids = {r.call.get("messageId") for r in self.received} if distinct else ()
            return {
                "calls": calls,
                "distinct": len(ids) if distinct else None,
                "requests": self.requests,
                "accepted_requests": self.accepted_requests,
                "refused_requests": self.refused_requests,
                "bytes_in": self.bytes_in,
                "mode": self.mode.name,
            }

    # -- internals ---------------------------------------------------------------------
    def _take_mode(self) -> Mode:
        with self._lock:
            mode = self.mode
            if mode.times is not None:
                mode.times -= 1
                if mode.times <= 0:
                    self.mode = Mode()
            return mode

    def _record(self, calls: list[dict[str, Any]], size: int) -> None:
        now = time.time()
        with self._changed:
            self.accepted_requests += 1
            self.bytes_in += size
            self.received.extend(Received(now, c) for c in calls)
            if self._fh is not None:
                self._fh.write(b"".join(orjson.dumps(c) + b"\n" for c in calls))
                self._fh.flush()
            self._changed.notify_all()
        if self.echo is not None:
            for call in calls:
                print(describe(call), file=self.echo, flush=True)
        if self.on_batch is not None:
            self.on_batch(calls)


def _make_handler(collector: Collector) -> type[BaseHTTPRequestHandler]:
    expected_auth = None
    if collector.write_key is not None:
        token = base64.b64encode(f"{collector.write_key}:".encode()).decode()
        expected_auth = f"Basic {token}"

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as real collectors do
        # Headers and body are two writes: without TCP_NODELAY, Nagle + delayed ACK
        # add ~40 ms to every keep-alive answer.
        disable_nagle_algorithm = True

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the collector's own output is the calls, not access logs

        def _answer(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = orjson.dumps(body)
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            for k, v in (headers or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def do_GET(self) -> None:
            if self.path == "/received":  # [[arrival time, messageId], ...] for benchmarks
                with collector._lock:
                    rows = [[r.at, r.call.get("messageId")] for r in collector.received]
                self._answer(200, {"received": rows})
            elif self.path.split("?")[0] == "/stats":
                self._answer(200, collector.stats(distinct="fast" not in self.path))
            else:
                self._answer(404, {"error": "not found"})

        def do_POST(self) -> None:
            if self.path == "/control":
                self._control()
                return
            if self.path != "/v1/batch":
                self._answer(404, {"error": "not found"})
                return
            raw = self._body()
            with collector._lock:
                collector.requests += 1
            mode = collector._take_mode()
            if mode.name == "hang":
                time.sleep(mode.seconds)
                self._abort()
                return
            if mode.name == "drop":
                self._abort()
                return
            if mode.name == "trickle":
                self._trickle(mode.seconds)
                return
            if mode.name == "redirect":
                self._refuse(mode.status, "moved", {"Location": mode.location})
                return
            if mode.name == "fail":
                headers = {}
                if mode.retry_after is not None:
                    headers["Retry-After"] = str(
                        int(mode.retry_after)
                        if float(mode.retry_after).is_integer()
                        else mode.retry_after
                    )
                self._refuse(mode.status, f"told to answer {mode.status}", headers)
                return
            if expected_auth is not None and self.headers.get("Authorization") != expected_auth:
                self._refuse(401, "bad or missing write key")
                return
            size = len(raw)
            if self.headers.get("Content-Encoding") == "gzip":
                try:
                    raw = gzip.decompress(raw)
                except OSError:
                    self._refuse(400, "body is not gzip")
                    return
            if len(raw) > MAX_BATCH_BYTES:
                self._refuse(400, f"batch is {len(raw)} bytes; the limit is {MAX_BATCH_BYTES}")
                return
            try:
                doc = orjson.loads(raw)
                calls = doc["batch"]
                if not isinstance(calls, list):
                    raise TypeError("batch is not a list")
            except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                self._refuse(400, f"invalid batch: {exc}")
                return
            bad = sorted(
                str(c.get("messageId"))
                for c in calls
                if isinstance(c, dict) and c.get("messageId") in collector.poisoned
            )
            if bad:
                self._refuse(400, f"invalid call(s): {', '.join(bad)}")
                return
            # Record, then acknowledge: like a real collector, and so that a caller that
            # has its 200 always finds its calls recorded.
            collector._record(calls, size)
            self._answer(200, {"success": True})

        def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
            with collector._lock:
                collector.refused_requests += 1
            self._answer(status, {"success": False, "message": message}, headers)

        def _trickle(self, seconds_per_byte: float) -> None:
            with collector._lock:
                collector.refused_requests += 1  # nothing is recorded
            body = b'{"success": true}'
            answer = (
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
            self.close_connection = True
            try:
                for i in range(len(answer)):
                    self.wfile.write(answer[i : i + 1])
                    self.wfile.flush()
                    time.sleep(seconds_per_byte)
            except OSError:
                pass  # the client gave up: what a deadline is for

        def _abort(self) -> None:
            with collector._lock:
                collector.refused_requests += 1
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(2)

        def _control(self) -> None:
            try:
                spec = orjson.loads(self._body() or b"{}")
                name = spec.get("mode", "ok")
                times = spec.get("times")
                if name == "ok":
                    collector.recover()
                elif name == "fail":
                    collector.fail(
                        int(spec.get("status", 503)),
                        retry_after=spec.get("retry_after"),
                        times=times,
                    )
                elif name == "hang":
                    collector.hang(float(spec.get("seconds", 30)), times=times)
                elif name == "trickle":
                    collector.trickle(float(spec.get("seconds", 0.5)), times=times)
                elif name == "redirect":
                    collector.redirect(
                        str(spec.get("location", "")),
                        status=int(spec.get("status", 301)),
                        times=times,
                    )
                elif name == "drop":
                    collector.drop(times=times)
                elif name == "reset":
                    collector.reset()
                else:
                    raise ValueError(f"unknown mode {name!r}")
            except (ValueError, TypeError, orjson.JSONDecodeError) as exc:
                self._answer(400, {"error": str(exc)})
                return
            self._answer(200, collector.stats())

    return Handler


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bridge.devtools.collector",
        description="A local Segment-compatible collector.",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--file", help="append every call received to this JSON-lines file")
    parser.add_argument("--write-key", help="require this write key (HTTP Basic user)")
    parser.add_argument("--quiet", action="store_true", help="do not print calls")
    args = parser.parse_args(argv)
    collector = Collector(
        args.host,
        args.port,
        write_key=args.write_key,
        file=args.file,
        echo=None if args.quiet else sys.stdout,
    )
    print(
        f"collector listening on http://{args.host}:{args.port}/v1/batch",
        file=sys.stderr,
        flush=True,
    )
    collector.serve_forever()


if __name__ == "__main__":
    main()
