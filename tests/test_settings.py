"""Settings: one typed object from the environment, one message per problem."""

from __future__ import annotations

import pytest

from bridge.errors import ConfigError
from bridge.settings import Settings


def test_defaults_follow_the_brief() -> None:
    s = Settings.from_env({})
    assert s.redis_url == "redis://localhost:6379/0"
    assert s.segment_endpoint == "https://api.segment.io"
    assert s.collector_batch_url == "https://api.segment.io/v1/batch"
    assert s.dedup_ttl >= 4 * 24 * 3600
    assert s.port == 8000
    assert s.max_body_bytes == 1024 * 1024
    assert s.segment_write_key is None


def test_variables_are_read_by_their_documented_names() -> None:
    s = Settings.from_env(
        {
            "REDIS_URL": "redis://r:1/2",
            "SEGMENT_WRITE_KEY": "wk",
            "SEGMENT_ENDPOINT": "http://127.0.0.1:9/",
            "BRIDGE_MAPPINGS_DIR": "/m",
            "BRIDGE_FLUSH_AT": "50",
            "BRIDGE_FLUSH_INTERVAL": "2.5",
            "BRIDGE_DEDUP_TTL": "400000",
            "PORT": "5000",
        }
    )
    assert (s.redis_url, s.flush_at, s.flush_interval, s.dedup_ttl, s.port) == (
        "redis://r:1/2",
        50,
        2.5,
        400000,
        5000,
    )
    assert s.segment_write_key is not None
    assert s.segment_write_key.get_secret_value() == "wk"
    assert s.collector_batch_url == "http://127.0.0.1:9/v1/batch"
    assert "wk" not in repr(s)


def test_every_problem_is_reported_with_its_variable() -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {
                "BRIDGE_FLUSH_AT": "lots",
                "SEGMENT_ENDPOINT": "api.segment.io",
                "BRIDGE_DEDUP_TTL": "3600",
                "REDIS_URL": "localhost:6379",
            }
        )
    problems = info.value.problems
    assert len(problems) == 4
    for var in ("BRIDGE_FLUSH_AT", "SEGMENT_ENDPOINT", "BRIDGE_DEDUP_TTL", "REDIS_URL"):
        assert any(p.startswith(var + ":") for p in problems), var


def test_empty_variable_means_default() -> None:
    assert Settings.from_env({"PORT": ""}).port == 8000
