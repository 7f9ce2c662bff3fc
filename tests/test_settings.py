"""Settings: one typed object from the environment, one message per problem."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from bridge.errors import ConfigError
from bridge.intake import create_app
from bridge.settings import Settings, redact_url
from tests.conftest import ROOT


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


@pytest.mark.parametrize(("value", "ok"), [("2500", True), ("2501", False), ("5000", False)])
def test_flush_at_is_capped_at_segments_batch_limit(value: str, ok: bool) -> None:
    # Segment's HTTP API takes at most 2,500 calls per batch (larger ones get a 200
    # and are dropped), so no setting may ask for more.
    if ok:
        assert Settings.from_env({"BRIDGE_FLUSH_AT": value}).flush_at == int(value)
        return
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"BRIDGE_FLUSH_AT": value})
    assert info.value.problems[0].startswith("BRIDGE_FLUSH_AT:")
    assert "2500" in info.value.problems[0]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://localhost:6379/0", "redis://localhost:6379/0"),
        ("redis://:s3cret@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://:p@ss@cache:6379/0", "redis://:***@cache:6379/0"),
        ("redis://default:a@b/c@cache:6379/0", "redis://default:***@cache:6379/0"),
        ("rediss://onlysecret@cache:6380", "rediss://***@cache:6380"),
        ("unix://:pw@/run/redis.sock?db=1", "unix://:***@/run/redis.sock?db=1"),
        ("redis//:s3cret@cache", "***@cache"),
    ],
)
def test_redact_url_hides_every_character_of_the_password(url: str, shown: str) -> None:
    assert redact_url(url) == shown


@pytest.mark.parametrize("url", ["redis//:p@ss-w0rd@cache:6379", "localhost:p@ss-w0rd@cache"])
def test_a_malformed_redis_url_is_not_echoed_with_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        Settings.from_env({"REDIS_URL": url})
    text = str(info.value)
    assert "REDIS_URL" in text
    assert "ss-w0rd" not in text
    assert "p@ss" not in text
    assert "@cache" in text  # where it points is still shown


def test_the_web_process_logs_the_redis_url_without_its_password() -> None:
    settings = Settings.from_env(
        {
            "REDIS_URL": "redis://:p@ss-w0rd@127.0.0.1:1/0",  # "@" in the password
            "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
            "STRIPE_WEBHOOK_SECRET": "whsec_a",
            "GITHUB_WEBHOOK_SECRET": "g",
            "CLERK_WEBHOOK_SECRET": "whsec_Yw==",
            "BRIDGE_LOG_FORMAT": "json",
        }
    )
    logs = io.StringIO()
    create_app(settings, log_stream=logs)
    assert '"redis":"redis://:***@127.0.0.1:1/0"' in logs.getvalue()
    assert "w0rd" not in logs.getvalue()


def test_redis_server_binary_is_a_setting(tmp_path: Path) -> None:
    from bridge.devtools.redis_server import RedisServer, find_redis_server

    settings = Settings.from_env({"BRIDGE_REDIS_SERVER": str(tmp_path / "my-redis-server")})
    assert settings.redis_server == str(tmp_path / "my-redis-server")
    assert Settings.from_env({}).redis_server is None
    assert find_redis_server(settings.redis_server) == settings.redis_server
    # The configured binary is the one started: here one that does not exist.
    with pytest.raises(FileNotFoundError):
        RedisServer(tmp_path / "data", binary=settings.redis_server).start()
