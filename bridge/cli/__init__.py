"""The ``bridge`` command line.

Each command group lives in its own module and is imported only when used, so
``bridge --help`` stays fast and a worker never imports the web code.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

import click

if TYPE_CHECKING:
    from bridge.settings import Settings

#: Command name -> "module:attribute" of its click command.
COMMANDS = {
    "dev": "bridge.cli.dev:dev",
    "mappings": "bridge.cli.mappings:mappings",
    "preview": "bridge.cli.mappings:preview",
    "send": "bridge.cli.send:send",
    "sources": "bridge.cli.sources:sources",
    "dlq": "bridge.cli.dlq:dlq",
    "healthcheck": "bridge.cli.healthcheck:healthcheck",
    "console": "bridge.cli.console:console",
}


def settings_or_exit() -> Settings:
    """Settings from the environment, or one ``error:`` line per problem and exit 2."""
    from bridge.errors import ConfigError
    from bridge.settings import Settings

    try:
        return Settings.from_env()
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from None


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
