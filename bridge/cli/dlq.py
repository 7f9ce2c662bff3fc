"""``bridge dlq list|show|replay|drop``: inspect and act on the dead-letter store.

Exit codes: 0 done, 1 an entry named does not exist, 2 usage or environment problems
(invalid settings, Redis unreachable) — each a one-line ``error:``, never a traceback.
"""

from __future__ import annotations

import contextlib
from typing import Any

import click
from redis.exceptions import RedisError

from bridge import codec, timefmt
from bridge.cli import settings_or_exit
from bridge.connections import redis_from_settings
from bridge.delivery.deadletter import DeadLetter, DeadLetters
from bridge.settings import redact_url


class _RedisErrorsAreOneLine(click.Group):
    """Every subcommand's Redis failure becomes one line naming REDIS_URL, exit 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except RedisError as exc:
            url = redact_url(settings_or_exit().redis_url)
            click.echo(f"error: cannot use Redis at {url} (REDIS_URL): {exc}", err=True)
            raise SystemExit(2) from None


def _store() -> DeadLetters:
    return DeadLetters(redis_from_settings(settings_or_exit()))


def _not_found(missing: list[str]) -> None:
    """Exit 1 if any named entry did not exist (after acting on the others)."""
    if missing:
        click.echo(f"error: no dead-letter entry {', '.join(missing)}", err=True)
        raise SystemExit(1)


def _what(entry: DeadLetter) -> str:
    if entry.kind == "calls":
        ids = [str(c.get("messageId")) for c in entry.calls]
        head = ", ".join(ids[:2]) + (", ..." if len(ids) > 2 else "")
        return f"{len(ids)} call(s): {head}"
    return f"event {entry.source}/{entry.event_id}"


def _ids(store: DeadLetters, ids: tuple[str, ...], all_: bool) -> list[str]:
    if all_:
        return store.ids()
    if not ids:
        raise click.UsageError("give entry ids, or --all")
    return list(ids)


@click.group(cls=_RedisErrorsAreOneLine)
def dlq() -> None:
    """The dead-letter store: calls and events that could not be delivered."""


@dlq.command("list")
@click.option(
    "--limit",
    type=click.IntRange(min=1),
    default=None,
    help="show at most this many (oldest first; default all)",
)
@click.option("--json", "as_json", is_flag=True, help="one JSON object per line")
def list_(limit: int | None, as_json: bool) -> None:
    """List entries: id, when, kind, reason, what."""
    store = _store()
    count = 0
    for entry_id in store.ids(limit):
        entry = store.get(entry_id)
        if entry is None:
            continue
        count += 1
        when = timefmt.iso8601(entry.at)
        if as_json:
            summary = {
                "id": entry.id,
                "at": when,
                "kind": entry.kind,
                "reason": entry.reason,
                "what": _what(entry),
            }
            click.echo(codec.dumps(summary).decode())
        else:
            click.echo(
                f"{entry.id}  {when}  {entry.kind:<5}  {entry.reason}  [{_what(entry)}]"
            )
    if not as_json:
        click.echo(f"{count} entr{'y' if count == 1 else 'ies'} (of {len(store)})", err=True)


@dlq.command()
@click.argument("entry_id")
def show(entry_id: str) -> None:
    """Print one entry in full (calls or event, reason, the collector's answer)."""
    entry = _store().get(entry_id)
    if entry is None:
        _not_found([entry_id])
        return
    doc = dict(entry.__dict__)
    doc["at"] = timefmt.iso8601(entry.at)
    if entry.event is not None:
        # Not JSON (which may be why it is here): shown as the text it is.
        with contextlib.suppress(ValueError):
            doc["event"] = codec.loads(entry.event)
    # codec: the calls' amounts are Decimals, shown digit for digit.
    click.echo(codec.dumps(doc, indent=True).decode())


@dlq.command()
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="replay every entry")
def replay(entry_ids: tuple[str, ...], all_: bool) -> None:
    """Put entries back for delivery: calls to the outbox, events to the inbox (they
    are mapped again with the current mapping files: restart workers after a fix)."""
    store = _store()
    done = 0
    missing: list[str] = []
    for entry_id in _ids(store, entry_ids, all_):
        entry = store.replay(entry_id)
        if entry is None:
            missing.append(entry_id)
            continue
        done += 1
        click.echo(f"{entry_id}: replayed ({_what(entry)})")
    click.echo(f"{done} replayed", err=True)
    if not all_:  # with --all, an entry another operator just replayed is no error
        _not_found(missing)


@dlq.command()
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="drop every entry")
@click.confirmation_option(prompt="Drop these entries for good?")
def drop(entry_ids: tuple[str, ...], all_: bool) -> None:
    """Delete entries for good."""
    store = _store()
    targets = _ids(store, entry_ids, all_)
    missing = [i for i in targets if not store.drop(i)]
    click.echo(f"{len(targets) - len(missing)} dropped", err=True)
    if not all_:  # with --all, an entry another operator just removed is no error
        _not_found(missing)
