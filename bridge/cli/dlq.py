"""``bridge dlq list|show|replay|drop``: inspect and act on the dead-letter store."""

from __future__ import annotations

from datetime import UTC, datetime

import click
import orjson

from bridge.cli import settings_or_exit
from bridge.connections import redis_from_settings
from bridge.delivery.deadletter import DeadLetter, DeadLetters


def _store() -> DeadLetters:
    return DeadLetters(redis_from_settings(settings_or_exit()))


def _when(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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


@click.group()
def dlq() -> None:
    """The dead-letter store: calls and events that could not be delivered."""


@dlq.command("list")
@click.option("--limit", type=int, default=None, help="show at most this many (oldest first)")
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
        if as_json:
            summary = {
                "id": entry.id,
                "at": _when(entry.at),
                "kind": entry.kind,
                "reason": entry.reason,
                "what": _what(entry),
            }
            click.echo(orjson.dumps(summary).decode())
        else:
            click.echo(
                f"{entry.id}  {_when(entry.at)}  {entry.kind:<5}  {entry.reason}  [{_what(entry)}]"
            )
    if not as_json:
        click.echo(f"{count} entr{'y' if count == 1 else 'ies'} (of {len(store)})", err=True)


@dlq.command()
@click.argument("entry_id")
def show(entry_id: str) -> None:
    """Print one entry in full (calls or event, reason, the collector's answer)."""
    entry = _store().get(entry_id)
    if entry is None:
        raise click.ClickException(f"no dead-letter entry {entry_id}")
    doc = dict(entry.__dict__)
    doc["at"] = _when(entry.at)
    if entry.event is not None:
        doc["event"] = orjson.loads(entry.event)
    click.echo(orjson.dumps(doc, option=orjson.OPT_INDENT_2).decode())


@dlq.command()
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="replay every entry")
def replay(entry_ids: tuple[str, ...], all_: bool) -> None:
    """Put entries back for delivery: calls to the outbox, events to the inbox (they
    are mapped again with the current mapping files: restart workers after a fix)."""
    store = _store()
    done = 0
    for entry_id in _ids(store, entry_ids, all_):
        entry = store.replay(entry_id)
        if entry is None:
            click.echo(f"{entry_id}: not found", err=True)
            continue
        done += 1
        click.echo(f"{entry_id}: replayed ({_what(entry)})")
    click.echo(f"{done} replayed", err=True)


@dlq.command()
@click.argument("entry_ids", nargs=-1)
@click.option("--all", "all_", is_flag=True, help="drop every entry")
@click.confirmation_option(prompt="Drop these entries for good?")
def drop(entry_ids: tuple[str, ...], all_: bool) -> None:
    """Delete entries for good."""
    store = _store()
    done = sum(store.drop(i) for i in _ids(store, entry_ids, all_))
    click.echo(f"{done} dropped", err=True)
