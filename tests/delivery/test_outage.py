"""Which Redis errors are outages (hand the work back) and which are about the data,
checked against what a real redis-server answers."""

from __future__ import annotations

import pytest
from redis import Redis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import DataError, RedisError, ResponseError

from bridge.delivery import outage


def refused(call: object) -> RedisError:
    with pytest.raises(RedisError) as info:
        call()  # type: ignore[operator]
    return info.value


def test_a_full_redis_is_an_outage_whether_a_command_or_a_script_meets_it(redis: Redis) -> None:
    redis.config_set("maxmemory", max(1, int(redis.info("memory")["used_memory"]) // 2))
    try:
        command = refused(lambda: redis.set("k", "v"))
        script = refused(lambda: redis.eval("return redis.call('RPUSH', KEYS[1], 'x')", 1, "l"))
    finally:
        redis.config_set("maxmemory", 0)
    # A script's refusal comes wrapped in "Error running script ...: -OOM ..." (Redis 6).
    for exc in (command, script):
        assert outage.out_of_memory(exc), exc
        assert outage.unavailable(exc), exc


def test_errors_about_the_data_are_not_outages(redis: Redis) -> None:
    wrong_type = refused(lambda: (redis.set("s", "v"), redis.lpush("s", "x")))
    assert isinstance(wrong_type, ResponseError)
    assert not outage.unavailable(wrong_type)
    assert not outage.unavailable(DataError("Invalid input of type: 'dict'"))
    assert outage.unavailable(RedisConnectionError("Connection refused"))
    assert not outage.out_of_memory(RedisConnectionError("Connection refused"))
