"""High availability against real servers (issue 15): Sentinel discovery, reconnecting
to the promoted primary without a restart, and replicated acknowledgement (``WAIT``).

The short CI form: three ``redis-server`` processes and one Sentinel (quorum 1,
down-after 1 s), 40 webhooks, every wait bounded.
"""

from __future__ import annotations

import io
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from flask import Flask
from redis import Redis

from bridge import keys
from bridge.connections import RQRedis, redis_from_settings
from bridge.devtools.redis_server import RedisServer
from bridge.envelope import Envelope
from bridge.intake import create_app
from bridge.settings import Settings
from tests.ha.support import MASTER, SentinelServer, replicate, wait_for
from tests.intake.conftest import base_env
from tests.signing import STRIPE_SECRET, stripe_event, stripe_headers


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[tuple[RedisServer, list[RedisServer], SentinelServer]]:
    """A primary, two replicas in sync, and a Sentinel that knows both replicas."""
    started: list[RedisServer] = []
    sentinel: SentinelServer | None = None
    try:
        primary = RedisServer(tmp_path / "primary", appendonly=False).start()
        started.append(primary)
        replicas = []
        for name in ("replica-1", "replica-2"):
            replica = RedisServer(tmp_path / name, appendonly=False).start()
            started.append(replica)
            replicate(replica, primary)
            replicas.append(replica)
        sentinel = SentinelServer(tmp_path / "sentinel", primary.port).start()
        known = sentinel
        wait_for("sentinel knows both replicas", lambda: known.replicas_known() == 2)
        yield primary, replicas, sentinel
    finally:
        if sentinel is not None:
            sentinel.stop()
        for server in started:
            server.stop(kill=True)


def make_app(primary: RedisServer, **env: str) -> Flask:
    settings = Settings.from_env({**base_env(primary.url), "BRIDGE_REDIS_TIMEOUT": "0.5", **env})
    app = create_app(settings, log_stream=io.StringIO())
    app.testing = True
    return app


def post(app: Flask, body: bytes) -> tuple[int, dict[str, str]]:
    resp = app.test_client().post(
        "/webhooks/stripe", data=body, headers=stripe_headers(body, STRIPE_SECRET)
    )
    return resp.status_code, resp.get_json()


def inbox_ids(redis: Redis) -> Counter[str]:
    return Counter(Envelope.decode(raw).id for raw in redis.lrange(keys.INBOX, 0, -1))


def test_no_acknowledged_event_is_lost_or_doubled_when_the_primary_dies(
    cluster: tuple[RedisServer, list[RedisServer], SentinelServer],
) -> None:
    primary, replicas, sentinel = cluster
    app = make_app(
        primary,
        REDIS_SENTINELS=f"127.0.0.1:{sentinel.port}",
        REDIS_SENTINEL_MASTER=MASTER,
        BRIDGE_REPLICAS_ACK="1",
        BRIDGE_REPLICAS_ACK_TIMEOUT="0.5",
    )
    bodies = [stripe_event() for _ in range(40)]
    ids = [orjson.loads(body)["id"] for body in bodies]
    acknowledged: dict[str, str] = {}
    answers: Counter[int] = Counter()
    pending = list(range(len(bodies)))
    deadline = time.monotonic() + 60
    killed = False
    # The provider's view: post every event; retry each one answered 5xx until it is
    # acknowledged. The primary is SIGKILLed after the 15th acknowledgement.
    while pending and time.monotonic() < deadline:
        retry = []
        for n in pending:
            status, answer = post(app, bodies[n])
            answers[status] += 1
            if status == 200:
                acknowledged[ids[n]] = answer["status"]
            else:
                assert status == 503, answer
                retry.append(n)
            if len(acknowledged) == 15 and not killed:
                primary.stop(kill=True)
                killed = True
        pending = retry
        if pending:
            time.sleep(0.1)
    assert not pending, f"{len(pending)} events never acknowledged; answers {answers}"
    assert answers[503] > 0  # the failover was seen, not slept through
    # The Sentinel promoted a replica, and the app reached it without a restart.
    promoted = sentinel.primary_port_now()
    assert promoted in {r.port for r in replicas}
    new_primary = Redis(host="127.0.0.1", port=promoted)
    in_inbox = inbox_ids(new_primary)
    assert set(acknowledged) == set(ids)
    # Every acknowledged event is there, and once.
    assert {i for i in ids if in_inbox[i] != 1} == set()
    assert sum(in_inbox.values()) == len(ids)


def test_an_event_no_replica_has_is_503_and_then_acknowledged_once(
    cluster: tuple[RedisServer, list[RedisServer], SentinelServer],
) -> None:
    primary, replicas, _ = cluster
    app = make_app(primary, BRIDGE_REPLICAS_ACK="1", BRIDGE_REPLICAS_ACK_TIMEOUT="0.2")
    for replica in replicas:  # detach both: nothing can acknowledge replication
        Redis(host="127.0.0.1", port=replica.port).replicaof("NO", "ONE")
    body = stripe_event()
    status, answer = post(app, body)
    assert (status, answer["reason"]) == (503, "store_not_replicated")
    replicate(replicas[0], primary)
    # The provider retries: the event, kept by the primary, is now on a replica too.
    assert post(app, body) == (200, {"status": "duplicate", "id": orjson.loads(body)["id"]})
    assert inbox_ids(Redis(host="127.0.0.1", port=replicas[0].port)) == Counter(
        {orjson.loads(body)["id"]: 1}
    )


def test_without_the_setting_nothing_waits_for_replicas(
    cluster: tuple[RedisServer, list[RedisServer], SentinelServer],
) -> None:
    primary, replicas, _ = cluster
    app = make_app(primary)
    for replica in replicas:
        Redis(host="127.0.0.1", port=replica.port).replicaof("NO", "ONE")
    status, answer = post(app, stripe_event())
    assert (status, answer["status"]) == (200, "accepted")


def test_every_process_finds_the_primary_through_the_sentinel(
    cluster: tuple[RedisServer, list[RedisServer], SentinelServer], tmp_path: Path
) -> None:
    primary, _, sentinel = cluster
    env = {
        # REDIS_URL names no server that runs: only the Sentinel can lead to the primary.
        **base_env("redis://127.0.0.1:1/0"),
        "REDIS_SENTINELS": f"127.0.0.1:{sentinel.port}",
        "REDIS_SENTINEL_MASTER": MASTER,
    }
    settings = Settings.from_env(env)
    # web and CLI
    assert redis_from_settings(settings).set("probe:web", "1")
    # worker: RQ builds its connection with --connection-class RQRedis, from --url.
    code = (
        "import os; from bridge.connections import RQRedis;"
        "RQRedis.from_url(os.environ['REDIS_URL']).set('probe:worker', '1')"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, timeout=30)
    on_primary = Redis(host="127.0.0.1", port=primary.port)
    assert on_primary.mget("probe:web", "probe:worker") == [b"1", b"1"]
    assert isinstance(RQRedis.from_url(primary.url), RQRedis)


def test_sentinel_and_replica_settings_are_checked_at_start() -> None:
    from bridge.errors import ConfigError

    with pytest.raises(ConfigError) as info:
        Settings.from_env(
            {"REDIS_SENTINELS": "10.0.0.1:26379,sentinel-b", "BRIDGE_REPLICAS_ACK": "-1"}
        )
    problems = "\n".join(info.value.problems)
    assert "REDIS_SENTINELS" in problems
    assert "'sentinel-b' is not host:port" in problems
    assert "BRIDGE_REPLICAS_ACK" in problems
    ok = Settings.from_env({"REDIS_SENTINELS": " a:26379, [::1]:26380 "})
    assert ok.sentinel_addresses == [("a", 26379), ("::1", 26380)]
    assert (ok.replicas_ack, ok.redis_sentinel_master) == (0, "mymaster")
