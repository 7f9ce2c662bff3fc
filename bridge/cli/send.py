"""``bridge send SOURCE PAYLOAD.json``: sign a payload as the provider would and POST it.

For trying a deployment (or ``bridge dev``) end to end without the provider. The secret
is the source's first configured secret, read from the environment exactly as the web
process reads it; the source must be on. Signing is the provider plugin's own.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import httpx
import orjson

from bridge.catalogue import Catalogue
from bridge.errors import BridgeError
from bridge.settings import Settings


@click.command()
@click.argument("source")
@click.argument("payload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--url", help="Base URL of the bridge web process. [default: http://127.0.0.1:$PORT]")
@click.option("--event-type", help="Event name for providers that send it in a header (GitHub).")
@click.option("--event-id", help="Event/delivery id for providers that send it in a header.")
@click.option(
    "--new-id/--keep-id",
    default=False,
    help="Give the event a fresh id (providers whose id is in the body, e.g. Stripe), so "
    "that sending the same file twice is not a duplicate.",
)
def send(
    source: str,
    payload: Path,
    url: str | None,
    event_type: str | None,
    event_id: str | None,
    new_id: bool,
) -> None:
    """Sign PAYLOAD as SOURCE's provider would and POST it to /webhooks/SOURCE."""
    try:
        settings = Settings.from_env()
        # Not pinned: other sources' secrets need not be set to send to this one.
        entry = Catalogue.from_settings(settings, pinned=False).get(source)
        if entry is None:
            raise click.UsageError(f"no mapping file for source {source!r}")
        if not entry.on or not entry.mapping.secrets:
            raise click.UsageError(f"source {source!r} is off: {entry.reason}")
        mapping = entry.mapping
        raw = payload.read_bytes()
        try:
            orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise click.UsageError(f"{payload} is not JSON: {exc}") from None
        if new_id:
            raw = entry.provider.renew(raw)
        target = f"{(url or f'http://127.0.0.1:{settings.port}').rstrip('/')}/webhooks/{source}"
        headers = entry.provider.sign(
            raw,
            mapping.secrets[0],
            now=time.time(),
            event_id=event_id,
            event_type=event_type,
            url=mapping.public_url or target,
        )
    except BridgeError as exc:
        problems = getattr(exc, "problems", [exc.message])
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        sys.exit(2)
    try:
        resp = httpx.post(target, content=raw, headers=headers, timeout=10)
    except httpx.HTTPError as exc:
        click.echo(f"error: could not reach {target}: {exc}", err=True)
        click.echo("is the web process running? (bridge dev starts one)", err=True)
        sys.exit(1)
    click.echo(f"POST {target} -> {resp.status_code} {resp.text.strip()}")
    sys.exit(0 if resp.is_success else 1)
