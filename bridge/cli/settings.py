"""``bridge settings table``: the configuration table, rendered from the settings spec.

Hidden: it is for maintainers keeping README.md's "Configuration" table in step with
:mod:`bridge.settings` (tests/test_readme.py checks they agree).
"""

from __future__ import annotations

import click


@click.group(hidden=True)
def settings() -> None:
    """The settings spec (bridge/settings.py)."""


@settings.command()
def table() -> None:
    """Print the README's configuration table (Markdown) from the settings spec."""
    from bridge.settings import settings_table

    click.echo(settings_table(), nl=False)
