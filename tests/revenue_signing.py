"""Signatures for the revenue providers, computed the way each provider documents them,
independently of bridge's signers (a bug shared by a verifier and its signer cannot hide).
"""

from __future__ import annotations

import base64
import hmac
import time


def _mac(algorithm: str, key: str, message: bytes) -> bytes:
    return hmac.new(key.encode(), message, algorithm).digest()


def shopify(body: bytes, secret: str, topic: str, event_id: str) -> dict[str, str]:
    """shopify.dev verify-deliveries: base64 HMAC-SHA256 of the raw body."""
    return {
        "X-Shopify-Hmac-Sha256": base64.b64encode(_mac("sha256", secret, body)).decode(),
        "X-Shopify-Topic": topic,
        "X-Shopify-Event-Id": event_id,
        "X-Shopify-Webhook-Id": event_id,
        "X-Shopify-Triggered-At": "2024-08-07T22:58:21.978733396Z",
        "Content-Type": "application/json",
    }


def paddle(body: bytes, secret: str, ts: int | None = None, extra: str = "") -> dict[str, str]:
    """developer.paddle.com signature-verification: ts=<s>;h1=hex HMAC-SHA256(ts:body)."""
    stamp = int(time.time()) if ts is None else ts
    h1 = _mac("sha256", secret, f"{stamp}:".encode() + body).hex()
    return {"Paddle-Signature": f"ts={stamp};h1={h1}{extra}", "Content-Type": "application/json"}


def lemonsqueezy(body: bytes, secret: str, event_name: str) -> dict[str, str]:
    """docs.lemonsqueezy.com signing-requests: X-Signature = hex HMAC-SHA256 of the body."""
    return {
        "X-Signature": _mac("sha256", secret, body).hex(),
        "X-Event-Name": event_name,
        "Content-Type": "application/json",
    }


def paystack(body: bytes, secret: str) -> dict[str, str]:
    """paystack.com/docs/payments/webhooks: x-paystack-signature = hex HMAC-SHA512."""
    return {
        "x-paystack-signature": _mac("sha512", secret, body).hex(),
        "Content-Type": "application/json",
    }


def razorpay(body: bytes, secret: str, event_id: str) -> dict[str, str]:
    """razorpay.com/docs/webhooks/validate-test: hex HMAC-SHA256 of the body."""
    return {
        "X-Razorpay-Signature": _mac("sha256", secret, body).hex(),
        "X-Razorpay-Event-Id": event_id,
        "Content-Type": "application/json",
    }


def square(body: bytes, key: str, url: str) -> dict[str, str]:
    """developer.squareup.com step3validate: base64 HMAC-SHA256 of url + body."""
    return {
        "x-square-hmacsha256-signature": base64.b64encode(
            _mac("sha256", key, url.encode() + body)
        ).decode(),
        "Content-Type": "application/json",
    }


def woocommerce(body: bytes, secret: str, topic: str) -> dict[str, str]:
    """WooCommerce REST API docs, webhooks: base64 HMAC-SHA256 of the payload."""
    return {
        "X-WC-Webhook-Signature": base64.b64encode(_mac("sha256", secret, body)).decode(),
        "X-WC-Webhook-Topic": topic,
        "X-WC-Webhook-Resource": topic.split(".")[0],
        "X-WC-Webhook-Event": topic.split(".")[-1],
        "Content-Type": "application/json",
    }


def recurly(body: bytes, secret: str, ts_ms: int | None = None, extra: str = "") -> dict[str, str]:
    """recurly-client-ruby Webhooks.verify_signature: "<ms>,<hex HMAC-SHA256(ms.body)>"."""
    stamp = int(time.time() * 1000) if ts_ms is None else ts_ms
    sig = _mac("sha256", secret, f"{stamp}.".encode() + body).hex()
    return {"recurly-signature": f"{stamp},{sig}{extra}", "Content-Type": "application/json"}


def chargebee(user_password: str) -> dict[str, str]:
    """RFC 7617 Basic auth with the webhook's username and password."""
    token = base64.b64encode(user_password.encode()).decode()
    return {"Authorization": f"Basic {token}", "Content-Type": "application/json"}


def polar(body: bytes, secret: str, msg_id: str, ts: int | None = None) -> dict[str, str]:
    """Standard Webhooks with the Polar secret's UTF-8 bytes as the key (polar-python
    base64-encodes the secret text before standardwebhooks decodes it)."""
    stamp = int(time.time()) if ts is None else ts
    sig = base64.b64encode(_mac("sha256", secret, f"{msg_id}.{stamp}.".encode() + body)).decode()
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": f"v1,{sig}",
        "Content-Type": "application/json",
    }
