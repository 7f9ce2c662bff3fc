"""``bridge send SOURCE PAYLOAD.json``: sign a payload as the provider would and POST it.

For trying a deployment (or ``bridge dev``) end to end without the provider. The secret
is the source's first configured secret, read from the environment exactly as the web
process reads it; the source must be on. Signing is the provider plugin's own.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import httpx
import orjson

from bridge.catalogue import Catalogue
from bridge.cli import mappings_dir_or_exit, settings_or_exit
from bridge.errors import BridgeError, MalformedPayload


def webhook_url(url: str | None, port: int, source: str) -> str:
    """Where to POST: ``--url`` may be the web process's base URL or the full webhook
    URL (``…/webhooks/SOURCE``); without it, this machine's ``$PORT``."""
    if url is None:
        return f"http://127.0.0.1:{port}/webhooks/{source}"
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        hint = f": did you mean http://{url}?" if "://" not in url else ""
        raise click.BadParameter(
            f"{url} is not an http:// or https:// URL{hint}", param_hint="'--url'"
        )
    path = parts.path.rstrip("/")
    head, _, last = path.rpartition("/")
    if head.endswith("/webhooks"):
        if last != source:
            raise click.BadParameter(
                f"{url} is the webhook URL of source {last!r}, not {source!r}",
                param_hint="'--url'",
            )
    elif last == "webhooks":
        path = f"{path}/{source}"
    else:
        path = f"{path}/webhooks/{source}"
    return urlunsplit((parts.scheme, parts.netloc, path, parts.query, ""))


@click.command()
@click.argument("source")
@click.argument("payload", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--url",
    help="The bridge web process: its base URL (http://host:port) or the full webhook URL "
    "(…/webhooks/SOURCE). [default: http://127.0.0.1:$PORT]",
)
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
    settings = settings_or_exit()
    target = webhook_url(url, settings.port, source)
    mappings_dir_or_exit(settings)  # a BRIDGE_MAPPINGS_DIR that is set must exist
    try:
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
            try:
                raw = entry.provider.renew(raw)
            except MalformedPayload:
                raise click.UsageError(
                    f"{payload} is not a JSON object, so it has no event id for --new-id to replace"
                ) from None
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
        if isinstance(exc, httpx.ConnectError):
            click.echo("is the web process running? (bridge dev starts one)", err=True)
        sys.exit(1)
    click.echo(f"POST {target} -> {resp.status_code} {resp.text.strip()}")
    sys.exit(0 if resp.is_success else 1)
