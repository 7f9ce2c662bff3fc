"""Hypothesis fuzzing of intake as a whole (issue 8, the fuzz suite): arbitrary
sources, headers and bodies through the real app and Redis, and arbitrary bytes
through the real gunicorn with the shipped settings. Any input gets a 2xx or a 4xx
(JSON with a reason), never a 5xx, and nothing reaches the inbox without a valid
signature. Example counts are modest so that CI stays fast."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import orjson
import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from redis import Redis

from bridge import keys
from bridge.devtools.redis_server import RedisServer
from bridge.intake import create_app
from bridge.settings import Settings
from tests.intake.conftest import LogLines, base_env
from tests.processes import gunicorn
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers

SOURCES = ["stripe", "clerk", "github", "nope", "st%C3%A9", ".."]
SIGNATURE_HEADERS = [
    "Stripe-Signature",
    "webhook-id",
    "webhook-timestamp",
    "webhook-signature",
    "svix-id",
    "svix-timestamp",
    "svix-signature",
    "X-Hub-Signature-256",
    "X-GitHub-Event",
    "X-GitHub-Delivery",
    "Content-Type",
    "Content-Encoding",
    "Transfer-Encoding",
]
header_text = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0xFF, exclude_characters="\x7f"),
    max_size=100,
)
header_name = st.sampled_from(SIGNATURE_HEADERS) | st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=16
)
bodies = st.binary(max_size=400) | st.sampled_from([b"{}", b"[]", b"null", b'{"id":1}'])


@pytest.fixture(scope="module")
def session_app(redis_server: RedisServer) -> Flask:
    """One app for all examples (hypothesis runs many examples per test)."""
    app = create_app(Settings.from_env(base_env(redis_server.url)), log_stream=LogLines())
    app.testing = True
    return app


@pytest.fixture
def client(session_app: Flask, redis: Redis) -> Iterator[FlaskClient]:
    with session_app.test_client() as c:
        yield c


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    source=st.sampled_from(SOURCES),
    headers=st.dictionaries(header_name, header_text, max_size=6),
    body=bodies,
)
@example(source="stripe", headers={"Stripe-Signature": "t=1,v1=" + "é" * 64}, body=b"{}")
@example(
    source="clerk",
    headers={"webhook-id": "m", "webhook-timestamp": "9" * 30, "webhook-signature": "v1,AAAA"},
    body=b"{}",
)
def test_any_request_is_2xx_or_4xx_and_unsigned_never_reaches_the_inbox(
    client: FlaskClient, redis: Redis, source: str, headers: dict[str, str], body: bytes
) -> None:
    resp = client.post(f"/webhooks/{source}", data=body, headers=headers)
    assert resp.status_code < 500, resp.get_data()
    if resp.status_code >= 400:
        answer = resp.get_json()
        assert answer["error"]
        assert answer["reason"]
    assert redis.llen(keys.INBOX) == 0


# ------------------------------------------------------------- real gunicorn, raw


@pytest.fixture(scope="module")
def server(redis_server: RedisServer) -> Iterator[tuple[str, int]]:
    env = base_env(redis_server.url)
    Redis.from_url(redis_server.url).flushdb()  # the inbox checks below start from empty
    with gunicorn(env, workers=1, extra=("--config", "python:bridge.gunicorn_conf")) as url:
        host, port = url.removeprefix("http://").split(":")
        yield host, int(port)


def exchange(addr: tuple[str, int], data: bytes) -> bytes:
    """Send ``data``, half-close, and read whatever the server answers."""
    with socket.create_connection(addr, timeout=10) as sock:
        try:
            sock.sendall(data)
            sock.shutdown(socket.SHUT_WR)
        except OSError:  # the server already answered and closed: read its answer
            pass
        chunks = []
        try:
            while chunk := sock.recv(65536):
                chunks.append(chunk)
        except ConnectionResetError:
            pass
    return b"".join(chunks)


def statuses(answer: bytes) -> list[int]:
    """The status of each response in ``answer`` (keep-alive may give several)."""
    codes = []
    rest = answer
    while rest.startswith(b"HTTP/1."):
        head, _, rest = rest.partition(b"\r\n\r\n")
        codes.append(int(head[9:12]))
        length = re.search(rb"(?im)^content-length:[ \t]*([0-9]+)", head)
        rest = rest[int(length.group(1)) :] if length else b""
    return codes if not rest else [*codes, 999]  # 999: bytes that are not a response


signed_body = stripe_event()
request_heads = st.sampled_from(
    [
        b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n",
        b"POST /webhooks/github HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
        b"POST /webhooks/clerk HTTP/1.0\r\n",
        b"GET / HTTP/1.1\r\n",
        b"",
    ]
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(head=request_heads, tail=st.binary(max_size=300))
@example(
    head=b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n",
    tail=b"\r\nZZ\r\nabc\r\n0\r\n\r\n",
)
@example(
    head=b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\n",
    tail=b"Content-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
)
def test_arbitrary_bytes_at_the_real_server_never_get_a_5xx(
    server: tuple[str, int], redis_server: RedisServer, head: bytes, tail: bytes
) -> None:
    answer = exchange(server, head + tail)
    codes = statuses(answer)
    assert bool(codes) == bool(answer), answer[:500]  # nothing, or only HTTP responses
    assert all(code < 500 for code in codes), answer[:500]
    inbox = Redis.from_url(redis_server.url).llen(keys.INBOX)
    assert inbox == 0


def test_the_real_server_still_accepts_a_signed_webhook_after_the_fuzzing(
    server: tuple[str, int],
) -> None:
    headers = stripe_headers(signed_body, STRIPE_SECRET)
    head = b"POST /webhooks/stripe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + b"".join(
        f"{k}: {v}\r\n".encode() for k, v in headers.items()
    )
    answer = exchange(
        server, head + f"Content-Length: {len(signed_body)}\r\n\r\n".encode() + signed_body
    )
    assert answer.startswith(b"HTTP/1.1 200")
    assert orjson.loads(answer.partition(b"\r\n\r\n")[2])["status"] in ("accepted", "duplicate")
