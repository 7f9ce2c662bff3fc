"""The ``bridge`` command line.

Each command group lives in its own module and is imported only when used, so
``bridge --help`` stays fast and a worker never imports the web code.
"""

from __future__ import annotations

import importlib
from typing import Any

import click

#: Command name -> "module:attribute" of its click command.
COMMANDS = {
    "dev": "bridge.cli.dev:dev",
    "mappings": "bridge.cli.mappings:mappings",
    "preview": "bridge.cli.mappings:preview",
    "send": "bridge.cli.send:send",
    "dlq": "bridge.cli.dlq:dlq",
    "healthcheck": "bridge.cli.healthcheck:healthcheck",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name == module_name:
                return None  # not built yet
            raise
        command: click.Command = getattr(module, attr)
        return command


@click.group(cls=LazyGroup)
@click.version_option(package_name="bridge")
def main(**_: Any) -> None:
    """bridge: provider webhooks in, Segment-spec calls out."""
