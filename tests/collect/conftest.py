"""Fixtures for first-party collection: the real web app on the real test Redis, with a
``provider: segment`` source written for each test module."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from redis import Redis

from bridge.intake import create_app
from bridge.settings import Settings
from tests.intake.conftest import LogLines

KEY = "wk_live_site_1"
OLD_KEY = "wk_live_site_0"
ORIGIN = "https://shop.example"

#: A first-party source with every knob the tests turn.
SHOP = """\
provider: segment
secrets: ${SHOP_WRITE_KEYS}
collect:
  allowed_origins: ${SHOP_ORIGINS:https://shop.example}
  allow_localhost: ${SHOP_LOCALHOST:false}
  blocked_ips: ["${SHOP_BLOCKED:192.0.2.0/24}"]
  rate_limit:
    per_ip: ${SHOP_PER_IP:0}
    per_key: ${SHOP_PER_KEY:0}
    window: 60
  dedup_ttl: 3600
  rules:
    - name: no-internal
      on: "track:Internal *"
      drop: true
    - name: tag-plan
      on: track
      when: properties.plan
      set:
        properties.plan_upper: upper(properties.plan)
privacy:
  hash:
    - paths: [traits.email, context.traits.email]
  drop: [properties.password]
  consent:
    - category: Advertising
      action: drop
    - category: Personalization
      action: strip
      fields: [traits.phone]
"""


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def outbox(redis: Redis) -> list[dict[str, Any]]:
    """The calls waiting in the outbox, parsed (each item is ``"<received_at> <json>"``)."""
    return [json.loads(item.split(b" ", 1)[1]) for item in redis.lrange("bridge:outbox", 0, -1)]


@pytest.fixture
def logs() -> LogLines:
    return LogLines()


@pytest.fixture
def shop_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "mappings"
    folder.mkdir()
    (folder / "shop.yaml").write_text(SHOP)
    return folder


@pytest.fixture
def make_app(redis_url: str, shop_dir: Path, logs: LogLines) -> Callable[..., Flask]:
    def build(**overrides: str) -> Flask:
        env = {
            "REDIS_URL": redis_url,
            "BRIDGE_MAPPINGS_DIR": str(shop_dir),
            "SHOP_WRITE_KEYS": f"{KEY},{OLD_KEY}",
            "BRIDGE_LOG_FORMAT": "json",
            **overrides,
        }
        app = create_app(Settings.from_env(env), log_stream=logs)
        app.testing = True
        return app

    return build


@pytest.fixture
def app(make_app: Callable[..., Flask]) -> Flask:
    return make_app()
