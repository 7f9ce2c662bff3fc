"""Signatures computed the way each provider documents them, independently of bridge.

Tests sign with these (and, for Stripe, also with the SDK's own helper) so that a bug
shared by bridge's verifier and bridge's signer cannot hide.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid

import orjson

STRIPE_SECRET = "whsec_test_stripe_0123456789abcdef"
STRIPE_SECRET_NEXT = "whsec_test_stripe_rotated_fedcba9876"
# Standard Webhooks secrets are whsec_ + base64 of random bytes.
CLERK_SECRET = "whsec_" + base64.b64encode(b"clerk-test-secret-32-bytes-long!").decode()
CLERK_SECRET_NEXT = "whsec_" + base64.b64encode(b"clerk-rotated-secret-32-bytes!!!").decode()
GITHUB_SECRET = "gh-test-secret-not-real"
GITHUB_SECRET_NEXT = "gh-rotated-secret-not-real"


def stripe_headers(body: bytes, secret: str, timestamp: int | None = None) -> dict[str, str]:
    """https://docs.stripe.com/webhooks#verify-manually: HMAC-SHA256 hex of "t.body"."""
    ts = int(time.time()) if timestamp is None else timestamp
    sig = hmac.new(secret.encode(), f"{ts}.".encode() + body, hashlib.sha256).hexdigest()
    return {"Stripe-Signature": f"t={ts},v1={sig}", "Content-Type": "application/json"}


def standard_headers(
    body: bytes,
    secret: str,
    timestamp: int | None = None,
    msg_id: str | None = None,
    prefix: str = "webhook",
) -> dict[str, str]:
    """https://www.standardwebhooks.com: base64 HMAC-SHA256 of "id.timestamp.body" keyed
    with the base64-decoded part of the whsec_ secret."""
    ts = int(time.time()) if timestamp is None else timestamp
    mid = msg_id or f"msg_{uuid.uuid4().hex}"
    key = base64.b64decode(secret.removeprefix("whsec_"))
    sig = base64.b64encode(
        hmac.new(key, f"{mid}.{ts}.".encode() + body, hashlib.sha256).digest()
    ).decode()
    return {
        f"{prefix}-id": mid,
        f"{prefix}-timestamp": str(ts),
        f"{prefix}-signature": f"v1,{sig}",
        "Content-Type": "application/json",
    }


def github_headers(
    body: bytes, secret: str, event: str, delivery: str | None = None
) -> dict[str, str]:
    """https://docs.github.com/webhooks: "sha256=" + hex HMAC-SHA256 of the body."""
    return {
        "X-Hub-Signature-256": "sha256="
        + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest(),
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "Content-Type": "application/json",
    }


def stripe_event(event_type: str = "checkout.session.completed", **extra: object) -> bytes:
    """A small Stripe event envelope with a unique id."""
    event = {
        "id": f"evt_{uuid.uuid4().hex[:24]}",
        "object": "event",
        "api_version": "2020-08-27",
        "created": int(time.time()) - 5,
        "livemode": False,
        "type": event_type,
        "data": {
            "object": {
                "id": f"cs_test_{uuid.uuid4().hex[:16]}",
                "object": "checkout.session",
                "mode": "payment",
                "payment_status": "paid",
                "amount_total": 1999,
                "currency": "usd",
                "client_reference_id": "user_42",
                "customer": "cus_test",
            }
        },
        **extra,
    }
    return orjson.dumps(event)


def clerk_event(event_type: str = "user.created") -> bytes:
    """A Clerk (Standard Webhooks) user event."""
    return orjson.dumps(
        {
            "type": event_type,
            "object": "event",
            "timestamp": int(time.time() * 1000),
            "data": {
                "id": f"user_{uuid.uuid4().hex[:12]}",
                "email_addresses": [{"email_address": "ada@example.com", "id": "idn_1"}],
                "primary_email_address_id": "idn_1",
                "first_name": "Ada",
                "last_name": "Lovelace",
                "created_at": int(time.time() * 1000),
            },
        }
    )


def github_event(action: str = "purchased") -> bytes:
    """A GitHub marketplace_purchase body."""
    return orjson.dumps(
        {
            "action": action,
            # Each call is a distinct purchase (GitHub bodies carry no event id).
            "hook_id": uuid.uuid4().int % 10**9,
            "effective_date": "2026-11-01T00:00:00+00:00",
            "sender": {"login": "octocat", "id": 1},
            "marketplace_purchase": {
                "account": {"type": "Organization", "id": 18404719, "login": "octo-org"},
                "billing_cycle": "monthly",
                "unit_count": 1,
                "plan": {"id": 435, "name": "Basic", "monthly_price_in_cents": 1000},
            },
        }
    )
