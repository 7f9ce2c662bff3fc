"""``bridge backfill SOURCE --since 3d``: feed events Stripe still keeps through intake.

Lists ``GET /v1/events`` (newest first, ``created[gte]``/``[lte]``, ``types[]``,
``starting_after``) with ``STRIPE_API_KEY`` (a restricted key with **Events: Read**) and
feeds each event through the webhook's own dedup, inbox, mapping and outbox (see
bridge/backfill.py). Progress goes to stderr after every page; the checkpoint is kept in
Redis, so Ctrl-C (or SIGTERM) and ``--resume`` continue where it stopped.

Exit status: 0 done; 1 the API failed after its retries (the checkpoint is kept: run
again with ``--resume``); 2 refused (window, checkpoint, configuration); 130 interrupted.
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

import click
import orjson

from bridge import log
from bridge.backfill import Backfill, BackfillRefused, Checkpoint, iso, parse_when
from bridge.catalogue import Catalogue
from bridge.cli import settings_or_exit
from bridge.connections import redis_from_settings
from bridge.errors import BridgeError, ConfigError, ProviderApiError
from bridge.intake.store import REDIS_DOWN, EventStore
from bridge.stripe_api import MAX_TYPES, StripeApi


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def _progress(checkpoint: Checkpoint, seconds: float) -> None:
    c = checkpoint.counts
    rate = c.listed / seconds if seconds > 0 else 0.0
    click.echo(
        f"backfill {checkpoint.source}{_whose(checkpoint)}: page {c.pages}, "
        f"listed {c.listed}, new {c.new}, duplicates {c.duplicates}, ignored {c.ignored}, "
        f"{rate:.1f} events/s "
        f"(cursor {checkpoint.cursor})",
        err=True,
    )


@click.command()
@click.argument("source")
@click.option("--since", help="Start of the window: 3d, 12h, 90m, an ISO-8601 time, Unix seconds.")
@click.option("--until", help="End of the window (same forms). [default: now]")
@click.option("--types", help=f"Comma-separated event types to list (at most {MAX_TYPES}).")
@click.option("--account", help="A Connect account (acct_...): list its events (Stripe-Account).")
@click.option("--resume", is_flag=True, help="Continue the unfinished backfill of SOURCE.")
@click.option("--restart", is_flag=True, help="Discard an unfinished backfill and start anew.")
@click.option(
    "--max-pages",
    type=click.IntRange(min=1),
    default=100_000,
    show_default=True,
    help="Stop after this many pages (the checkpoint allows --resume).",
)
@click.option(
    "--page-size",
    type=click.IntRange(1, 100),
    default=100,
    show_default=True,
    help="Events per API request (Stripe's limit).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the final summary as JSON.")
def backfill(
    source: str,
    since: str | None,
    until: str | None,
    types: str | None,
    account: str | None,
    resume: bool,
    restart: bool,
    max_pages: int,
    page_size: int,
    as_json: bool,
) -> None:
    """Feed SOURCE's events from Stripe's Events API through dedup, mapping and delivery."""
    settings = settings_or_exit()
    log.configure(settings)  # log lines (retries, reconciled events) go to stderr
    try:
        entry = Catalogue.from_settings(settings, pinned=False).get(source)
        if entry is None:
            raise BackfillRefused(f"no mapping file for source {source!r}")
        if entry.provider_name != "stripe":
            raise BackfillRefused(
                f"source {source!r} uses provider {entry.provider_name!r}; backfill reads "
                "Stripe's Events API"
            )
        if resume and (since or until or types or restart):
            raise BackfillRefused("--resume continues the saved window; give no other option")
        if not resume and not since:
            raise BackfillRefused("give --since (e.g. --since 3d), or --resume")
        api = StripeApi.from_settings(settings)
        redis = redis_from_settings(settings)
        store = EventStore(redis, settings.dedup_ttl)
        job = Backfill(api, store, entry, redis, on_page=_progress, page_size=page_size)
        # The platform, then each connected account the mapping lists (options.account).
        targets: list[str | None] = (
            [account] if account else [None, *entry.mapping.connect_accounts]
        )
        plans: list[Checkpoint] = []
        if resume:
            plans = [c for t in targets if (c := job.unfinished(t)) is not None]
            if not plans:
                job.resume(account)  # raises: nothing to resume
            for checkpoint in plans:
                click.echo(
                    f"resuming backfill of {source}{_whose(checkpoint)} ({iso(checkpoint.since)}"
                    f" .. {iso(checkpoint.until)}) after {checkpoint.cursor}",
                    err=True,
                )
        else:
            now = job.clock()
            type_list = [t.strip() for t in (types or "").split(",") if t.strip()]
            if len(type_list) > MAX_TYPES:
                raise BackfillRefused(f"--types: Stripe lists at most {MAX_TYPES} types at once")
            for target in targets:
                checkpoint = job.plan(
                    since=parse_when(since or "", now),
                    until=parse_when(until, now) if until else None,
                    types=type_list,
                    account=target,
                    dedup_ttl=settings.dedup_ttl,
                    restart=restart,
                )
                plans.append(checkpoint)
                click.echo(
                    f"backfill {source}{_whose(checkpoint)}: {iso(checkpoint.since)} .. "
                    f"{iso(checkpoint.until)}"
                    + (f", types {', '.join(type_list)}" if type_list else ""),
                    err=True,
                )
    except (BackfillRefused, ConfigError) as exc:
        for problem in getattr(exc, "problems", None) or [exc.message]:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    except REDIS_DOWN as exc:
        click.echo(f"error: Redis unreachable: {type(exc).__name__}", err=True)
        sys.exit(2)

    for checkpoint in plans:
        _run_one(job, checkpoint, max_pages, as_json)


def _whose(checkpoint: Checkpoint) -> str:
    return f" (account {checkpoint.account})" if checkpoint.account else ""


def _run_one(job: Backfill, checkpoint: Checkpoint, max_pages: int, as_json: bool) -> None:
    """Run one checkpoint to its end and print its summary; exit on failure."""
    source = job.source.name
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        checkpoint = job.run(checkpoint, max_pages=max_pages)
    except KeyboardInterrupt:
        saved = Checkpoint.load(job.redis, source, checkpoint.account)
        click.echo(
            f"interrupted; checkpoint kept after {saved.cursor if saved else None}: "
            f"run `bridge backfill {source} --resume` to continue",
            err=True,
        )
        sys.exit(130)
    except ProviderApiError as exc:
        click.echo(f"error: {exc.message}", err=True)
        if exc.retryable:
            click.echo(f"checkpoint kept: run `bridge backfill {source} --resume` later", err=True)
        sys.exit(1)
    except BridgeError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    finally:
        signal.signal(signal.SIGTERM, previous)
    c = checkpoint.counts
    summary = {
        "source": source,
        "account": checkpoint.account,
        "since": iso(checkpoint.since),
        "until": iso(checkpoint.until),
        "done": checkpoint.done,
        "cursor": checkpoint.cursor,
        "listed": c.listed,
        "new": c.new,
        "duplicates": c.duplicates,
        "ignored": c.ignored,
        "pages": c.pages,
    }
    if as_json:
        click.echo(orjson.dumps(summary).decode())
    else:
        state = "done" if checkpoint.done else "stopped (--resume continues)"
        click.echo(
            f"backfill {source}{_whose(checkpoint)} {state}: listed {c.listed}, new {c.new}, "
            f"duplicates {c.duplicates}, ignored {c.ignored}"
        )
