"""Console benchmark: Redis memory per recorded webhook, and intake with recording on vs off.

One command, from the repository root::

    .venv/bin/python bench/bench_console.py

1. **Memory.** On a private ``redis-server``, records ``--events`` webhooks through the
   real paths (the event store takes each event, the web process's recorder its log
   entry; the worker's ``DeliveryRecorder`` adds the payload, the call and its "sent"
   state), for bodies of
   the intake bench's size (~3 KB) and a small one, and reports the ``MEMORY USAGE``
   of the console's keys per event; then the same with the log capped at
   ``--retention`` entries, showing the cap holds.
2. **Recording alone.** Web-process CPU per stored webhook of ``IntakeRecorder.stored``
   with its share of the burst writes, and the Redis CPU of those writes.
3. **CPU per webhook.** The real app in one process (Flask's test client, no network
   load generator), recording off and on alternately: median CPU microseconds per
   webhook; steadier than req/s on a shared machine.
4. **Intake.** Three gunicorns side by side with the same settings (``bench_intake.py``'s
   helpers, wrk and its request files): ``bridge``, ``bridge+console``
   (BRIDGE_CONSOLE_TOKEN set, so every webhook is recorded) and ``bridge again`` (a
   second plain one: the control, showing how much two runs of the same server differ
   on this machine). Rounds rotate the order; the ratios to ``bridge`` are taken within
   each round and their medians reported.

Results: a table on stdout and ``bench/results/console-<date>.json``. Everything it
starts is stopped by PID. Needs ``wrk``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import orjson
from redis import Redis

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench import bench_intake as bi  # noqa: E402
from bench import bench_scale  # noqa: E402
from bridge.console import record  # noqa: E402
from bridge.delivery.observers import FlushEvent  # noqa: E402
from bridge.devtools.redis_server import RedisServer, free_port  # noqa: E402
from bridge.envelope import Envelope  # noqa: E402
from bridge.settings import Settings  # noqa: E402

#: Hard limits, whatever the arguments say.
MAX_EVENTS = 100_000
MAX_ROUNDS = 10


STRIPE_ENVIRON = {
    "HTTP_HOST": "bridge.example.com",
    "HTTP_USER_AGENT": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
    "CONTENT_TYPE": "application/json; charset=utf-8",
    "HTTP_STRIPE_SIGNATURE": "t=1700000000,v1=" + "0" * 64,
    "REQUEST_METHOD": "POST",
    "PATH_INFO": "/webhooks/stripe",
    "wsgi.url_scheme": "https",
}


def console_bytes(redis: Redis) -> tuple[int, int]:
    """``MEMORY USAGE`` of every console key (bytes), and how many keys there are."""
    total = keys = 0
    for key in redis.scan_iter(match=f"{record.PREFIX}*", count=1000):
        total += int(redis.memory_usage(key, samples=0) or 0)
        keys += 1
    return total, keys


def memory(redis: Redis, redis_url: str, events: int, body: bytes, retention: int) -> float:
    """Bytes of console state per recorded event, through the real paths: the accept
    script writes the log entry (masked headers, facts) with the event, the worker's
    recorder its payload and call, then the call's "sent" state."""
    from bridge.intake.store import EventStore
    from bridge.providers import VerifiedEvent

    redis.flushdb()
    settings = Settings.from_env(
        {
            "REDIS_URL": redis_url,
            "BRIDGE_CONSOLE_TOKEN": "bench",
            "BRIDGE_CONSOLE_RETENTION": str(retention),
        }
    )
    intake = record.IntakeRecorder(redis, settings)
    store = EventStore(redis, settings.dedup_ttl)
    delivery = record.DeliveryRecorder(redis, settings)
    environ = {**STRIPE_ENVIRON, "CONTENT_LENGTH": str(len(body))}
    for i in range(events):
        event_id = f"evt_{i:024d}"
        event = VerifiedEvent(
            id=event_id, type="checkout.session.completed", time=1.0, body={}, raw=body
        )
        intake.stored(
            source="stripe",
            event_id=event_id,
            event_type=event.type,
            outcome=store.accept("stripe", event).value,
            ms=0.4,
            size=len(body),
            environ=environ,
        )
        raw = Envelope.encode(
            source="stripe", id=event_id, type=event.type, time=1.0, received_at=1.0, raw=body
        )
        env = Envelope("stripe", event_id, event.type, 1.0, 1.0, {})
        call = {
            "type": "track",
            "event": "Order Completed",
            "messageId": f"stripe:{event_id}:checkout-completed",
            "userId": "user_42",
            "timestamp": "2026-01-01T00:00:00.000Z",
            "properties": {"order_id": "pi_1", "total": 49.0, "revenue": 40.0, "currency": "USD"},
            "context": {"library": {"name": "bridge", "version": "0.1.0"}},
        }
        delivery.mapped(env, [call], raw)
        delivery.commit([], done=True)
        delivery.on_flush(
            FlushEvent(
                "flushed",
                batch_id="b" * 32,
                calls=1,
                attempt=1,
                status=200,
                payload=orjson.dumps([call]),
            )
        )
    intake.flush()
    # Capped keys are UNLINKed: wait until Redis's background thread has freed them.
    for _ in range(200):
        if not int(redis.info("memory").get("lazyfree_pending_objects", 0)):
            break
        time.sleep(0.05)
    total, _ = console_bytes(redis)
    return total / events


def webhook_path_cost(redis: Redis, redis_url: str, events: int) -> dict[str, float]:
    """What recording adds per stored webhook, alone: web-process CPU of
    ``IntakeRecorder.stored`` with its share of the burst writes, and Redis CPU of those
    writes (``INFO cpu`` before and after)."""
    settings = Settings.from_env({"REDIS_URL": redis_url, "BRIDGE_CONSOLE_TOKEN": "bench"})
    recorder = record.IntakeRecorder(redis, settings)
    environ = {**STRIPE_ENVIRON, "CONTENT_LENGTH": "3072"}

    def redis_cpu() -> float:
        info = redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])

    redis.flushdb()
    before = redis_cpu()
    started = time.process_time()
    for i in range(events):
        recorder.stored(
            source="stripe",
            event_id=f"evt_{i:024d}",
            event_type="checkout.session.completed",
            outcome="accepted",
            ms=0.4,
            size=3072,
            environ=dict(environ),  # a new environ per request, as a server gives
        )
    recorder.flush()
    client_us = (time.process_time() - started) / events * 1e6
    return {"client_us": client_us, "redis_us": (redis_cpu() - before) / events * 1e6}


def inprocess_cpu(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """CPU microseconds per webhook of the real app (Flask test client, one process),
    recording off and on, alternating; less sensitive to a busy machine than req/s."""
    import io

    from bridge.intake import create_app
    from bridge.providers.stripe import signature_header

    server = RedisServer(work / "cpu").start()
    per: dict[str, list[float]] = {"bridge": [], "bridge+console": []}
    try:
        template = bi.body_template(3072)
        base = {
            **bi.mapping_secrets_env(),
            "REDIS_URL": server.url,
            "STRIPE_WEBHOOK_SECRET": bi.SECRET,
            "BRIDGE_MAPPINGS_DIR": str(REPO / "mappings"),
            "BRIDGE_LOG_LEVEL": "warning",
            "BRIDGE_LOG_FORMAT": "json",
        }
        envs = {"bridge": base, "bridge+console": {**base, "BRIDGE_CONSOLE_TOKEN": "bench"}}
        n = 2000
        for rnd in range(args.rounds + 1):  # round 0 warms up and is not counted
            names = list(envs) if rnd % 2 else list(envs)[::-1]
            for name in names:
                Redis.from_url(server.url).flushdb()
                app = create_app(Settings.from_env(envs[name]), log_stream=io.StringIO())
                client = app.test_client()
                now = int(time.time())
                requests = []
                for i in range(n):
                    body = template.replace(bi.ID_PLACEHOLDER, f"evt_{rnd}_{i:06d}").encode()
                    requests.append((body, signature_header(body, bi.SECRET, now)))
                started = time.process_time()
                for body, sig in requests:
                    client.post(
                        bi.PATH,
                        data=body,
                        headers={"Stripe-Signature": sig, "Content-Type": "application/json"},
                    )
                cpu = (time.process_time() - started) / n * 1e6
                if rnd:
                    per[name].append(cpu)
                    print(
                        f"in-process round {rnd} {name:<15} {cpu:6.0f} us CPU/webhook", flush=True
                    )
    finally:
        server.stop()
    medians = {k: statistics.median(v) for k, v in per.items()}
    return {
        "rounds": per,
        "median_us": medians,
        "ratio": medians["bridge+console"] / medians["bridge"],
    }


def intake_rounds(args: argparse.Namespace, work: Path) -> list[dict[str, Any]]:
    server = RedisServer(work / "redis").start()
    procs = []
    rows: list[dict[str, Any]] = []
    try:
        redis = Redis.from_url(server.url)
        settings = bi.GunicornSettings(args.workers, "sync", 1)
        base = {
            **bi.mapping_secrets_env(),
            **os.environ,
            "REDIS_URL": server.url,
            "BRIDGE_MAPPINGS_DIR": str(REPO / "mappings"),
            "STRIPE_WEBHOOK_SECRET": bi.SECRET,
            "BRIDGE_LOG_LEVEL": "warning",
            "BRIDGE_LOG_FORMAT": "json",
            "PYTHONPATH": str(REPO),
        }
        base.pop("BRIDGE_CONSOLE_TOKEN", None)
        # "bridge again" is a second, identical plain server: how far two runs of the same
        # thing differ here (the noise any other ratio is read against).
        envs = {
            "bridge": base,
            "bridge again": dict(base),
            "bridge+console": {**base, "BRIDGE_CONSOLE_TOKEN": "bench"},
        }
        ports = {}
        for name, env in envs.items():
            port = free_port()
            procs.append(
                bi.start_gunicorn(
                    "bridge.intake:create_app()", port, settings, env, work / f"{name}.log"
                )
            )
            ports[name] = port
        template = bi.body_template(3072)
        requests_file = work / "requests.bin"
        names = list(envs)
        for rnd in range(args.rounds):
            order = names[rnd % 3 :] + names[: rnd % 3]  # each goes first, second, last
            got: dict[str, float] = {}
            cpu_ms: dict[str, tuple[float, float]] = {}
            for name in order:
                bi.reset_redis(redis)
                bi.write_requests(requests_file, template, 60_000, duplicate_of=None)
                web_pids = bench_scale.tree(procs[names.index(name)].pid)
                redis_pid = [server.process.pid] if server.process else []
                cpu_before = (bench_scale.cpu_s(web_pids), bench_scale.cpu_s(redis_pid))
                w = bi.run_wrk(
                    ports[name],
                    requests_file,
                    "once",
                    duration=args.duration,
                    connections=args.connections,
                    threads=1,
                )
                seconds = w["duration_us"] / 1e6
                got[name] = w["requests"] / seconds
                served = max(1, w["requests"])
                cpu_ms[name] = (
                    (bench_scale.cpu_s(web_pids) - cpu_before[0]) / served * 1000,
                    (bench_scale.cpu_s(redis_pid) - cpu_before[1]) / served * 1000,
                )
                logged = redis.xlen(record.LOG) if redis.exists(record.LOG) else 0
                print(
                    f"round {rnd + 1} {name:<15} {got[name]:8.0f} req/s "
                    f"CPU ms/webhook web {cpu_ms[name][0]:.3f} redis {cpu_ms[name][1]:.3f} "
                    f"p50 {w['latency_us']['p50'] / 1000:.2f} ms errors "
                    f"{sum(w['errors'].values())} log entries {logged}",
                    flush=True,
                )
            rows.append(
                {
                    "round": rnd + 1,
                    **got,
                    "ratio": got["bridge+console"] / got["bridge"],
                    "control_ratio": got["bridge again"] / got["bridge"],
                    "cpu_ms": cpu_ms,
                }
            )
    finally:
        for proc in procs:
            bi.stop(proc)
        server.stop()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--events", type=int, default=5000, help="events recorded for memory")
    p.add_argument("--retention", type=int, default=1000, help="log cap for the capped run")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=8.0)
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--workers", type=int, default=4, help="gunicorn workers (Procfile: 2/core)")
    p.add_argument("--skip-intake", action="store_true")
    args = p.parse_args(argv)
    args.events = max(100, min(args.events, MAX_EVENTS))
    args.rounds = max(1, min(args.rounds, MAX_ROUNDS))
    args.duration = max(1.0, min(args.duration, 60.0))
    result: dict[str, Any] = {"machine": bi.machine(), "args": vars(args)}
    with tempfile.TemporaryDirectory(prefix="bench-console-") as tmp:
        work = Path(tmp)
        server = RedisServer(work / "mem").start()
        try:
            redis = Redis.from_url(server.url)
            big = bi.body_template(3072).replace(bi.ID_PLACEHOLDER, "evt_x").encode()
            small = b'{"id":"evt_x","type":"invoice.paid","created":1,"data":{"object":{}}}'
            mem = {
                "body_3k_per_event": memory(redis, server.url, args.events, big, 1_000_000),
                "body_small_per_event": memory(redis, server.url, args.events, small, 1_000_000),
            }
            memory(redis, server.url, args.events, big, args.retention)
            # The cap holds: entries and keys stay bounded whatever was recorded.
            mem["capped_log_entries"] = int(redis.xlen(record.LOG))
            mem["capped_log_webhooks"] = sum(
                int(fields.get(b"n", 1)) for _, fields in redis.xrange(record.LOG)
            )
            mem["capped_keys"] = console_bytes(redis)[1]
            mem["body_bytes"] = len(big)
            result["webhook_path"] = webhook_path_cost(redis, server.url, args.events)
        finally:
            server.stop()
        result["memory"] = mem
        path = result["webhook_path"]
        print(
            f"recording alone, per stored webhook: web-process CPU {path['client_us']:.1f} us, "
            f"Redis CPU {path['redis_us']:.1f} us",
            flush=True,
        )
        print(
            f"memory per event: 3 KB body {mem['body_3k_per_event']:.0f} B, small body "
            f"{mem['body_small_per_event']:.0f} B; {args.events} recorded with the log "
            f"capped at {args.retention}: {mem['capped_log_webhooks']} webhooks in "
            f"{mem['capped_log_entries']} stream entries, "
            f"{mem['capped_keys']} keys",
            flush=True,
        )
        cpu = inprocess_cpu(args, work)
        result["inprocess_cpu"] = cpu
        print(
            f"in-process CPU per webhook: off {cpu['median_us']['bridge']:.0f} us, on "
            f"{cpu['median_us']['bridge+console']:.0f} us ({cpu['ratio']:.3f}x)",
            flush=True,
        )
        if not args.skip_intake:
            if shutil.which("wrk") is None:
                print("wrk is needed: apt-get install -y wrk", file=sys.stderr)
                return 2
            rows = intake_rounds(args, work)
            result["intake"] = rows
            ratio = statistics.median(r["ratio"] for r in rows)
            control = statistics.median(r["control_ratio"] for r in rows)
            result["intake_ratio_median"] = ratio
            result["intake_control_ratio_median"] = control
            print(
                f"intake with console recording / without: median {ratio:.3f}x "
                "(rounds: " + ", ".join(f"{r['ratio']:.3f}" for r in rows) + "); "
                f"the same server twice: median {control:.3f}x (rounds: "
                + ", ".join(f"{r['control_ratio']:.3f}" for r in rows)
                + ")",
                flush=True,
            )
    out = bi.RESULTS / f"console-{dt.date.today().isoformat()}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2, default=str))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
