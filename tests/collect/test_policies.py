"""Privacy policies apply to webhook sources too, and ``collect:`` sections are linted
with line and column like the rest of a mapping file."""

from __future__ import annotations

import hashlib

from bridge.envelope import Envelope
from bridge.mappings import MemoryIdentityStore, load_text

WEBHOOK = """\
provider: stripe
secrets: s
identity:
  user_id: data.object.metadata.user_id
privacy:
  hash:
    - paths: [traits.email]
    - paths: [traits.phone]
      normalise: phone
  drop: [traits.name]
  consent:
    - category: Marketing
      action: drop
rules:
  - name: customer
    on: customer.created
    emit:
      - type: identify
        traits:
          email: data.object.email
          phone: data.object.phone
          name: data.object.name
          plan: "'pro'"
      - type: track
        event: Customer Created
        context:
          consent: data.object.metadata.consent
"""


def test_a_webhook_sources_calls_are_hashed_dropped_and_consent_checked() -> None:
    mapping, problems = load_text(WEBHOOK, "shop", {})
    assert problems == []
    assert mapping is not None
    body = {
        "data": {
            "object": {
                "email": " Ada@Example.org",
                "phone": "+44 (20) 7946-0000",
                "name": "Ada",
                "metadata": {
                    "user_id": "u1",
                    "consent": {"categoryPreferences": {"Marketing": False}},
                },
            }
        }
    }
    env = Envelope("shop", "evt_1", "customer.created", 1700000000.0, 0.0, body)
    calls = mapping.evaluate(env, MemoryIdentityStore())
    # The track call carries a denial of Marketing: dropped. The identify is hashed.
    assert [c["type"] for c in calls] == ["identify"]
    assert calls[0]["traits"] == {
        "email": hashlib.sha256(b"ada@example.org").hexdigest(),
        "phone": hashlib.sha256(b"+442079460000").hexdigest(),
        "plan": "pro",
    }


COLLECT = """\
provider: segment
secrets: k
collect:
  blocked_ips: [not-an-ip]
  rules:
    - name: bad
      when: "properties.(("
      drop: true
    - name: nothing
"""


def test_collect_sections_are_linted_with_positions() -> None:
    _, problems = load_text(COLLECT, "site", {}, "site.yaml")
    found = [str(p) for p in problems]
    assert any(f.startswith("site.yaml:4:17: schema: blocked_ips:") for f in found), found
    # Column 25: the quote is at 13, the parser stops at offset 11 of the text.
    assert any(f.startswith("site.yaml:7:25: expression:") for f in found), found
    assert any("collect rule 'nothing': give `drop: true` or `set`" in f for f in found), found


def test_a_webhook_source_still_needs_rules() -> None:
    _, problems = load_text("provider: stripe\nsecrets: s\n", "x", {}, "x.yaml")
    assert [str(p) for p in problems] == [
        "x.yaml:1:1: schema: rules: at least one rule is needed"
    ]
