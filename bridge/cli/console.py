"""``bridge console``: serve the operator console on a port of its own."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from bridge.cli import settings_or_exit


@click.command()
@click.option("--host", default="0.0.0.0", show_default=True, help="Interface to bind.")
@click.option("--port", type=int, help="Port. [default: $BRIDGE_CONSOLE_PORT]")
def console(host: str, port: int | None) -> None:
    """Serve the console alone (BRIDGE_CONSOLE_TOKEN must be set), e.g. on a private
    network while the webhook URL is public. Replaces this process with gunicorn."""
    from bridge.console.app import console_command

    settings = settings_or_exit()
    if settings.console_token is None:
        raise click.ClickException("BRIDGE_CONSOLE_TOKEN is not set: the console is off")
    port = port or settings.console_port
    if port is None:
        raise click.ClickException("give --port or set BRIDGE_CONSOLE_PORT")
    command = console_command(f"{host}:{port}")
    exe = Path(sys.executable).parent / command[0]
    # exec, not a child: signals reach gunicorn directly (as under the Procfile).
    os.execv(str(exe) if exe.exists() else command[0], [command[0], *command[1:]])  # noqa: S606
