"""Intake benchmark: bridge against the durable floor, a trivial Flask endpoint and a
naive Stripe handler.

One command, from the repository root::

    .venv/bin/python bench/bench_intake.py

It starts a private ``redis-server`` (append-only, as in production) and one gunicorn
server per app, all with the same settings (by default the shipped ones,
``-c python:bridge.gunicorn_conf``, at ``-w 4`` as the image runs), on 127.0.0.1:

* ``trivial``: ``bench.apps.trivial:app``, reads the body and answers 200 (the ceiling);
* ``floor``: ``bench.apps.floor:app``, reads the body, one ``RPUSH``, answers 200 (the
  durable floor: no durable design beats it);
* ``naive``: ``bench.apps.naive:app``, ``stripe.Webhook.construct_event`` + one
  ``rq.Queue.enqueue`` per webhook;
* ``bridge``: ``bridge.intake:create_app()``, verified + deduplicated + made durable.

Then, for each round (the order rotates every round), each app gets the same load from
``wrk`` for the same time: signed ~3 KB ``checkout.session.completed`` events, each with
a distinct event id and a fresh timestamp, pre-generated into a file that wrk's Lua
reads (``bench/intake.lua``). Redis is flushed before every measurement. It reports
req/s, p50/p99 latency (at saturation with ``--connections``; and, unless
``--light-duration 0``, with one connection: the ack latency of an unloaded server),
ratios measured side by side in each round, and their medians over rounds.

Results: a table on stdout, ``bench/results/intake-<date>.json`` and a markdown snippet
(``.md`` next to it) for ``bench/README.md``. Everything it starts is stopped by PID in
``finally`` blocks. Needs ``wrk`` (``apt-get install -y wrk``). Exit status: 0 when
bridge meets the bars of the baselines measured (>= 0.9x floor, >= 0.5x trivial,
>= 2x naive), 1 when it does not.

Each line also shows CPU milliseconds per answered request of the app's gunicorn
workers and of redis-server (from /proc), which says where the machine's two cores go.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # run as a script: make ``bridge`` importable from the tree
    sys.path.insert(0, str(REPO))

from bridge import keys, metrics  # noqa: E402
from bridge.devtools.redis_server import RedisServer, free_port  # noqa: E402
from bridge.providers.stripe import signature_header  # noqa: E402

FIXTURE = Path(
    os.environ.get(
        "BENCH_STRIPE_FIXTURE",
        str(
            Path(__file__).resolve().parent.parent.parent
            / "shared/fixtures/payloads/stripe__checkout.session.completed.json"
        ),
    )
)
LUA = Path(__file__).resolve().parent / "intake.lua"
RESULTS = Path(__file__).resolve().parent / "results"
SOURCE = "stripe"
PATH = f"/webhooks/{SOURCE}"
SECRET = "whsec_bench_" + "0" * 32
ID_PLACEHOLDER = "evt___BENCH_EVENT_ID__"
NAIVE_QUEUE = "naive"

#: Bars for bridge ÷ each baseline (BRIEF.md section 3; issue 2).
BARS = {"floor": 0.9, "trivial": 0.5, "naive": 2.0}

#: The gunicorn settings module the Procfile and the image run.
GUNICORN_CONF = "python:bridge.gunicorn_conf"

#: Hard limits, whatever the arguments say.
MAX_ROUNDS = 10
MAX_DURATION = 60.0
MAX_REQUESTS_PER_FILE = 400_000


@dataclass(frozen=True)
class Target:
    """One app under test."""

    name: str
    app: str
    #: "once": every request must be a new event id; "cycle": the file may repeat.
    mode: str
    #: "new" (distinct ids) or "duplicate" (one id, already accepted).
    ids: str = "new"


TARGETS = {
    "trivial": Target("trivial", "bench.apps.trivial:app", "cycle"),
    "naive": Target("naive", "bench.apps.naive:app", "cycle"),
    "floor": Target("floor", "bench.apps.floor:app", "cycle"),
    "bridge": Target("bridge", "bridge.intake:create_app()", "once"),
    "bridge-dup": Target("bridge-dup", "bridge.intake:create_app()", "cycle", ids="duplicate"),
}


@dataclass
class Measurement:
    """One wrk run against one target."""

    target: str
    round: int
    load: str  # "saturated" or "light"
    connections: int
    duration_s: float
    requests: int
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    error_detail: dict[str, int]
    exhausted: int
    #: CPU milliseconds per answered request, of the app's workers and of redis-server.
    cpu_ms_per_request: dict[str, float] = field(default_factory=dict)
    redis: dict[str, int] = field(default_factory=dict)


# --------------------------------------------------------------------------- inputs


def body_template(size: int) -> str:
    """The fixture event, pretty-printed as Stripe sends it, padded to ``size`` bytes
    with realistic metadata, with a placeholder for its id and ``created`` set to now."""
    event: dict[str, Any] = json.loads(FIXTURE.read_text())
    event["id"] = ID_PLACEHOLDER
    event["created"] = int(time.time())
    event["livemode"] = False
    obj = event["data"]["object"]
    metadata: dict[str, str] = dict(obj.get("metadata") or {})
    obj["metadata"] = metadata
    n = 0
    while len(json.dumps(event, indent=2).encode()) < size and n < 200:
        metadata[f"cart_item_{n:02d}"] = f"sku_{hashlib.sha256(str(n).encode()).hexdigest()[:20]}"
        n += 1
    return json.dumps(event, indent=2)


def write_requests(path: Path, template: str, count: int, *, duplicate_of: str | None) -> None:
    """Write ``count`` signed requests: distinct ids (or all ``duplicate_of``), signed now."""
    count = min(count, MAX_REQUESTS_PER_FILE)
    tag = secrets.token_hex(4)
    now = int(time.time())
    with path.open("wb") as out:
        for i in range(count):
            event_id = duplicate_of or f"evt_{tag}{i:016d}"
            body = template.replace(ID_PLACEHOLDER, event_id).encode()
            header = signature_header(body, SECRET, now)
            out.write(f"{header}\n{len(body)}\n".encode())
            out.write(body)


# --------------------------------------------------------------------------- processes


@dataclass(frozen=True)
class GunicornSettings:
    """The gunicorn flags shared by every target."""

    workers: int
    worker_class: str
    threads: int

    def args(self) -> list[str]:
        if self.worker_class == "conf":  # the shipped settings, as the Procfile runs them
            args = ["-c", GUNICORN_CONF, "-w", str(self.workers), "--backlog", "2048"]
        else:
            args = ["-w", str(self.workers), "-k", self.worker_class, "--backlog", "2048"]
        if self.threads:  # gthread, or overriding the shipped settings' thread count
            args += ["--threads", str(self.threads)]
        if Path("/dev/shm").is_dir():
            args += ["--worker-tmp-dir", "/dev/shm"]
        return args

    def label(self) -> str:
        if self.worker_class == "conf":
            from bridge import gunicorn_conf

            threads = self.threads or gunicorn_conf.threads
            return (
                f"-c {GUNICORN_CONF} -w {self.workers}"
                + (f" --threads {self.threads}" if self.threads else "")
                + f" (= -k {gunicorn_conf.worker_class} --threads {threads})"
            )
        threads = f" --threads {self.threads}" if self.worker_class == "gthread" else ""
        return f"-w {self.workers} -k {self.worker_class}{threads}"


def mapping_secrets_env() -> dict[str, str]:
    """Placeholder values for the other sources' ``${VAR}`` secrets in ``mappings/``
    (they must be set for the app to boot; the benchmark only posts to ``stripe``)."""
    names: set[str] = set()
    for path in (REPO / "mappings").glob("*.yaml"):
        names.update(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", path.read_text()))
    placeholder = "whsec_" + base64.b64encode(b"bench-placeholder-secret").decode()
    return {name: placeholder for name in sorted(names)}


def start_gunicorn(
    app: str, port: int, settings: GunicornSettings, env: dict[str, str], log: Path
) -> subprocess.Popen[bytes]:
    """Start gunicorn in its own process group and wait until it answers."""
    gunicorn = Path(sys.executable).parent / "gunicorn"
    cmd = [
        str(gunicorn) if gunicorn.exists() else "gunicorn",
        *settings.args(),
        "-b",
        f"127.0.0.1:{port}",
        "--chdir",
        str(REPO),
        "--log-level",
        "warning",
        "--no-control-socket",
        app,
    ]
    with log.open("ab") as err:
        proc = subprocess.Popen(
            cmd, env=env, stdin=subprocess.DEVNULL, stdout=err, stderr=err, start_new_session=True
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = log.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"gunicorn {app} exited ({proc.returncode}):\n{tail}")
        with contextlib.suppress(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/", timeout=1)
            return proc
        time.sleep(0.1)
    stop(proc)
    raise RuntimeError(f"gunicorn {app} did not answer within 30 s; see {log}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    """Stop a process we started (SIGTERM, then SIGKILL to its own process group)."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # the group we created for it
        proc.wait(timeout=5)


def run_wrk(
    port: int, requests_file: Path, mode: str, *, duration: float, connections: int, threads: int
) -> dict[str, Any]:
    """One wrk run; the numbers printed by ``intake.lua``'s ``done()``."""
    threads = max(1, min(threads, connections))
    cmd = [
        "wrk",
        "-t",
        str(threads),
        "-c",
        str(connections),
        "-d",
        f"{duration:g}s",
        "--timeout",
        "10s",
        "-s",
        str(LUA),
        f"http://127.0.0.1:{port}",
        "--",
        str(requests_file),
        PATH,
        mode,
        str(threads),
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 60, check=False)
    for line in out.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            result: dict[str, Any] = json.loads(line.removeprefix("BENCH_JSON "))
            return result
    raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr.strip() or out.stdout}")


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU time that ``pids`` have used so far (from /proc)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError, IndexError, ValueError):
            # Fields after the ")" that ends the command name: utime, stime are 12, 13.
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (gunicorn's workers, for an arbiter)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(c) for c in text.split()]


def reset_redis(redis: Redis) -> None:
    """FLUSHDB and compact the append-only file, so nothing grows between runs."""
    redis.flushdb()
    with contextlib.suppress(Exception):  # "already in progress" is fine
        redis.bgrewriteaof()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        info = redis.info("persistence")
        if not info.get("aof_rewrite_in_progress") and not info.get("aof_rewrite_scheduled"):
            return
        time.sleep(0.05)


def redis_counts(redis: Redis, target: Target) -> dict[str, int]:
    """What the target left in Redis: proof that the work was really done."""
    if target.name == "naive":
        return {"queued_jobs": int(redis.llen(f"rq:queue:{NAIVE_QUEUE}"))}
    if target.name == "floor":
        return {"pushed": int(redis.llen("floor:events"))}
    if target.name.startswith("bridge"):
        raw = redis.hgetall(keys.METRICS)
        counts = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}

        def get(counter: metrics.Counter) -> int:
            return counts.get(counter.field(source=SOURCE), 0)

        return {
            "received": get(metrics.WEBHOOKS_RECEIVED),
            "accepted": get(metrics.WEBHOOKS_ACCEPTED),
            "duplicate": get(metrics.WEBHOOKS_DUPLICATE),
            "inbox": int(redis.llen(keys.INBOX)),
        }
    return {}


# --------------------------------------------------------------------------- checks


def signed(template: str, event_id: str) -> tuple[bytes, dict[str, str]]:
    """One signed request (body, headers)."""
    body = template.replace(ID_PLACEHOLDER, event_id).encode()
    headers = {
        "Content-Type": "application/json; charset=utf-8",
        "Stripe-Signature": signature_header(body, SECRET, int(time.time())),
    }
    return body, headers


def preflight(ports: dict[str, int], template: str, redis: Redis) -> dict[str, Any]:
    """One request to each app: each must answer 200, bridge "accepted" then "duplicate"."""
    answers: dict[str, Any] = {}
    event_id = f"evt_preflight{secrets.token_hex(6)}"
    body, headers = signed(template, event_id)
    for name, port in ports.items():
        if name == "bridge-dup":
            continue
        reply = httpx.post(f"http://127.0.0.1:{port}{PATH}", content=body, headers=headers)
        answers[name] = {"status": reply.status_code, "json": reply.json()}
        if reply.status_code != 200:
            raise RuntimeError(f"{name} answered {reply.status_code}: {reply.text}")
    if "bridge" in ports:
        if answers["bridge"]["json"].get("status") != "accepted":
            raise RuntimeError(f"bridge did not accept the event: {answers['bridge']}")
        _, headers = signed(template, event_id)
        again = httpx.post(
            f"http://127.0.0.1:{ports['bridge']}{PATH}", content=body, headers=headers
        )
        answers["bridge_again"] = {"status": again.status_code, "json": again.json()}
        if again.json().get("status") != "duplicate":
            raise RuntimeError(f"bridge did not deduplicate: {again.text}")
    reset_redis(redis)
    return answers


# --------------------------------------------------------------------------- report


def machine() -> dict[str, Any]:
    """nproc, CPU model, Python, kernel, tool versions."""
    model = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True, check=False)
    versions = {}
    for pkg in ("flask", "gunicorn", "rq", "redis", "hiredis", "stripe", "werkzeug"):
        with contextlib.suppress(PackageNotFoundError):
            versions[pkg] = version(pkg)
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "wrk": (wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else "",
        "packages": versions,
        "loadavg_at_start": os.getloadavg(),
    }


def summarise(measurements: list[Measurement], load: str, names: Sequence[str]) -> dict[str, Any]:
    """Medians per target and per-round ratios of bridge vs the baselines."""
    out: dict[str, Any] = {}
    rows = [m for m in measurements if m.load == load]
    for name in names:
        mine = [m for m in rows if m.target == name]
        if not mine:
            continue
        out[name] = {
            "rps": statistics.median(m.rps for m in mine),
            "p50_ms": statistics.median(m.p50_ms for m in mine),
            "p99_ms": statistics.median(m.p99_ms for m in mine),
            "errors": sum(m.errors for m in mine),
            "exhausted": sum(m.exhausted for m in mine),
            "cpu_ms_app": statistics.median(m.cpu_ms_per_request.get("app", 0) for m in mine),
            "cpu_ms_redis": statistics.median(m.cpu_ms_per_request.get("redis", 0) for m in mine),
            "rounds": len(mine),
        }
    by_round: dict[int, dict[str, float]] = {}
    for m in rows:
        by_round.setdefault(m.round, {})[m.target] = m.rps
    for name in names:
        if name not in out:
            continue
        for base in BARS:
            ratios = [r[name] / r[base] for r in by_round.values() if name in r and r.get(base)]
            if ratios:
                out[name][f"vs_{base}_per_round"] = ratios
                out[name][f"vs_{base}"] = statistics.median(ratios)
    return out


def table(summary: dict[str, Any], title: str) -> str:
    """A plain-text table of a summary."""
    lines = [
        title,
        f"{'app':<11} {'req/s':>8} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} "
        f"{'vs floor':>9} {'vs trivial':>11} {'vs naive':>9} {'CPU ms/req app+redis':>21}",
    ]
    for name, s in summary.items():
        lines.append(
            f"{name:<11} {s['rps']:>8.0f} {s['p50_ms']:>8.2f} {s['p99_ms']:>8.2f} "
            f"{s['errors']:>7d} {s.get('vs_floor', float('nan')):>8.2f}x "
            f"{s.get('vs_trivial', float('nan')):>10.2f}x "
            f"{s.get('vs_naive', float('nan')):>8.2f}x "
            f"{s['cpu_ms_app']:>12.3f} + {s['cpu_ms_redis']:.3f}"
        )
    return "\n".join(lines)


def markdown(result: dict[str, Any]) -> str:
    """The snippet for bench/README.md."""
    m = result["machine"]
    a = result["args"]
    lines = [
        f"### Intake, {result['date']}",
        "",
        f"Machine: {m['nproc']} CPUs ({m['cpu_model']}), shared; Python {m['python']}, "
        f"Linux {m['kernel']}, {m['wrk']}.",
        f"gunicorn `{result['gunicorn']}` for all apps; bridge log level "
        f"`{a['bridge_log_level']}`; load: wrk, {a['connections']} connections for "
        f"{a['duration']:g} s per app per round, {a['rounds']} rounds (order rotated), "
        f"~{result['body_bytes']} B signed `checkout.session.completed` bodies, a distinct "
        "event id per bridge request; Redis (append-only, everysec) flushed before each run.",
        "",
        f"Command: `{result['command']}`",
        "",
        "| app | req/s | p50 ms | p99 ms | errors | bridge ÷ app | CPU ms/req (app + redis) |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    sat = result["summary"]["saturated"]
    bridge = sat.get("bridge", {})
    for name, s in sat.items():
        if name == "bridge":
            ratio = "—"
        elif name in BARS:
            per_round = ", ".join(f"{r:.2f}" for r in bridge.get(f"vs_{name}_per_round", []))
            ratio = f"**{bridge.get('vs_' + name, float('nan')):.2f}x** ({per_round})"
        else:
            ratio = ""
        lines.append(
            f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} | "
            f"{s['errors']} | {ratio} | {s['cpu_ms_app']:.3f} + {s['cpu_ms_redis']:.3f} |"
        )
    light = result["summary"].get("light")
    if light:
        lines += [
            "",
            "Ack latency with one connection (unloaded server):",
            "",
            "| app | req/s | p50 ms | p99 ms |",
            "|---|---:|---:|---:|",
        ]
        for name, s in light.items():
            lines.append(f"| {name} | {s['rps']:.0f} | {s['p50_ms']:.2f} | {s['p99_ms']:.2f} |")
    bars = result["bars"]
    met = [
        f"≥ {BARS[b]:g}x {b} ({'met' if bars[f'vs_{b}_ok'] else 'NOT met'})"
        for b in BARS
        if bars.get(f"vs_{b}") is not None
    ]
    lines += ["", "Medians of per-round ratios (rounds in brackets). Bars: " + ", ".join(met) + "."]
    return "\n".join(lines)


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    p.add_argument("--rounds", type=int, default=3, help="rounds of every app (max 10)")
    p.add_argument("--duration", type=float, default=10.0, help="seconds per app per round")
    p.add_argument("--connections", type=int, default=16, help="wrk connections (saturated)")
    p.add_argument("--wrk-threads", type=int, default=1, help="wrk threads (1 leaves CPU)")
    p.add_argument(
        "--light-duration",
        type=float,
        default=3.0,
        help="seconds of 1-connection latency runs per app per round (0: skip)",
    )
    p.add_argument(
        "--workers", type=int, default=4, help="gunicorn -w (4 = 2 x cores, the Dockerfile default)"
    )
    p.add_argument(
        "--worker-class",
        default="conf",
        choices=["conf", "sync", "gthread"],
        help=f"conf (default): the shipped settings, -c {GUNICORN_CONF}",
    )
    p.add_argument(
        "--targets",
        default="trivial,naive,floor,bridge",
        help="comma-separated apps to measure (trivial, naive, floor, bridge)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="gunicorn --threads (gthread: default 4; conf: the module's unless given)",
    )
    p.add_argument(
        "--bridge-log-level", default="warning", choices=["debug", "info", "warning", "error"]
    )
    p.add_argument(
        "--duplicates",
        action="store_true",
        help="also measure bridge's duplicate path (all one, already seen, id)",
    )
    p.add_argument("--body-bytes", type=int, default=3072, help="approximate body size")
    p.add_argument("--max-seconds", type=float, default=900, help="stop starting new runs after")
    p.add_argument("--label", default="", help="suffix for the results file name")
    args = p.parse_args(argv)
    if not 1 <= args.rounds <= MAX_ROUNDS:
        p.error(f"--rounds must be 1..{MAX_ROUNDS}")
    if not 1 <= args.duration <= MAX_DURATION or not 0 <= args.light_duration <= MAX_DURATION:
        p.error(f"durations must be at most {MAX_DURATION:g} s")
    if not 1 <= args.connections <= 1024:
        p.error("--connections must be 1..1024")
    return args


@contextlib.contextmanager
def servers(
    names: Sequence[str], settings: GunicornSettings, env: dict[str, str], work: Path
) -> Iterator[tuple[dict[str, int], dict[int, int]]]:
    """Start one gunicorn per app (bridge-dup shares bridge's) and stop them all after.

    Yields the port of each app and the arbiter PID on each port (for CPU accounting).
    """
    procs: list[subprocess.Popen[bytes]] = []
    ports: dict[str, int] = {}
    arbiters: dict[int, int] = {}
    try:
        for name in names:
            target = TARGETS[name]
            if name == "bridge-dup" and "bridge" in ports:
                ports[name] = ports["bridge"]
                continue
            port = free_port()
            proc = start_gunicorn(target.app, port, settings, env, work / f"{name}.log")
            procs.append(proc)
            ports[name] = port
            arbiters[port] = proc.pid
        yield ports, arbiters
    finally:
        for proc in procs:
            stop(proc)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("wrk is needed: apt-get update && apt-get install -y wrk", file=sys.stderr)
        return 2
    started = time.monotonic()
    names = [n for n in args.targets.split(",") if n in TARGETS and n != "bridge-dup"]
    names += ["bridge-dup"] if args.duplicates and "bridge" in names else []
    threads = args.threads or (4 if args.worker_class == "gthread" else 0)
    settings = GunicornSettings(args.workers, args.worker_class, threads)
    template = body_template(args.body_bytes)
    body_bytes = len(template.replace(ID_PLACEHOLDER, "evt_" + "0" * 24).encode())
    measurements: list[Measurement] = []

    with tempfile.TemporaryDirectory(prefix="bench-intake-") as tmp:
        work = Path(tmp)
        server = RedisServer(work / "redis").start()
        try:
            redis = Redis.from_url(server.url)
            redis_pid = server.process.pid if server.process else 0
            env = {
                **mapping_secrets_env(),
                **os.environ,
                "REDIS_URL": server.url,
                "BRIDGE_MAPPINGS_DIR": str(REPO / "mappings"),
                "STRIPE_WEBHOOK_SECRET": SECRET,
                "BRIDGE_LOG_LEVEL": args.bridge_log_level,
                "BRIDGE_LOG_FORMAT": "json",
                "NAIVE_QUEUE": NAIVE_QUEUE,
                "PYTHONPATH": os.pathsep.join(
                    p for p in (str(REPO), os.environ.get("PYTHONPATH", "")) if p
                ),
            }
            with servers(names, settings, env, work) as (ports, arbiters):
                answers = preflight(ports, template, redis)
                print(
                    f"gunicorn {settings.label()}; body {body_bytes} B; preflight ok: "
                    f"{json.dumps(answers['bridge']['json'])}",
                    flush=True,
                )
                dup_id = f"evt_dup{secrets.token_hex(8)}"
                requests_file = work / "requests.bin"

                def prepare(target: Target, count: int) -> None:
                    """Flush Redis and write a fresh request file for ``target``."""
                    reset_redis(redis)
                    if target.ids == "duplicate":
                        body, headers = signed(template, dup_id)
                        httpx.post(
                            f"http://127.0.0.1:{ports[target.name]}{PATH}",
                            content=body,
                            headers=headers,
                        ).raise_for_status()
                        write_requests(requests_file, template, 2000, duplicate_of=dup_id)
                    else:
                        write_requests(requests_file, template, count, duplicate_of=None)

                # Warm-up: 2 s each; also sizes the request files (rate x margin).
                rate: dict[str, float] = {}
                for name in names:
                    prepare(TARGETS[name], 5000)
                    w = run_wrk(
                        ports[name],
                        requests_file,
                        "cycle",
                        duration=2,
                        connections=args.connections,
                        threads=args.wrk_threads,
                    )
                    rate[name] = w["requests"] / (w["duration_us"] / 1e6)
                    print(f"warm-up {name}: {rate[name]:.0f} req/s", flush=True)

                loads = [("saturated", args.connections, args.duration)]
                if args.light_duration > 0:
                    loads.append(("light", 1, args.light_duration))
                for rnd in range(args.rounds):
                    order = names[rnd % len(names) :] + names[: rnd % len(names)]
                    for load, conns, duration in loads:
                        for name in order:
                            if time.monotonic() - started > args.max_seconds:
                                print("time budget spent; stopping early", flush=True)
                                break
                            target = TARGETS[name]
                            prepare(target, int(rate[name] * 2.0 * duration) + 2000)
                            workers = children(arbiters[ports[name]])
                            cpu_app = cpu_seconds(workers)
                            cpu_redis = cpu_seconds([redis_pid])
                            w = run_wrk(
                                ports[name],
                                requests_file,
                                target.mode,
                                duration=duration,
                                connections=conns,
                                threads=args.wrk_threads,
                            )
                            seconds = w["duration_us"] / 1e6
                            lat = w["latency_us"]
                            m = Measurement(
                                target=name,
                                round=rnd + 1,
                                load=load,
                                connections=conns,
                                duration_s=seconds,
                                requests=w["requests"],
                                rps=w["requests"] / seconds,
                                p50_ms=lat["p50"] / 1000,
                                p90_ms=lat["p90"] / 1000,
                                p99_ms=lat["p99"] / 1000,
                                max_ms=lat["max"] / 1000,
                                errors=sum(w["errors"].values()),
                                error_detail=w["errors"],
                                exhausted=w["exhausted"],
                                cpu_ms_per_request={
                                    "app": round(
                                        (cpu_seconds(workers) - cpu_app) * 1e3 / w["requests"], 4
                                    ),
                                    "redis": round(
                                        (cpu_seconds([redis_pid]) - cpu_redis)
                                        * 1e3
                                        / w["requests"],
                                        4,
                                    ),
                                },
                                redis=redis_counts(redis, target),
                            )
                            measurements.append(m)
                            print(
                                f"round {m.round} {load:<9} {name:<10} {m.rps:8.0f} req/s "
                                f"p50 {m.p50_ms:6.2f} ms p99 {m.p99_ms:6.2f} ms "
                                f"errors {m.errors} cpu/req {m.cpu_ms_per_request} "
                                f"{m.redis or ''}" + (" EXHAUSTED" if m.exhausted else ""),
                                flush=True,
                            )
                reset_redis(redis)
        finally:
            server.stop()

    summary = {load: summarise(measurements, load, names) for load in ("saturated", "light")}
    summary = {k: v for k, v in summary.items() if v}
    bridge = summary["saturated"].get("bridge", {})
    now = dt.datetime.now(dt.UTC)
    result: dict[str, Any] = {
        "date": now.strftime("%Y-%m-%d %H:%M UTC"),
        "command": " ".join([".venv/bin/python", "bench/bench_intake.py", *(argv or sys.argv[1:])]),
        "machine": machine(),
        "gunicorn": settings.label(),
        "args": vars(args),
        "body_bytes": body_bytes,
        "summary": summary,
        "bars": {
            **{f"vs_{b}": bridge.get(f"vs_{b}") for b in BARS},
            **{f"vs_{b}_ok": (bridge.get(f"vs_{b}") or 0) >= bar for b, bar in BARS.items()},
        },
        "measurements": [asdict(m) for m in measurements],
        "elapsed_s": round(time.monotonic() - started, 1),
    }
    RESULTS.mkdir(exist_ok=True)
    stem = "intake-" + now.strftime("%Y-%m-%d-%H%M%S") + (f"-{args.label}" if args.label else "")
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    snippet = markdown(result)
    (RESULTS / f"{stem}.md").write_text(snippet + "\n")

    print()
    print(
        table(
            summary["saturated"],
            f"Saturated ({args.connections} connections), "
            f"medians of {args.rounds} rounds; ratios = app ÷ baseline, per round",
        )
    )
    if "light" in summary:
        print()
        print(table(summary["light"], "One connection (ack latency of an unloaded server)"))
    print()
    print(snippet)
    print(f"\nresults: {RESULTS / (stem + '.json')}")
    bars = result["bars"]
    measured = [b for b in BARS if bars[f"vs_{b}"] is not None]
    return 0 if all(bars[f"vs_{b}_ok"] for b in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
