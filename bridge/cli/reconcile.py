"""``bridge reconcile SOURCE``: run one reconcile now, or list what Stripe did not deliver.

The workers run reconcile every ``BRIDGE_RECONCILE_INTERVAL`` seconds by themselves (see
bridge/reconcile.py); this command is for an operator who wants the answer now.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime

import click
import orjson

from bridge import log
from bridge import reconcile as reconciling
from bridge.catalogue import Catalogue
from bridge.cli import settings_or_exit
from bridge.connections import redis_from_settings
from bridge.errors import ConfigError, ProviderApiError


@click.command()
@click.argument("source")
@click.option(
    "--undelivered",
    is_flag=True,
    help="Only list events Stripe reported it failed to deliver (as recorded by the runs).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
def reconcile(source: str, undelivered: bool, as_json: bool) -> None:
    """Feed SOURCE's recent events intake never received; list undelivered ones."""
    settings = settings_or_exit()
    log.configure(settings)  # log lines (retries, reconciled events) go to stderr
    redis = redis_from_settings(settings)
    if undelivered:
        rows = reconciling.undelivered(redis, source)
        if as_json:
            click.echo(orjson.dumps([{"id": i, "created": int(c)} for i, c in rows]).decode())
        for event_id, created in [] if as_json else rows:
            when = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            click.echo(f"{when}  {event_id}")
        return
    try:
        catalogue = Catalogue.from_settings(settings, pinned=False)
        result = reconciling.run_for(settings, redis, catalogue, source)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    except ProviderApiError as exc:
        click.echo(f"error: {exc.message}", err=True)
        sys.exit(1)
    if as_json:
        click.echo(orjson.dumps(result.summary()).decode())
        return
    click.echo(
        f"reconcile {source}: listed {result.listed}, reconciled {len(result.reconciled)} "
        f"(never received as webhooks), already received {result.seen}, ignored "
        f"{result.ignored}, undelivered by Stripe {len(result.undelivered)}"
    )
    for event_id in result.reconciled:
        click.echo(f"reconciled {event_id}")
