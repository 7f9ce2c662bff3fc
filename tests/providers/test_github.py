"""The GitHub verifier on its own."""

from __future__ import annotations

import hashlib
import time

import pytest

from bridge.errors import MalformedPayload, SignatureError
from bridge.providers.github import GitHubProvider
from tests.signing import GITHUB_SECRET, github_headers

NOW = time.time()
provider = GitHubProvider()


def test_event_type_joins_event_and_action() -> None:
    body = b'{"action": "created", "sponsorship": {}}'
    headers = github_headers(body, GITHUB_SECRET, "sponsorship", "d-1")
    event = provider.verify(body, headers, [GITHUB_SECRET], tolerance=300, now=NOW)
    assert (event.id, event.type, event.time) == ("d-1", "sponsorship.created", NOW)


def test_event_without_action_keeps_the_event_name() -> None:
    body = b'{"ref": "refs/heads/main"}'
    event = provider.verify(
        body, github_headers(body, GITHUB_SECRET, "push"), [GITHUB_SECRET], tolerance=0, now=NOW
    )
    assert event.type == "push"


def test_signer_matches_the_documented_scheme() -> None:
    body = b'{"action": "purchased"}'
    ours = provider.sign(body, GITHUB_SECRET, now=NOW, event_type="x", event_id="d")
    assert (
        ours["X-Hub-Signature-256"]
        == github_headers(body, GITHUB_SECRET, "x", "d")["X-Hub-Signature-256"]
    )


def test_sha1_only_header_is_refused() -> None:
    body = b"{}"
    headers = github_headers(body, GITHUB_SECRET, "ping")
    headers["X-Hub-Signature-256"] = "sha1=" + "0" * 40
    with pytest.raises(SignatureError) as info:
        provider.verify(body, headers, [GITHUB_SECRET], tolerance=0, now=NOW)
    assert info.value.reason == "malformed_signature"


def test_missing_delivery_id_is_malformed() -> None:
    body = b"{}"
    headers = github_headers(body, GITHUB_SECRET, "ping")
    del headers["X-GitHub-Delivery"]
    with pytest.raises(MalformedPayload):
        provider.verify(body, headers, [GITHUB_SECRET], tolerance=0, now=NOW)


def test_the_delivery_id_is_not_signed_so_the_event_carries_the_body_digest() -> None:
    body = b'{"action": "purchased"}'
    first = provider.verify(
        body,
        github_headers(body, GITHUB_SECRET, "marketplace_purchase", "d-1"),
        [GITHUB_SECRET],
        tolerance=0,
        now=NOW,
    )
    replay = provider.verify(
        body,
        github_headers(body, GITHUB_SECRET, "marketplace_purchase", "d-2"),
        [GITHUB_SECRET],
        tolerance=0,
        now=NOW,
    )
    assert GitHubProvider.signs_event_id is False
    # SHA-256 of exactly the bytes GitHub's HMAC covers: the whole body.
    assert first.signed_digest == replay.signed_digest == hashlib.sha256(body).hexdigest()


def test_a_form_encoded_delivery_digests_the_signed_form_not_the_json_inside() -> None:
    body = b"payload=%7B%22action%22%3A%22purchased%22%7D"
    event = provider.verify(
        body,
        github_headers(body, GITHUB_SECRET, "marketplace_purchase"),
        [GITHUB_SECRET],
        tolerance=0,
        now=NOW,
    )
    assert event.signed_digest == hashlib.sha256(body).hexdigest()
