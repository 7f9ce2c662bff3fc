"""End to end: signed Stripe webhooks in, Segment calls out, on this machine.

    .venv/bin/python bench/bench_e2e.py [--events 3000] [--workers 2] [--naive-events 60]

Starts a private redis-server, the local collector (own process), and for each target
the same gunicorn command (``-w 2``) and the same sender (threads with keep-alive
httpx clients, every event its own id and signature):

* ``bridge``:  ``gunicorn 'bridge.intake:create_app()'`` + N ``rq worker`` processes
  (``--worker-class bridge.delivery.worker.BridgeWorker``), the shipped stripe mapping.
* ``trivial``: ``bench.apps.trivial:app`` (answers 200, nothing else): HTTP ceiling.
* ``naive``:   ``bench/naive_app.py`` (construct_event + one RQ job per webhook on the
  default forking worker, segment-analytics-python in sync_mode).

Sustained webhooks/s = events / (first send -> last delivery at the collector);
latency = each webhook's send -> its call's arrival. Bounded in count and time.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bridge.providers.stripe import signature_header
from bridge.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
SECRET = "whsec_bench_e2e_secret"
PAYLOAD = Path(
    "/work/shared/fixtures/payloads/stripe__checkout.session.completed.payment_mode.json"
)


def template() -> dict[str, Any]:
    if PAYLOAD.exists():
        return dict(orjson.loads(PAYLOAD.read_bytes()))
    return {
        "id": "evt_x",
        "object": "event",
        "type": "checkout.session.completed",
        "created": 1700000000,
        "livemode": False,
        "api_version": "2024-06-20",
        "data": {
            "object": {
                "id": "cs_x",
                "object": "checkout.session",
                "mode": "payment",
                "payment_status": "paid",
                "customer": "cus_x",
                "currency": "usd",
                "amount_total": 1999,
                "amount_subtotal": 1999,
                "invoice": None,
                "total_details": {"amount_discount": 0, "amount_tax": 0, "amount_shipping": 0},
            }
        },
    }


def bodies(run: str, n: int) -> list[tuple[str, bytes]]:
    base = template()
    out = []
    now = int(time.time())
    for i in range(n):
        ev = dict(base)
        ev["id"] = f"evt_{run}_{i}"
        ev["created"] = now
        obj = dict(ev["data"]["object"])
        obj["id"] = f"cs_{run}_{i}"
        obj["payment_intent"] = f"pi_{run}_{i}"
        ev["data"] = {"object": obj}
        out.append((ev["id"], orjson.dumps(ev)))
    return out


def spawn(args: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        args,
        env=env,
        cwd=ROOT,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def wait_http(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def send_all(
    url: str, events: list[tuple[str, bytes]], threads: int
) -> tuple[dict[str, float], int, float, float]:
    """POST every event; returns send times by event id, non-2xx count, start, end."""
    sent: dict[str, float] = {}
    errors = [0]
    lock = threading.Lock()

    def work(chunk: list[tuple[str, bytes]]) -> None:
        with httpx.Client(timeout=30) as client:
            for event_id, body in chunk:
                ts = int(time.time())
                headers = {
                    "Stripe-Signature": signature_header(body, SECRET, ts),
                    "Content-Type": "application/json",
                }
                t = time.time()
                r = client.post(url, content=body, headers=headers)
                with lock:
                    sent[event_id] = t
                    if r.status_code >= 300:
                        errors[0] += 1

    chunks = [events[i::threads] for i in range(threads)]
    started = time.time()
    ts_ = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in ts_:
        t.start()
    for t in ts_:
        t.join()
    return sent, errors[0], started, time.time()


def received(collector: str) -> dict[str, float]:
    rows = httpx.get(f"{collector}/received", timeout=30).json()["received"]
    first: dict[str, float] = {}
    for at, mid in rows:
        event_id = next((p for p in str(mid).split(":") if p.startswith("evt_")), str(mid))
        first.setdefault(event_id, at)
    return first


def measure(
    name: str,
    url: str,
    collector: str,
    events: list[tuple[str, bytes]],
    threads: int,
    deliver: bool,
    timeout: float,
) -> dict[str, Any]:
    httpx.post(f"{collector}/control", json={"mode": "reset"})
    sent, errors, start, end = send_all(url, events, threads)
    row: dict[str, Any] = {
        "target": name,
        "events": len(events),
        "errors": errors,
        "accept_rps": len(events) / (end - start),
    }
    if not deliver:
        row["sustained"] = row["accept_rps"]
        return row
    deadline = time.monotonic() + timeout
    got: dict[str, float] = {}
    while time.monotonic() < deadline:
        got = received(collector)
        if len(got) >= len(events):
            break
        time.sleep(0.2)
    lat = sorted(got[e] - sent[e] for e in got if e in sent)
    last = max(got.values()) if got else end
    row.update(
        delivered=len(got),
        lost=len(events) - len(got),
        sustained=len(got) / (last - start),
        p50=statistics.median(lat) if lat else float("nan"),
        p99=lat[int(len(lat) * 0.99) - 1] if lat else float("nan"),
    )
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument(
        "--events", type=int, default=3000, help="webhooks for bridge/trivial (max 20000)"
    )
    p.add_argument("--naive-events", type=int, default=60, help="webhooks for naive (max 500)")
    p.add_argument("--workers", type=int, default=2, help="bridge rq worker processes")
    p.add_argument("--threads", type=int, default=8, help="sender threads")
    p.add_argument("--targets", default="trivial,bridge,naive")
    args = p.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    server = RedisServer(tmp / "redis").start()
    cport, wport = free_port(), free_port()
    collector_url = f"http://127.0.0.1:{cport}"
    env = {
        **os.environ,
        "REDIS_URL": server.url,
        "SEGMENT_ENDPOINT": collector_url,
        "SEGMENT_WRITE_KEY": "bench",
        "STRIPE_WEBHOOK_SECRET": SECRET,
        "BRIDGE_MAPPINGS_DIR": str(ROOT / "mappings"),
        "BRIDGE_LOG_LEVEL": "warning",
        "BRIDGE_LOG_FORMAT": "json",
        "PYTHONPATH": str(ROOT),
        # the other shipped mappings need their secrets to load
        "CLERK_WEBHOOK_SECRET": "whsec_" + "Y2xlcmstYmVuY2gtc2VjcmV0LTMyLWJ5dGVzLWxvbmch",
        "GITHUB_WEBHOOK_SECRET": "bench",
    }
    collector = spawn(
        [sys.executable, "-m", "bridge.collector", "--port", str(cport), "--quiet"],
        env,
        tmp / "collector.log",
    )
    rows = []
    gunicorn = [
        str(BIN / "gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{wport}",
        "--log-level",
        "warning",
    ]
    try:
        wait_http(f"{collector_url}/stats")
        for target in args.targets.split(","):
            server_redis = __import__("redis").Redis.from_url(server.url)
            server_redis.flushdb()
            if target == "trivial":
                procs = [spawn([*gunicorn, "bench.apps.trivial:app"], env, tmp / "trivial.log")]
                n, deliver, timeout = min(args.events, 20000), False, 0.0
            elif target == "bridge":
                procs = [spawn([*gunicorn, "bridge.intake:create_app()"], env, tmp / "web.log")]
                for i in range(args.workers):
                    procs.append(
                        spawn(
                            [
                                str(BIN / "rq"),
                                "worker",
                                "--worker-class",
                                "bridge.delivery.worker.BridgeWorker",
                                "--url",
                                server.url,
                                "--logging_level",
                                "WARNING",
                                "bridge",
                            ],
                            env,
                            tmp / f"worker{i}.log",
                        )
                    )
                n, deliver, timeout = min(args.events, 20000), True, 120.0
            else:
                procs = [
                    spawn([*gunicorn, "bench.naive_app:app"], env, tmp / "naive.log"),
                    spawn(
                        [
                            str(BIN / "rq"),
                            "worker",
                            "--url",
                            server.url,
                            "--logging_level",
                            "WARNING",
                            "naive",
                        ],
                        env,
                        tmp / "naive-w.log",
                    ),
                ]
                n, deliver, timeout = min(args.naive_events, 500), True, 120.0
            try:
                wait_http(f"http://127.0.0.1:{wport}/healthz")
                time.sleep(1.0)  # let workers register
                events = bodies(f"{target}{int(time.time())}", n)
                url = f"http://127.0.0.1:{wport}/webhooks/stripe"
                rows.append(
                    measure(target, url, collector_url, events, args.threads, deliver, timeout)
                )
            finally:
                stop(procs)
    finally:
        stop([collector])
        server.stop()
    by = {r["target"]: r for r in rows}
    print(
        f"\nbridge workers: {args.workers} x BridgeWorker; sender threads: {args.threads}; "
        f"gunicorn -w 2 (sync)\n"
    )
    print(
        "| target  | events | 2xx/s in | sustained webhooks/s | p50 latency | p99 latency | lost |"
    )
    print(
        "|---------|--------|----------|----------------------|-------------|-------------|------|"
    )
    for r in rows:
        lat = (
            (f"{r['p50'] * 1000:,.0f} ms", f"{r['p99'] * 1000:,.0f} ms")
            if "p50" in r
            else ("-", "-")
        )
        print(
            f"| {r['target']:<7} | {r['events']:>6} | {r['accept_rps']:>8,.0f} | "
            f"{r['sustained']:>20,.1f} | {lat[0]:>11} | {lat[1]:>11} | {r.get('lost', '-')!s:>4} |"
        )
    if "bridge" in by:
        b = by["bridge"]["sustained"]
        if "trivial" in by:
            print(f"\nbridge / trivial = {b / by['trivial']['sustained']:.2f}x (bar >= 0.25x)")
        if "naive" in by:
            print(f"bridge / naive   = {b / by['naive']['sustained']:.1f}x (bar >= 20x)")


if __name__ == "__main__":
    main()
