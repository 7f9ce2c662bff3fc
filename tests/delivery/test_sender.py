from __future__ import annotations

import gzip

import httpx
import pytest

from bridge.delivery.sender import Sender, batch_body, parse_retry_after
from bridge.devtools.collector import Collector
from bridge.errors import RejectedDelivery, RetryableDelivery

CALLS = b'[{"type":"track","event":"E","userId":"u","messageId":"m1"}]'


def sender(collector: Collector, **kw: object) -> Sender:
    return Sender(f"{collector.url}/v1/batch", "test-write-key", timeout=0.5, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("gzip_body", [True, False])
def test_a_batch_arrives_with_auth(collector: Collector, gzip_body: bool) -> None:
    answer = sender(collector, gzip_body=gzip_body).send(CALLS)
    assert answer.status == 200
    assert collector.message_ids() == ["m1"]


def test_a_wrong_write_key_is_a_rejection(collector: Collector) -> None:
    bad = Sender(f"{collector.url}/v1/batch", "wrong", timeout=0.5)
    with pytest.raises(RejectedDelivery, match="401"):
        bad.send(CALLS)


@pytest.mark.parametrize("status", [408, 429, 500, 502, 503])
def test_retryable_statuses(collector: Collector, status: int) -> None:
    collector.fail(status, times=1)
    with pytest.raises(RetryableDelivery):
        sender(collector).send(CALLS)
    assert collector.calls == []


def test_429_retry_after_is_read(collector: Collector) -> None:
    collector.fail(429, retry_after=7, times=1)
    with pytest.raises(RetryableDelivery) as info:
        sender(collector).send(CALLS)
    assert info.value.retry_after == 7


@pytest.mark.parametrize("status", [400, 403, 413, 422])
def test_other_4xx_are_rejections_with_the_answer(collector: Collector, status: int) -> None:
    collector.fail(status, times=1)
    with pytest.raises(RejectedDelivery) as info:
        sender(collector).send(CALLS)
    assert str(status) in info.value.message
    assert "told to answer" in info.value.message


def test_a_hang_past_the_timeout_is_retryable(collector: Collector) -> None:
    collector.hang(1.5, times=1)
    with pytest.raises(RetryableDelivery) as info:
        sender(collector).send(CALLS)
    assert info.value.context["reason"] == "timeout"


def test_a_dropped_connection_is_retryable(collector: Collector) -> None:
    collector.drop(times=1)
    with pytest.raises(RetryableDelivery):
        sender(collector).send(CALLS)
    assert sender(collector).send(CALLS).status == 200


def test_nobody_listening_is_retryable() -> None:
    with pytest.raises(RetryableDelivery):
        Sender("http://127.0.0.1:9/v1/batch", None, timeout=0.5).send(CALLS)


def test_body_shape_and_gzip() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200)

    s = Sender("http://x/v1/batch", "k", transport=httpx.MockTransport(handler))
    s.send(CALLS)
    body = gzip.decompress(seen[0].content)
    assert body.startswith(b'{"batch":' + CALLS + b',"sentAt":"')
    assert seen[0].headers["Content-Encoding"] == "gzip"
    assert seen[0].headers["Authorization"] == "Basic azo="
    assert batch_body(b"[]", "T") == b'{"batch":[],"sentAt":"T"}'


def test_parse_retry_after() -> None:
    assert parse_retry_after("3") == 3
    assert parse_retry_after(None) is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0
    assert parse_retry_after("soon") is None


def test_a_trickling_answer_is_cut_at_the_total_deadline(collector: Collector) -> None:
    # ~100 bytes, 0.05 s apart: every read is far below the 0.5 s timeout, the whole
    # answer takes ~5 s. The POST must end at its 0.5 s deadline, as a retryable failure.
    collector.trickle(0.05, times=1)
    with pytest.raises(RetryableDelivery) as info:
        sender(collector).send(CALLS)
    assert info.value.context["reason"] == "timeout"
    assert info.value.message.startswith("no complete answer within 0.5 s")
    assert sender(collector).send(CALLS).status == 200  # the next POST is not affected


@pytest.mark.parametrize("status", [301, 302, 307, 308])
def test_a_redirect_is_never_followed_and_names_the_fix(collector: Collector, status: int) -> None:
    with Collector(write_key="test-write-key") as elsewhere:
        collector.redirect(f"{elsewhere.url}/v1/batch", status=status, times=1)
        with pytest.raises(RetryableDelivery) as info:  # kept and retried, never lost
            sender(collector).send(CALLS)
        assert elsewhere.requests == 0  # not re-sent to the Location
    assert info.value.context["reason"] == f"http_{status}"
    assert f"redirect to {elsewhere.url}/v1/batch" in info.value.message
    assert "SEGMENT_ENDPOINT" in info.value.message
