"""Soak and scale-out: the Procfile's processes under a long, bounded stream of webhooks.

    .venv/bin/python bench/bench_scale.py soak [--events 100000] [--chunk 5000]
        [--web-workers 2] [--workers 2] [--max-seconds 900] [--delivery-wait 300]
    .venv/bin/python bench/bench_scale.py grid [--events 6000] [--web 1,2] [--workers 1,2,3]

Both start a private ``redis-server`` (append-only, as in production), the local
collector (``bridge.devtools.collector``, its own process) and the Procfile's commands from
:mod:`bridge.devtools.processes`: gunicorn with the shipped settings (``--workers`` N) and M
``rq worker`` processes with bridge's worker class. Webhooks are distinct signed Stripe
``checkout.session.completed`` events posted once each by ``wrk`` (bench/e2e.lua).

* ``soak``: ``--events`` webhooks in chunks of ``--chunk``; after each chunk it samples
  the RSS of the web processes (gunicorn arbiter + workers) and of the workers, Redis
  ``used_memory``, the inbox and outbox lengths and calls delivered. After the last
  chunk it waits for delivery, then samples once more: Redis memory should be back to
  the state bridge keeps on purpose (:data:`KEPT`: dedup, once-claims, facts,
  identities; reported in bytes per event) plus RQ's bookkeeping, nothing lost, nothing
  else grown (every other key prefix is reported too). The curves go to
  ``bench/soak.png`` (matplotlib, the ``bench`` extra).
* ``grid``: for every N x M, ``--events`` webhooks; accepted webhooks/s (wrk), sustained
  webhooks/s (first send -> last call at the collector) and CPU ms per webhook of the
  web processes, the workers and redis-server (from /proc): where the machine saturates.

Bounded in count (``--events`` at most 1,000,000) and time (``--max-seconds``; delivery
waits at most ``--delivery-wait`` s, at most 1800). Every process it starts is stopped
by PID in ``finally`` blocks.
Results: a markdown table on stdout and ``bench/results/{soak,grid}-<date>.md`` (+ .json).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import signal
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from redis import Redis

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench import bench_e2e as e2e  # noqa: E402
from bridge import kept, keys  # noqa: E402
from bridge.devtools import processes  # noqa: E402
from bridge.devtools.redis_server import RedisServer, free_port  # noqa: E402

RESULTS = ROOT / "bench" / "results"
MAX_EVENTS = 1_000_000
#: Seconds delivery may take after the last webhook (soak: ``--delivery-wait``).
DELIVERY_WAIT = 300.0
MAX_DELIVERY_WAIT = 1800.0

#: The state bridge keeps on purpose, by key prefix (first two ``:`` parts): what Redis
#: memory should come back to after delivery. The old layouts (``bridge:once``,
#: ``bridge:identity``) are listed with the new ones they are read beside.
KEPT = {
    "dedup": (keys.DEDUP_SHARD_PREFIX.rstrip(":"), "bridge:dedup", "bridge:dedup-signed"),
    "once-claims": (kept.CLAIMS.rstrip(":"), "bridge:once"),
    "facts": (kept.FACTS.rstrip(":"),),
    "identities": (kept.USERS.rstrip(":"), "bridge:identity"),
}
PAGE = os.sysconf("SC_PAGE_SIZE")
TICKS = os.sysconf("SC_CLK_TCK")


def tree(pid: int) -> list[int]:
    """``pid`` and its descendants (from /proc)."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += parents.get(p, [])
    return out


def rss_mb(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            total += int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
        except (OSError, IndexError):
            continue
    return total / 2**20


def cpu_s(pids: Sequence[int]) -> float:
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError):
            continue
    return total / TICKS


class Stack:
    """Redis, the collector, gunicorn (N workers) and M rq workers, stopped in order."""

    def __init__(self, tmp: Path, web_workers: int, workers: int) -> None:
        self.tmp = tmp
        self.server = RedisServer(tmp / "redis").start()
        self.redis = Redis.from_url(self.server.url)
        self.collector_url = f"http://127.0.0.1:{free_port()}"
        self.env = {
            **os.environ,
            "REDIS_URL": self.server.url,
            "SEGMENT_ENDPOINT": self.collector_url,
            "SEGMENT_WRITE_KEY": "bench",
            "STRIPE_WEBHOOK_SECRET": e2e.SECRET,
            "BRIDGE_LOG_LEVEL": "warning",
            "BRIDGE_LOG_FORMAT": "json",
            "PYTHONPATH": str(ROOT),
            "BRIDGE_SOURCES": "stripe",
        }
        self.procs = [
            e2e.spawn(
                [
                    sys.executable,
                    "-m",
                    "bridge.devtools.collector",
                    "--port",
                    self.collector_url.rsplit(":", 1)[1],
                    "--quiet",
                ],
                self.env,
                tmp / "collector.log",
            )
        ]
        self.port = free_port()
        web = processes.web_command(f"127.0.0.1:{self.port}", workers=web_workers)
        self.web = e2e.spawn([str(e2e.BIN / web[0]), *web[1:]], self.env, tmp / "web.log")
        self.procs.append(self.web)
        self.workers = []
        for i in range(workers):
            cmd = processes.worker_command(self.server.url, quiet=True)
            proc = e2e.spawn([str(e2e.BIN / cmd[0]), *cmd[1:]], self.env, tmp / f"w{i}.log")
            self.workers.append(proc)
        self.procs += self.workers
        e2e.wait_http(f"{self.collector_url}/stats")
        e2e.wait_http(f"http://127.0.0.1:{self.port}/healthz")
        e2e.wait_workers(self.redis, workers)

    def sample(self) -> dict[str, float]:
        stats = httpx.get(f"{self.collector_url}/stats?distinct=0", timeout=30).json()
        return {
            "web_rss_mb": rss_mb(tree(self.web.pid)),
            "worker_rss_mb": rss_mb([p for w in self.workers for p in tree(w.pid)]),
            "redis_used_mb": int(self.redis.info("memory")["used_memory"]) / 2**20,
            "inbox": int(self.redis.llen(keys.INBOX)),
            "outbox": int(self.redis.llen(keys.OUTBOX)),
            "calls": int(stats["calls"]),
        }

    def cpu(self) -> dict[str, float]:
        redis_pid = self.server.process.pid if self.server.process else 0
        return {
            "web": cpu_s(tree(self.web.pid)),
            "workers": cpu_s([p for w in self.workers for p in tree(w.pid)]),
            "redis": cpu_s([redis_pid]),
        }

    def dedup_mb(self) -> float:
        total = 0
        for key in self.redis.scan_iter(match=f"{keys.DEDUP_SHARD_PREFIX}*", count=1000):
            total += int(self.redis.memory_usage(key, samples=0) or 0)
        return total / 2**20

    def wait_drained(self, wait: float = DELIVERY_WAIT) -> bool:
        """Wait until Redis holds no event or call waiting (inbox, claims, outbox,
        batches) and the collector's count stopped moving; False if the wait ran out."""
        deadline = time.monotonic() + wait
        last = -1
        while time.monotonic() < deadline:
            pipe = self.redis.pipeline(transaction=False)
            pipe.llen(keys.INBOX).zcard(keys.INBOX_CLAIMS).llen(keys.OUTBOX).hlen(keys.BATCHES)
            waiting = sum(int(v) for v in pipe.execute())
            calls = int(
                httpx.get(f"{self.collector_url}/stats?distinct=0", timeout=30).json()["calls"]
            )
            if waiting == 0 and calls == last:
                return True
            last = calls
            time.sleep(1.0)
        return False

    def delivered(self, ids: set[str]) -> tuple[int, float]:
        """How many of ``ids`` reached the collector, and the last first-arrival time."""
        rows = httpx.get(f"{self.collector_url}/received", timeout=600).json()["received"]
        first: dict[str, float] = {}
        for at, mid in rows:  # as e2e.received, with a timeout for a million calls
            part = next((p for p in str(mid).split(":") if p.startswith(("evt_", "pi_"))), "")
            first.setdefault("evt_" + part.removeprefix("pi_").removeprefix("evt_"), at)
        arrived = [first[i] for i in ids if i in first]
        return len(arrived), max(arrived, default=float("nan"))

    def by_prefix(self) -> dict[str, float]:
        """Redis memory (MB, MEMORY USAGE) by key prefix (first two ``:`` parts)."""
        out: dict[str, float] = {}
        for key in self.redis.scan_iter(count=1000):
            name = ":".join(key.decode(errors="replace").split(":")[:2])
            # samples=0: every field of a large hash counted, not an estimate.
            size = int(self.redis.memory_usage(key, samples=0) or 0)
            out[name] = out.get(name, 0.0) + size / 2**20
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def close(self) -> None:
        e2e.stop(self.workers)
        e2e.stop([self.web])
        e2e.stop([p for p in self.procs if p not in self.workers and p is not self.web])
        self.server.stop()


def soak(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    stack = Stack(tmp, args.web_workers, args.workers)
    samples: list[dict[str, float]] = []
    started = time.monotonic()
    sent = errors = 0
    ids: set[str] = set()
    try:
        base = stack.sample()
        samples.append({"sent": 0, "t": 0.0, **base})
        while sent < args.events and time.monotonic() - started < args.max_seconds:
            n = min(args.chunk, args.events - sent)
            events = e2e.bodies(f"s{sent}x{time.time_ns()}", n)
            got, bad, _, _ = e2e.send_wrk(stack.port, events, tmp, 16, 1)
            ids |= set(got)
            sent += len(got)
            errors += bad
            samples.append({"sent": sent, "t": time.monotonic() - started, **stack.sample()})
            print(json.dumps(samples[-1]), flush=True)
        drained = stack.wait_drained(args.delivery_wait)
        final = {"sent": sent, "t": time.monotonic() - started, **stack.sample()}
        samples.append(final)
        arrived, _ = stack.delivered(ids)
        result = {
            "events": sent,
            "non_2xx": errors,
            "delivered_events": arrived,
            "lost": sent - arrived,
            "drained": drained,
            "dedup_mb": stack.dedup_mb(),
            "by_prefix": (prefixes := stack.by_prefix()),
            "kept": kept_state(prefixes, sent),
            "baseline": base,
            "final": final,
            "samples": samples,
        }
    finally:
        stack.close()
    return result


def kept_state(prefixes: dict[str, float], events: int) -> dict[str, dict[str, float]]:
    """MB and bytes per event of each structure of :data:`KEPT`, and of the rest."""
    out: dict[str, dict[str, float]] = {}
    rest = dict(prefixes)
    for name, names in KEPT.items():
        mb = sum(rest.pop(n, 0.0) for n in names)
        out[name] = {"mb": mb, "bytes_per_event": mb * 2**20 / max(1, events)}
    mb = sum(rest.values())
    out["everything else"] = {"mb": mb, "bytes_per_event": mb * 2**20 / max(1, events)}
    return out


def plot(result: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    x = [s["sent"] / 1000 for s in samples]
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    ax1.plot(x, [s["web_rss_mb"] for s in samples], marker="o", label="web RSS (gunicorn, all)")
    ax1.plot(x, [s["worker_rss_mb"] for s in samples], marker="o", label="workers RSS (all)")
    ax1.plot(x, [s["redis_used_mb"] for s in samples], marker="o", label="Redis used_memory")
    ax1.set_ylabel("MB")
    ax1.legend()
    ax1.grid(alpha=0.3)
    ax2.plot(x, [s["inbox"] for s in samples], marker="o", label="inbox length")
    ax2.plot(x, [s["outbox"] for s in samples], marker="o", label="outbox length")
    ax2.set_xlabel("webhooks sent (thousands); last point: after delivery")
    ax2.set_ylabel("items")
    ax2.legend()
    ax2.grid(alpha=0.3)
    fig.suptitle(
        f"bridge soak: {result['events']:,} webhooks, {result['lost']} lost "
        f"({dt.datetime.now(dt.UTC):%Y-%m-%d})"
    )
    fig.tight_layout()
    fig.savefig(out, dpi=90)


def grid(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    started = time.monotonic()
    for n in [int(v) for v in args.web.split(",")]:
        for m in [int(v) for v in args.workers_grid.split(",")]:
            if time.monotonic() - started > args.max_seconds:
                print("time budget spent; stopping early", flush=True)
                return rows
            stack = Stack(tmp, n, m)
            try:
                events = e2e.bodies(f"g{n}x{m}x{time.time_ns()}", args.events)
                cpu0 = stack.cpu()
                cmds0 = int(stack.redis.info("stats")["total_commands_processed"])
                got, bad, start, end = e2e.send_wrk(stack.port, events, tmp, 16, 1)
                stack.wait_drained()
                cpu1 = stack.cpu()
                cmds = int(stack.redis.info("stats")["total_commands_processed"]) - cmds0
                arrived, done = stack.delivered(set(got))
                row = {
                    "web": n,
                    "workers": m,
                    "events": len(got),
                    "non_2xx": bad,
                    "lost": len(got) - arrived,
                    "accept_rps": len(got) / (end - start),
                    "sustained_rps": len(got) / (done - start),
                    # Commands Redis ran (a script counts once), idle sweeps included.
                    "redis_commands": cmds / len(got),
                    **{
                        f"cpu_ms_{k}": (cpu1[k] - cpu0[k]) / len(got) * 1000
                        for k in ("web", "workers", "redis")
                    },
                }
            finally:
                stack.close()
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    sub = p.add_subparsers(dest="mode", required=True)
    s = sub.add_parser("soak")
    s.add_argument("--events", type=int, default=100_000)
    s.add_argument("--chunk", type=int, default=5_000)
    s.add_argument("--web-workers", type=int, default=2)
    s.add_argument("--workers", type=int, default=2)
    s.add_argument("--max-seconds", type=float, default=900)
    s.add_argument("--delivery-wait", type=float, default=DELIVERY_WAIT)
    g = sub.add_parser("grid")
    g.add_argument("--events", type=int, default=6_000)
    g.add_argument("--web", default="1,2")
    g.add_argument("--workers", dest="workers_grid", default="1,2,3")
    g.add_argument("--max-seconds", type=float, default=900)
    args = p.parse_args(argv)
    if not 1_000 <= args.events <= MAX_EVENTS:
        p.error(f"--events must be 1000..{MAX_EVENTS}")
    if args.mode == "soak" and not 0 < args.delivery_wait <= MAX_DELIVERY_WAIT:
        p.error(f"--delivery-wait must be 0..{MAX_DELIVERY_WAIT:.0f}")
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    stamp = dt.datetime.now(dt.UTC)
    head = (
        f"{stamp:%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs (shared), Python "
        f"{platform.python_version()}; command: `.venv/bin/python bench/bench_scale.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}`"
    )
    RESULTS.mkdir(exist_ok=True)
    name = f"{args.mode}-{stamp:%Y-%m-%d-%H%M%S}"
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        if args.mode == "soak":
            result = soak(args, Path(tmp))
            plot(result, ROOT / "bench" / "soak.png")
            first, last = result["samples"][1], result["final"]
            base = result["baseline"]
            lines = [
                f"### Soak, {head}",
                "",
                f"{result['events']:,} webhooks (gunicorn -w {args.web_workers}, "
                f"{args.workers} rq workers), {result['non_2xx']} non-2xx, "
                f"{result['lost']} lost; plot: bench/soak.png",
                "",
                "| | web RSS MB | workers RSS MB | Redis used MB | inbox | outbox |",
                "|---|---:|---:|---:|---:|---:|",
                *(
                    f"| {label} | {r['web_rss_mb']:.1f} | {r['worker_rss_mb']:.1f} | "
                    f"{r['redis_used_mb']:.1f} | {r['inbox']} | {r['outbox']} |"
                    for label, r in (
                        ("before", base),
                        (f"after {first['sent']:,}", first),
                        (f"after {result['events']:,}, delivered", last),
                    )
                ),
                "",
                f"Dedup state at the end: {result['dedup_mb']:.2f} MB "
                f"({result['dedup_mb'] * 2**20 / max(1, result['events']):.1f} B per event). "
                "Redis keys by prefix at the end (MB): "
                + ", ".join(f"`{k}` {v:.2f}" for k, v in list(result["by_prefix"].items())[:12]),
                "",
                "Kept state at the end (`MEMORY USAGE`, old and new layouts together):",
                "",
                "| structure | key prefixes | MB | bytes per event |",
                "|---|---|---:|---:|",
                *(
                    f"| {name} | {', '.join(f'`{n}`' for n in KEPT.get(name, ('(rest)',)))} "
                    f"| {v['mb']:.2f} | {v['bytes_per_event']:.1f} |"
                    for name, v in result["kept"].items()
                ),
            ]
            data: Any = result
        else:
            rows = grid(args, Path(tmp))
            lines = [
                f"### Scale-out N x M, {head}",
                "",
                "| web (gunicorn -w) | rq workers | accepted/s | sustained/s | "
                "CPU ms/webhook web + workers + redis | Redis commands/webhook |",
                "|---:|---:|---:|---:|---|---:|",
                *(
                    f"| {r['web']} | {r['workers']} | {r['accept_rps']:.0f} | "
                    f"{r['sustained_rps']:.0f} | {r['cpu_ms_web']:.2f} + "
                    f"{r['cpu_ms_workers']:.2f} + {r['cpu_ms_redis']:.2f} | "
                    f"{r['redis_commands']:.1f} |"
                    for r in rows
                ),
            ]
            data = rows
    text = "\n".join(lines) + "\n"
    print(text)
    (RESULTS / f"{name}.md").write_text(text)
    (RESULTS / f"{name}.json").write_text(json.dumps(data, indent=2, default=str))
    print(f"results: bench/results/{name}.md")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
