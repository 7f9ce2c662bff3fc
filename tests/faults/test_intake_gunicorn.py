"""Intake under the real gunicorn with the shipped settings (bridge/gunicorn_conf.py):
slow clients, requests gunicorn refuses itself, bodies that cannot be read
(issue 8, items 4, 9 and 13)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest
from redis import Redis

from bridge import keys
from tests.intake.conftest import base_env
from tests.processes import gunicorn
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers

pytestmark = pytest.mark.e2e

#: The settings the Procfile and the image use (workers come from the command line).
CONF = ("--config", "python:bridge.gunicorn_conf")


@pytest.fixture
def server(redis_url: str) -> Iterator[tuple[str, int]]:
    with gunicorn(base_env(redis_url), workers=2, extra=CONF) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def raw(addr: tuple[str, int], data: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send ``data`` as is and read the answer until the server closes."""
    with socket.create_connection(addr, timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
            if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                break
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:] if ": " in line)
    return int(lines[0].split(" ")[1]), {k.lower(): v for k, v in headers.items()}, body


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


@pytest.mark.parametrize(
    ("request_bytes", "status"),
    [
        (b"NOT A REQUEST LINE\r\n\r\n", 400),
        (b"POST /webhooks/" + b"a" * 9000 + b" HTTP/1.1\r\nHost: x\r\n\r\n", 414),
        (b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 9000 + b"\r\n\r\n", 431),
        (b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 400),
    ],
    ids=["bad-request-line", "uri-too-long", "header-too-large", "unsupported-coding"],
)
def test_requests_gunicorn_refuses_itself_get_json(
    server: tuple[str, int], request_bytes: bytes, status: int
) -> None:
    got, headers, body = raw(server, request_bytes)
    assert got == status
    assert headers["content-type"] == "application/json"
    answer = orjson.loads(body)
    assert set(answer) == {"error", "reason"}
    assert answer["error"]
    assert answer["reason"]


def test_a_body_with_broken_chunking_is_a_json_400_not_a_500(
    server: tuple[str, int], redis: Redis
) -> None:
    request = (
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
        b"Stripe-Signature: t=1,v1=00\r\n\r\nZZZ\r\nabc\r\n0\r\n\r\n"
    )
    status, _, body = raw(server, request)
    assert status == 400
    assert orjson.loads(body)["reason"] == "unreadable_body"
    assert redis.llen(keys.INBOX) == 0


class SlowClient(threading.Thread):
    """A connection that sends a webhook's headers, then its body a byte at a time, for
    at most ``seconds`` (bounded: it stops when told or when the time is up)."""

    def __init__(self, addr: tuple[str, int], seconds: float = 60) -> None:
        super().__init__(daemon=True)
        self.sock = socket.create_connection(addr, timeout=10)
        self.sock.sendall(
            b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Stripe-Signature: t=1,v1=" + b"0" * 64 + b"\r\nContent-Length: 100000\r\n\r\n{"
        )
        self.deadline = time.monotonic() + seconds
        self.done = threading.Event()
        self.sent = 0
        self.failed: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.done.is_set() and time.monotonic() < self.deadline:
                self.sock.sendall(b" ")
                self.sent += 1
                self.done.wait(0.1)
        except OSError as exc:  # the server closed on us: it is no longer held
            self.failed = exc

    def still_connected(self) -> bool:
        """True when the server has neither answered nor closed this connection."""
        self.sock.setblocking(False)
        try:
            self.sock.recv(1, socket.MSG_PEEK)  # an answer or EOF: not held any more
        except BlockingIOError:
            return self.failed is None  # nothing to read: still waiting on our body
        finally:
            self.sock.setblocking(True)
        return False

    def stop(self) -> None:
        self.done.set()
        self.join(timeout=5)
        self.sock.close()


def test_slow_clients_do_not_stall_a_valid_webhook(server: tuple[str, int], redis: Redis) -> None:
    # Twice as many trickling connections as worker processes: with sync workers, two
    # of them held both workers and the valid webhook waited for gunicorn's timeout.
    slow = [SlowClient(server) for _ in range(4)]
    for client in slow:
        client.start()
    try:
        # Let every slow request reach the server and be read a byte at a time.
        while min(c.sent for c in slow) < 5 and all(c.is_alive() for c in slow):
            time.sleep(0.05)
        body = stripe_event()
        resp = httpx.post(
            f"http://{server[0]}:{server[1]}/webhooks/stripe",
            content=body,
            headers=stripe_headers(body, STRIPE_SECRET),
            timeout=20,
        )
        connected = [c.still_connected() for c in slow]
    finally:
        for client in slow:
            client.stop()
    assert (resp.status_code, resp.json()["status"]) == (200, "accepted")
    # Answered while every slow client was still holding its connection open.
    assert connected == [True] * 4
    assert redis.llen(keys.INBOX) == 1
