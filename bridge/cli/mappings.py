"""``bridge mappings check|test|schema`` and ``bridge preview``: mappings as code.

Settings are built inside each command (never at import). Every failure is a short
message and an exit code: 0 ok, 1 findings or failing cases, 2 usage or environment
problems (unknown source, unreadable payload, unreachable Redis).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, NoReturn

import click
import orjson

from bridge import codec
from bridge.cli import mappings_dir_or_exit, settings_or_exit
from bridge.errors import MappingError
from bridge.settings import Settings, redact_url


def _paths(paths: tuple[Path, ...]) -> tuple[list[Path], Settings]:
    """The paths given, else the catalogue's files: the shipped mappings with the
    operator's folder (BRIDGE_MAPPINGS_DIR) over them."""
    from bridge.catalogue import layer_dirs
    from bridge.mappings.loader import mapping_files

    settings = settings_or_exit()
    if not paths:
        mappings_dir_or_exit(settings)  # a BRIDGE_MAPPINGS_DIR that is set must exist
        return mapping_files(layer_dirs(settings), layered=True), settings
    for path in paths:
        if not path.exists():
            _fail(f"{path}: no such file or folder")
    return list(paths), settings


@click.group()
def mappings() -> None:
    """Lint, test and export the schema of mapping files."""


@mappings.command()
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
def check(paths: tuple[Path, ...]) -> None:
    """Lint mapping files (default: BRIDGE_MAPPINGS_DIR); exit 1 on any finding."""
    from bridge.mappings.lint import check as lint

    targets, settings = _paths(paths)
    result = lint(targets, settings.environ, settings.sources, whole_catalogue=not paths)
    for note in result.notes:
        click.echo(str(note))
    for problem in result.problems:
        click.echo(str(problem))
    if result.problems:
        click.echo(f"{len(result.problems)} problem(s) found", err=True)
        raise SystemExit(1)
    if not result.mappings and not result.test_files:
        click.echo(f"no mapping files in {', '.join(map(str, targets))}", err=True)
        raise SystemExit(1)
    off = f", {len(result.notes)} source(s) off" if result.notes else ""
    click.echo(
        f"OK: {len(result.mappings)} mapping(s), {result.rules} rule(s), "
        f"{len(result.test_files)} test file(s) checked{off}"
    )


@mappings.command(name="test")
@click.argument("paths", nargs=-1, type=click.Path(path_type=Path))
@click.option("-v", "--verbose", is_flag=True, help="List every case, not only failures.")
def test_command(paths: tuple[Path, ...], verbose: bool) -> None:
    """Run mapping test cases (<source>.tests.yaml); exit 1 on any failure."""
    from bridge.mappings.casetests import run

    targets, settings = _paths(paths)
    report = run(targets, settings.environ)
    for problem in report.problems:
        click.echo(str(problem))
    for result in report.results:
        if result.ok and verbose:
            click.echo(f"PASS {result.file}:{result.line}: {result.name}")
        elif not result.ok:
            click.echo(f"FAIL {result.file}:{result.line}: {result.name}")
            for line in result.failures:
                click.echo(f"    {line}")
    for rule in report.untested:
        click.echo(f"note: no case exercises {rule}")
    for skipped in report.skipped:
        click.echo(f"skip {skipped}")
    passed = sum(r.ok for r in report.results)
    failed = len(report.results) - passed
    parts = [f"{passed} passed"]
    if failed:
        parts.append(f"{failed} failed")
    if report.skipped:
        parts.append(f"{len(report.skipped)} skipped")
    if report.problems:
        parts.append(f"{len(report.problems)} error(s)")
    summary = ", ".join(parts) + f" in {report.seconds:.2f}s"
    if not report.results and not report.problems:
        click.echo("no test cases found", err=True)
        raise SystemExit(1)
    click.echo(("=" * 8) + f" {summary} " + ("=" * 8))
    if not report.ok:
        raise SystemExit(1)


@mappings.command()
def schema() -> None:
    """Print the JSON Schema of mapping files (for editors)."""
    from bridge.mappings.spec import json_schema

    click.echo(json.dumps(json_schema(), indent=2))


@click.command()
@click.argument("source")
@click.argument("payload", type=click.Path(path_type=Path))
@click.option("--type", "event_type", help="Event type, when the body does not say (GitHub).")
@click.option("--json", "as_json", is_flag=True, help="Print the calls as a JSON array.")
def preview(source: str, payload: Path, event_type: str | None, as_json: bool) -> None:
    """Print the Segment calls that PAYLOAD.json maps to for SOURCE (nothing is sent)."""
    from redis import Redis
    from redis.exceptions import RedisError

    from bridge.catalogue import Catalogue
    from bridge.envelope import Envelope
    from bridge.errors import ConfigError
    from bridge.mappings.identity import IdentityStore, ReadOnlyIdentityStore

    settings = settings_or_exit()
    mappings_dir_or_exit(settings)  # a BRIDGE_MAPPINGS_DIR that is set must exist
    try:
        # Not pinned: previewing needs no secret (an off source's mapping is compiled).
        catalogue = Catalogue.from_settings(settings, pinned=False)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        _fail("the mappings have problems; run `bridge mappings check`")
    entry = catalogue.get(source)
    if entry is None:
        _fail(
            f"no mapping for source {source!r} "
            f"(known: {', '.join(s.name for s in catalogue) or 'none'})"
        )
    mapping, path = entry.mapping, entry.mapping.path
    try:
        body: Any = orjson.loads(payload.read_bytes())
    except OSError as exc:
        _fail(f"cannot read {payload}: {exc.strerror or exc}")
    except orjson.JSONDecodeError as exc:
        _fail(f"{payload} is not JSON: {exc}")
    if not isinstance(body, dict):
        _fail(f"{payload} is not a JSON object")
    # Where id, type and time come from is the provider's business (body or headers).
    facts = entry.provider.facts(body, {})
    kind = event_type or facts.type
    if not kind:
        _fail("the payload has no event type: give it with --type")
    envelope = Envelope(
        source=source,
        id=facts.id or "preview",
        type=kind,
        time=facts.time if facts.time is not None else time.time(),
        received_at=time.time(),
        body=body,
    )
    if not mapping.handles(kind):
        click.echo(f"ignored: no rule of {path} takes event type {kind!r}")
        return
    redis = Redis.from_url(
        settings.redis_url,
        socket_connect_timeout=settings.redis_timeout,
        socket_timeout=settings.redis_timeout,
    )
    store = ReadOnlyIdentityStore(IdentityStore(redis))
    try:
        calls = mapping.evaluate(envelope, store)
    except MappingError as exc:
        _fail(f"mapping error: {exc}", code=1)
    except RedisError as exc:
        _fail(
            "this event needs an identity lookup (a customer id without a userId), "
            f"but Redis at {redact_url(settings.redis_url)} (REDIS_URL) is unreachable: {exc}"
        )
    finally:
        redis.close()
    if as_json:
        click.echo(_pretty(calls))
        return
    if not calls:
        click.echo(f"{kind}: handled, no calls (no rule's condition holds)")
        return
    for call in calls:
        click.echo(_describe(call))
        click.echo(_pretty(call))


def _describe(call: dict[str, Any]) -> str:
    who = f"userId={call['userId']}" if "userId" in call else f"anonymousId={call['anonymousId']}"
    what = call.get("event") or call.get("name") or call.get("groupId") or ""
    title = f"{call['type']} {what}".strip()
    return click.style(f"# {title}  ({who}, {call['timestamp']})", bold=True)


def _pretty(value: Any) -> str:
    """Calls as indented JSON, amounts digit for digit (the text the worker sends)."""
    try:
        return codec.dumps(value, indent=True).decode()
    except MappingError as exc:
        _fail(f"mapping error: {exc}", code=1)


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(code)
