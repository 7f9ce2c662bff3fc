"""Test secrets for the revenue providers of issue 11 (one per shipped source).

Tests that load the whole shipped catalogue with a fixed environment spread
:data:`REVENUE_ENV` into it, so that adding a provider does not touch each of them.
"""

from __future__ import annotations

import base64

SHOPIFY_SECRET = "shpss_test_shopify_0123456789abcdef"
PADDLE_SECRET = "pdl_ntfset_01test_paddleSecretKey0123456789abcdefghij"
LEMONSQUEEZY_SECRET = "ls-test-signing-secret"
PAYSTACK_SECRET = "sk_test_paystack0123456789abcdef0123456789"
RAZORPAY_SECRET = "rzp-test-webhook-secret"
SQUARE_SECRET = "sq-test-signature-key-0123"
SQUARE_URL = "https://bridge.example.com/webhooks/square"
WOOCOMMERCE_SECRET = "wc-test-webhook-secret"
RECURLY_SECRET = "recurly-test-endpoint-secret"
CHARGEBEE_SECRET = "bridge:chargebee-test-password"
POLAR_SECRET = "polar_whs_" + base64.b64encode(b"polar-test-secret-bytes").decode()

#: The environment that switches every revenue source on.
REVENUE_ENV = {
    "SHOPIFY_WEBHOOK_SECRET": SHOPIFY_SECRET,
    "PADDLE_WEBHOOK_SECRET": PADDLE_SECRET,
    "LEMONSQUEEZY_WEBHOOK_SECRET": LEMONSQUEEZY_SECRET,
    "PAYSTACK_WEBHOOK_SECRET": PAYSTACK_SECRET,
    "RAZORPAY_WEBHOOK_SECRET": RAZORPAY_SECRET,
    "SQUARE_WEBHOOK_SECRET": SQUARE_SECRET,
    "SQUARE_WEBHOOK_URL": SQUARE_URL,
    "WOOCOMMERCE_WEBHOOK_SECRET": WOOCOMMERCE_SECRET,
    "RECURLY_WEBHOOK_SECRET": RECURLY_SECRET,
    "CHARGEBEE_WEBHOOK_SECRET": CHARGEBEE_SECRET,
    "POLAR_WEBHOOK_SECRET": POLAR_SECRET,
}

#: The revenue sources (each `mappings/<name>.yaml` with provider `<name>`).
REVENUE_SOURCES = (
    "shopify",
    "paddle",
    "lemonsqueezy",
    "paystack",
    "razorpay",
    "square",
    "woocommerce",
    "recurly",
    "chargebee",
    "polar",
)
