"""The ``bridge`` command line.

Each command group lives in its own module and is imported only when used, so
``bridge --help`` stays fast and a worker never imports the web code.
"""

from __future__ import annotations

import importlib
from pathlib import Path
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
    "backfill": "bridge.cli.backfill:backfill",
    "reconcile": "bridge.cli.reconcile:reconcile",
    "settings": "bridge.cli.settings:settings",
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


def mappings_dir_or_exit(settings: Settings) -> Path:
    """The operator's mapping folder; when BRIDGE_MAPPINGS_DIR names one that does not
    exist, one ``error:`` line naming it and exit 2 (instead of a YAML error about a file
    that does not exist). Unset, a missing ``./mappings`` is fine: the shipped catalogue
    is used alone (see :func:`bridge.catalogue.layer_dirs`)."""
    folder = settings.mappings_dir
    if folder.is_dir() or not settings.environ.get("BRIDGE_MAPPINGS_DIR"):
        return folder
    message = f"BRIDGE_MAPPINGS_DIR={folder}: the folder does not exist"
    if not folder.is_absolute():
        message += f" (in {Path.cwd()})"
    click.echo(f"error: {message}", err=True)
    raise SystemExit(2)


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
