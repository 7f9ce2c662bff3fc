"""Collection benchmark: calls per second through ``/v1/batch`` beside the webhook intake.

One command, from the repository root::

    .venv/bin/python bench/bench_collect.py [--rounds 3] [--duration 10] [--batch 20]

It starts a private ``redis-server`` and one gunicorn serving bridge (the Procfile's
command: sync workers, ``--workers`` of them) with the Stripe source and the shipped
``site`` source on, then, in each round (the order alternates), gives the same wrk load
for the same time to:

* ``webhooks``: signed ~3 KB Stripe events to ``/webhooks/stripe`` (bench_intake's
  request files and ``intake.lua``), each a new event id;
* ``track``: one call per request to ``/v1/track`` with HTTP Basic auth;
* ``batch``: ``--batch`` calls per request to ``/v1/batch``.

Every call carries a new messageId, so each one is validated, deduplicated and appended
to the outbox. Redis is flushed before every measurement. It prints requests/s and
calls (or events)/s, p50/p99 latency, and the ratios to the webhook intake measured in
the same round, with medians over rounds; ``--json`` writes them to a file. Needs
``wrk``. Everything it starts is stopped by PID.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from redis import Redis

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script
    sys.path.insert(0, str(REPO))

from bench import bench_intake as intake  # noqa: E402
from bridge.devtools.redis_server import RedisServer, free_port  # noqa: E402

LUA = Path(__file__).resolve().parent / "collect.lua"
KEY = "wk_bench_collect"
AUTH = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()


def wrk_collect(
    port: int, path: str, per: int, *, duration: float, connections: int
) -> dict[str, Any]:
    cmd = [
        "wrk", "-t", "1", "-c", str(connections), "-d", f"{duration:g}s", "--timeout", "10s",
        "-s", str(LUA), f"http://127.0.0.1:{port}", "--", path, str(per), AUTH,
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return result
    raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")


def measure(name: str, raw: dict[str, Any], per: int) -> dict[str, Any]:
    seconds = raw["duration_us"] / 1e6
    errors = sum(raw["errors"].values())
    return {
        "target": name,
        "rps": round(raw["requests"] / seconds, 1),
        "items_per_s": round(raw["requests"] * per / seconds, 1),
        "p50_ms": raw["latency_us"]["p50"] / 1000,
        "p99_ms": raw["latency_us"]["p99"] / 1000,
        "errors": errors,
    }


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0, help="seconds per measurement")
    p.add_argument("--connections", type=int, default=16)
    p.add_argument("--batch", type=int, default=20, help="calls per /v1/batch request")
    p.add_argument("--workers", type=int, default=1, help="gunicorn workers (Procfile: 1)")
    p.add_argument("--json", type=Path, default=None, help="write the results here")
    args = p.parse_args(argv)
    args.rounds = max(1, min(args.rounds, intake.MAX_ROUNDS))
    args.duration = max(1.0, min(args.duration, intake.MAX_DURATION))
    args.batch = max(1, min(args.batch, 500))
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-collect-") as tmp:
        work = Path(tmp)
        redis_server = RedisServer(work / "redis").start()
        proc = None
        try:
            redis = Redis.from_url(redis_server.url)
            env = {
                **os.environ,
                **intake.mapping_secrets_env(),
                "REDIS_URL": redis_server.url,
                "STRIPE_WEBHOOK_SECRET": intake.SECRET,
                "BRIDGE_WRITE_KEYS": KEY,
                "BRIDGE_LOG_LEVEL": "warning",
            }
            # The shipped site source limits each client IP (600 requests a minute); the
            # load comes from one IP, so an operator layer lifts the limit.
            layer = work / "mappings"
            layer.mkdir()
            (layer / "site.yaml").write_text("extends: site\ncollect:\n  allowed_origins: '*'\n")
            env["BRIDGE_MAPPINGS_DIR"] = str(layer)
            port = free_port()
            settings = intake.GunicornSettings(args.workers, "sync", 1)
            proc = intake.start_gunicorn(
                "bridge.intake:create_app()", port, settings, env, work / "bridge.log"
            )
            template = intake.body_template(3000)
            # Enough distinct events for the fastest plausible rate over one measurement.
            events = int(min(intake.MAX_REQUESTS_PER_FILE, 4000 * args.duration))
            order = ["webhooks", "track", "batch"]
            for n in range(args.rounds):
                found: dict[str, dict[str, Any]] = {}
                for name in order if n % 2 == 0 else list(reversed(order)):
                    redis.flushdb()
                    if name == "webhooks":
                        requests = work / "webhooks.req"
                        intake.write_requests(requests, template, events, duplicate_of=None)
                        raw = intake.run_wrk(
                            port, requests, "once", duration=args.duration,
                            connections=args.connections, threads=1,
                        )  # fmt: skip
                        found[name] = measure(name, raw, 1)
                    else:
                        single = name == "track"
                        path, per = ("/v1/track", 1) if single else ("/v1/batch", args.batch)
                        raw = wrk_collect(
                            port, path, per, duration=args.duration, connections=args.connections
                        )
                        found[name] = measure(name, raw, per)
                        stored = int(redis.llen("bridge:outbox"))
                        found[name]["stored"] = stored
                    print(json.dumps({"round": n, **found[name]}), flush=True)
                rounds.append(found)
        finally:
            if proc is not None:
                intake.stop(proc)
            redis_server.stop()
    summary: dict[str, Any] = {"args": {k: str(v) for k, v in vars(args).items()}, "targets": {}}
    for name in ("webhooks", "track", "batch"):
        per_round = [r[name] for r in rounds]
        ratio = [r[name]["items_per_s"] / r["webhooks"]["items_per_s"] for r in rounds]
        summary["targets"][name] = {
            "rps": statistics.median(m["rps"] for m in per_round),
            "items_per_s": statistics.median(m["items_per_s"] for m in per_round),
            "p50_ms": statistics.median(m["p50_ms"] for m in per_round),
            "p99_ms": statistics.median(m["p99_ms"] for m in per_round),
            "errors": sum(m["errors"] for m in per_round),
            "ratio_to_webhooks": round(statistics.median(ratio), 2),
        }
    print("\n| target | req/s | calls or events/s | p50 ms | p99 ms | x webhooks | errors |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, t in summary["targets"].items():
        print(
            f"| {name} | {t['rps']:.0f} | {t['items_per_s']:.0f} | {t['p50_ms']:.2f} | "
            f"{t['p99_ms']:.2f} | {t['ratio_to_webhooks']:.2f} | {t['errors']} |"
        )
    if args.json is not None:
        args.json.write_text(json.dumps({"rounds": rounds, "summary": summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
