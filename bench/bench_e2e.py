"""End to end: signed Stripe webhooks in, Segment calls out, on this machine.

    .venv/bin/python bench/bench_e2e.py [--sender wrk|python|both] [--events 3000]
        [--setups simple:2,simple:1,simple:3,fork:2]
        [--variants chunk=50,chunk=1000,flush_at=100,flush_at=1000,interval=0.25]
        [--naive-events 60]

Starts a private redis-server (append-only), the local collector (own process), and for
each target the same gunicorn command (``-w 2``, sync) and the same sender:

* ``trivial``: ``bench.apps.trivial:app`` (answers 200, nothing else): the HTTP ceiling.
* ``naive``: ``bench/naive_app.py`` (construct_event + one RQ job per webhook on the
  default forking ``rq worker``, segment-analytics-python in ``sync_mode``).
* ``bridge <setup> <variant>``: ``gunicorn 'bridge.intake:create_app()'`` + N
  ``rq worker --worker-class <class> ... bridge`` processes, the shipped mappings.
  A setup is ``<kind>:<processes>``: ``simple`` = ``BridgeWorker`` (SimpleWorker),
  ``fork`` = ``ForkingBridgeWorker`` (RQ's forking Worker, same sweep). A variant
  sets BRIDGE_DRAIN_CHUNK / BRIDGE_FLUSH_AT / BRIDGE_FLUSH_INTERVAL (``chunk=``,
  ``flush_at=``, ``interval=``, joined with ``+``); every setup runs with the shipped
  defaults, every variant with the first setup.

Senders (``--sender both`` runs every target with each, in the same run):

* ``wrk``: ``bench/e2e.lua`` posts every pre-signed event exactly once over 16
  keep-alive connections and records each send time; the fastest sender here.
* ``python``: threads with keep-alive httpx clients, each event signed when sent.

Sustained webhooks/s = distinct events delivered / (first send -> last call at the
collector; for trivial: first send -> last answer); latency = each webhook's send ->
its first call's arrival at the collector. ``lost`` = events with no call at the
collector when the run ended. Bounded in count and time; every process it starts is
stopped by PID in ``finally`` blocks. Results: a table on stdout and
``bench/results/e2e-<date>.json`` + ``.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run as a script: make ``bridge`` importable from the tree
    sys.path.insert(0, str(ROOT))

from bridge.devtools.redis_server import RedisServer, free_port  # noqa: E402
from bridge.providers.stripe import signature_header  # noqa: E402

BIN = Path(sys.executable).parent
LUA = Path(__file__).resolve().parent / "e2e.lua"
RESULTS = Path(__file__).resolve().parent / "results"
SECRET = "whsec_bench_e2e_secret"
PATH = "/webhooks/stripe"
PAYLOAD = (
    ROOT.parent / "shared/fixtures/payloads/stripe__checkout.session.completed.payment_mode.json"
)
WORKER_CLASSES = {
    "simple": "bridge.delivery.worker.BridgeWorker",
    "fork": "bridge.delivery.worker.ForkingBridgeWorker",
}
VARIANT_ENV = {
    "chunk": "BRIDGE_DRAIN_CHUNK",
    "flush_at": "BRIDGE_FLUSH_AT",
    "interval": "BRIDGE_FLUSH_INTERVAL",
}
MAX_EVENTS = 20_000
MAX_NAIVE_EVENTS = 500
DELIVERY_TIMEOUT = 120.0


@dataclass
class Target:
    """One measurement: what to start and how many events to send it."""

    name: str
    kind: str  # trivial | naive | bridge
    events: int
    worker_kind: str = "simple"
    processes: int = 0
    env: dict[str, str] = field(default_factory=dict)


def template() -> dict[str, Any]:
    """The event every webhook is a copy of (a paid payment-mode checkout session)."""
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
    """``n`` distinct events (event id, body)."""
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
    """Start a process in its own session, output appended to ``log``."""
    return subprocess.Popen(
        args,
        env=env,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process we started (its own group), then SIGKILL stragglers."""
    for p in procs:
        if p.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, signal.SIGKILL)
            p.wait(timeout=5)


def wait_http(url: str, timeout: float = 30) -> None:
    """Wait until ``url`` answers anything."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=0.5)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer")


def send_python(
    url: str, events: list[tuple[str, bytes]], threads: int
) -> tuple[dict[str, float], int, float, float]:
    """POST every event from threads; send times by event id, non-2xx count, start, end."""
    sent: dict[str, float] = {}
    errors = [0]
    lock = threading.Lock()

    def work(chunk: list[tuple[str, bytes]]) -> None:
        with httpx.Client(timeout=30) as client:
            for event_id, body in chunk:
                headers = {
                    "Stripe-Signature": signature_header(body, SECRET, int(time.time())),
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
    workers = [threading.Thread(target=work, args=(c,)) for c in chunks]
    for t in workers:
        t.start()
    for t in workers:
        t.join()
    return sent, errors[0], started, time.time()


def send_wrk(
    port: int, events: list[tuple[str, bytes]], tmp: Path, connections: int, threads: int
) -> tuple[dict[str, float], int, float, float]:
    """POST every event exactly once with wrk (bench/e2e.lua); same return as
    :func:`send_python`. Non-2xx answers are counted by wrk as status errors."""
    req_file = tmp / "requests.bin"
    now = int(time.time())
    with req_file.open("wb") as f:
        for _, body in events:
            f.write(f"{signature_header(body, SECRET, now)}\n{len(body)}\n".encode() + body)
    prefix = tmp / f"wrk-sent-{time.time_ns()}"
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{int(DELIVERY_TIMEOUT)}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        str(req_file),
        PATH,
        str(threads),
        str(prefix),
    ]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    files = [Path(f"{prefix}.{k}") for k in range(threads)]
    try:
        deadline = time.monotonic() + DELIVERY_TIMEOUT
        while not all(f.exists() for f in files):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"wrk ended early: {proc.communicate()[1]}")
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)  # wrk sleeps for -d unless interrupted
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=5)
    errors = 0
    for line in out.splitlines():  # "Non-2xx or 3xx responses: N"
        if line.strip().startswith("Non-2xx"):
            errors = int(line.rsplit(":", 1)[1])
    sent: dict[str, float] = {}
    end = 0.0
    for path in files:
        for line in path.read_text().splitlines():
            a, b = line.split()
            if a == "END":
                end = max(end, float(b))
            else:
                sent[events[int(a)][0]] = float(b)
    return sent, errors, min(sent.values()), end


def received(collector: str) -> tuple[dict[str, float], int, int]:
    """First arrival by event id, distinct messageIds, all calls received."""
    rows = httpx.get(f"{collector}/received", timeout=30).json()["received"]
    first: dict[str, float] = {}
    for at, mid in rows:
        # An Order Completed is named by its payment (`once:`): pi_<run>_<i> of evt_<run>_<i>.
        part = next((p for p in str(mid).split(":") if p.startswith(("evt_", "pi_"))), str(mid))
        event_id = "evt_" + part.removeprefix("pi_") if part.startswith("pi_") else part
        first.setdefault(event_id, at)
    return first, len({mid for _, mid in rows}), len(rows)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile of sorted ``values``."""
    if not values:
        return float("nan")
    return values[min(len(values) - 1, max(0, int(len(values) * q + 0.5) - 1))]


def measure(
    target: Target,
    port: int,
    collector: str,
    sender: str,
    tmp: Path,
    args: argparse.Namespace,
) -> dict[str, Any]:
    """Send ``target.events`` webhooks, wait for their calls; one result row."""
    httpx.post(f"{collector}/control", json={"mode": "reset"}, timeout=10)
    events = bodies(f"{target.kind}{time.time_ns()}", target.events)
    if sender == "wrk":
        sent, errors, start, end = send_wrk(port, events, tmp, args.connections, args.wrk_threads)
    else:
        sent, errors, start, end = send_python(
            f"http://127.0.0.1:{port}{PATH}", events, args.threads
        )
    row: dict[str, Any] = {
        "target": target.name,
        "sender": sender,
        "events": len(events),
        "sent": len(sent),
        "non_2xx": errors,
        "accept_rps": len(sent) / (end - start),
    }
    if target.kind == "trivial":
        row["sustained"] = row["accept_rps"]
        return row
    deadline = time.monotonic() + DELIVERY_TIMEOUT
    got: dict[str, float] = {}
    distinct = calls = 0
    while time.monotonic() < deadline:
        got, distinct, calls = received(collector)
        if len(got) >= len(events):
            break
        time.sleep(0.2)
    lat = sorted(got[e] - sent[e] for e in got if e in sent)
    last = max(got.values()) if got else end
    row.update(
        delivered=len(got),
        lost=len(events) - len(got),
        calls_distinct=distinct,
        calls_received=calls,
        sustained=len(got) / (last - start),
        p50=statistics.median(lat) if lat else float("nan"),
        p99=percentile(lat, 0.99),
    )
    return row


def parse_targets(args: argparse.Namespace) -> list[Target]:
    """The targets of this run, in order."""
    n = min(args.events, MAX_EVENTS)
    out = [Target("trivial", "trivial", n)]
    setups = [s.strip() for s in args.setups.split(",") if s.strip()]
    for s in setups:
        kind, _, count = s.partition(":")
        if kind not in WORKER_CLASSES or not count.isdigit() or not 1 <= int(count) <= 8:
            raise SystemExit(f"bad setup {s!r}: want simple:N or fork:N, 1 <= N <= 8")
        out.append(Target(f"bridge {s}", "bridge", n, kind, int(count)))
    base = out[1] if len(out) > 1 else Target("bridge simple:2", "bridge", n, "simple", 2)
    for v in [v.strip() for v in args.variants.split(",") if v.strip()]:
        env = {}
        for part in v.split("+"):
            key, _, value = part.partition("=")
            if key not in VARIANT_ENV or not value:
                raise SystemExit(f"bad variant {v!r}: want chunk=N, flush_at=N, interval=S")
            env[VARIANT_ENV[key]] = value
        name = f"bridge {base.worker_kind}:{base.processes} {v}"
        out.append(Target(name, "bridge", n, base.worker_kind, base.processes, env))
    if args.naive_events > 0:
        out.append(Target("naive", "naive", min(args.naive_events, MAX_NAIVE_EVENTS)))
    return out


def start_target(
    target: Target, env: dict[str, str], redis_url: str, port: int, tmp: Path
) -> list[subprocess.Popen[bytes]]:
    """gunicorn (same command for every target) and the target's workers."""
    gunicorn = [
        str(BIN / "gunicorn"),
        "-w",
        "2",
        "-b",
        f"127.0.0.1:{port}",
        "--backlog",
        "2048",
        "--log-level",
        "warning",
        "--no-control-socket",
    ]
    tenv = {**env, **target.env}
    slug = target.name.replace(" ", "_").replace(":", "-")
    app = {
        "trivial": "bench.apps.trivial:app",
        "naive": "bench.naive_app:app",
        "bridge": "bridge.intake:create_app()",
    }[target.kind]
    procs = [spawn([*gunicorn, app], tenv, tmp / f"{slug}-web.log")]
    rq = [str(BIN / "rq"), "worker", "--url", redis_url, "--logging_level", "WARNING"]
    if target.kind == "naive":
        procs.append(spawn([*rq, "naive"], tenv, tmp / f"{slug}-worker.log"))
    elif target.kind == "bridge":
        for i in range(target.processes):
            cls = WORKER_CLASSES[target.worker_kind]
            procs.append(
                spawn([*rq, "--worker-class", cls, "bridge"], tenv, tmp / f"{slug}-w{i}.log")
            )
    return procs


def wait_workers(redis: Redis, count: int, timeout: float = 30) -> None:
    """Wait until ``count`` rq workers have registered."""
    from rq import Worker

    deadline = time.monotonic() + timeout
    while Worker.count(connection=redis) < count:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{count} rq workers did not register")
        time.sleep(0.1)


def fmt_ms(v: Any) -> str:
    return "-" if v is None or v != v else f"{v * 1000:,.0f} ms"


def medians(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (sender, target): the median of each number over the rounds, the
    worst ``lost`` and the sum of ``non_2xx``."""
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["sender"], r["target"]), []).append(r)
    out = []
    for (sender, target), runs in groups.items():
        row: dict[str, Any] = {"sender": sender, "target": target, "rounds": len(runs)}
        for key, value in runs[0].items():
            if key in row or key == "round" or not isinstance(value, int | float):
                continue
            values = [r[key] for r in runs]
            if key == "lost":
                row[key] = max(values)
            elif key == "non_2xx":
                row[key] = sum(values)
            else:
                row[key] = statistics.median(values)
        row["sustained_all"] = [round(r["sustained"], 1) for r in runs]
        out.append(row)
    return out


def table(rows: list[dict[str, Any]]) -> str:
    """Markdown table (medians over rounds), with ratios against trivial and naive
    measured with the same sender."""
    base: dict[tuple[str, str], float] = {}
    for r in rows:
        base[(r["sender"], r["target"])] = r["sustained"]
    lines = [
        "| sender | target | events | 2xx/s in | sustained webhooks/s (each round) | p50 | p99 "
        "| lost | calls (distinct/received) | vs trivial (>= 0.25x) | vs naive (>= 20x) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        triv = base.get((r["sender"], "trivial"))
        naive = base.get((r["sender"], "naive"))
        bridge = r["target"].startswith("bridge")
        vt = f"{r['sustained'] / triv:.2f}x" if bridge and triv else "-"
        vn = f"{r['sustained'] / naive:.0f}x" if bridge and naive else "-"
        calls = (
            f"{r['calls_distinct']:.0f}/{r['calls_received']:.0f}" if "calls_distinct" in r else "-"
        )
        each = ", ".join(f"{v:,.0f}" for v in r.get("sustained_all", []))
        lines.append(
            f"| {r['sender']} | {r['target']} | {r['events']:.0f} | {r['accept_rps']:,.0f} | "
            f"{r['sustained']:,.0f} ({each}) | {fmt_ms(r.get('p50'))} | {fmt_ms(r.get('p99'))} | "
            f"{r.get('lost', '-')} | {calls} | {vt} | {vn} |"
        )
    return "\n".join(lines)


def wait_quiet(limit: float = 900) -> None:
    """Do not share the CPU with bench_intake.py or pytest: wait until neither runs."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        busy = [
            pat
            for pat in ("bench_intake.py", "pytest")
            if subprocess.run(["pgrep", "-f", pat], capture_output=True).returncode == 0
        ]
        if not busy:
            return
        print(f"waiting: {', '.join(busy)} running", flush=True)
        time.sleep(20)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument(
        "--events", type=int, default=3000, help=f"webhooks per target (max {MAX_EVENTS})"
    )
    p.add_argument(
        "--naive-events", type=int, default=60, help=f"webhooks for naive (max {MAX_NAIVE_EVENTS})"
    )
    p.add_argument("--setups", default="simple:2,simple:1,simple:3,fork:2")
    p.add_argument("--variants", default="", help="e.g. chunk=50,flush_at=1000+interval=0.25")
    p.add_argument("--sender", choices=["wrk", "python", "both"], default="both")
    p.add_argument("--rounds", type=int, default=1, help="rounds, order rotated (max 5)")
    p.add_argument("--threads", type=int, default=8, help="python sender threads")
    p.add_argument("--connections", type=int, default=16, help="wrk connections")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads")
    p.add_argument("--no-wait", action="store_true", help="do not wait for bench_intake/pytest")
    p.add_argument("--label", default="", help="suffix for the results file name")
    args = p.parse_args()
    # SIGTERM (e.g. from `timeout`) must run the finally blocks that stop what we started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    targets = parse_targets(args)
    senders = ["wrk", "python"] if args.sender == "both" else [args.sender]
    tmp = Path(tempfile.mkdtemp(prefix="bench-e2e-"))
    server = RedisServer(tmp / "redis").start()
    cport = free_port()
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
    for var in VARIANT_ENV.values():  # the shipped defaults unless a variant sets one
        env.pop(var, None)
    collector = spawn(
        [sys.executable, "-m", "bridge.devtools.collector", "--port", str(cport), "--quiet"],
        env,
        tmp / "collector.log",
    )
    rows: list[dict[str, Any]] = []
    started = time.time()
    try:
        wait_http(f"{collector_url}/stats")
        redis = Redis.from_url(server.url)
        rounds = max(1, min(args.rounds, 5))
        plan = []
        for k in range(rounds):  # rotate the order every round: no target always goes first
            shift = k % len(targets)
            plan += [(k, t, s) for t in targets[shift:] + targets[:shift] for s in senders]
        for k, target, sender in plan:
            if not args.no_wait:
                wait_quiet()
            redis.flushdb()
            wport = free_port()  # fresh each time: another program may have taken the last
            procs = start_target(target, env, server.url, wport, tmp)
            try:
                wait_http(f"http://127.0.0.1:{wport}/")
                wait_workers(redis, 1 if target.kind == "naive" else target.processes)
                time.sleep(1.0)
                row = measure(target, wport, collector_url, sender, tmp, args)
            finally:
                stop(procs)
            row["round"] = k + 1
            rows.append(row)
            print(json.dumps(row), flush=True)
    finally:
        stop([collector])
        server.stop()
    order = {(s, t.name): i for i, (t, s) in enumerate((t, s) for t in targets for s in senders)}
    summary = sorted(medians(rows), key=lambda r: order[(r["sender"], r["target"])])
    md = table(summary)
    head = (
        f"{dt.datetime.now().isoformat(timespec='seconds')}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}; gunicorn -w 2 (sync) for every target; "
        f"wrk -t {args.wrk_threads} -c {args.connections} (bench/e2e.lua, every event once) "
        f"/ python: {args.threads} threads; {rounds} round(s), order rotated, medians; "
        f"{time.time() - started:.0f} s in all"
    )
    print(f"\n{head}\n\n{md}")
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now().strftime("%Y-%m-%d-%H%M%S") + (f"-{args.label}" if args.label else "")
    (RESULTS / f"e2e-{stamp}.json").write_text(
        json.dumps({"args": vars(args), "rows": rows, "medians": summary}, indent=2)
    )
    (RESULTS / f"e2e-{stamp}.md").write_text(f"{head}\n\n{md}\n")
    print(f"\nresults: bench/results/e2e-{stamp}.json, .md")


if __name__ == "__main__":
    main()
