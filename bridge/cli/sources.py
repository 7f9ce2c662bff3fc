"""``bridge sources``: every source, its provider, on/off and why.

Shows the names of the secret variables a source reads, never their values. Exit 0
when the catalogue loads (sources may be off), 2 when it cannot (the same problems
the web process would refuse to boot with).
"""

from __future__ import annotations

import json

import click

from bridge.cli import settings_or_exit


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print the sources as a JSON array.")
def sources(as_json: bool) -> None:
    """List every source: provider, on/off and why, secret variables, rules, event types."""
    from bridge.catalogue import Catalogue
    from bridge.errors import ConfigError

    settings = settings_or_exit()
    try:
        catalogue = Catalogue.from_settings(settings)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(f"error: {problem}", err=True)
        raise SystemExit(2) from None
    if as_json:
        click.echo(json.dumps([s.describe() for s in catalogue], indent=2))
        return
    header = ("SOURCE", "PROVIDER", "STATE", "WHY", "SECRET VARIABLES", "RULES", "EVENT TYPES")
    rows = [
        (
            s.name,
            s.provider_name,
            "on" if s.on else "off",
            s.reason,
            ", ".join(s.secret_vars) or "-",
            str(len(s.mapping.rules)),
            ", ".join(s.mapping.event_types),
        )
        for s in catalogue
    ]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for row in [header, *rows]:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[-1]]).rstrip())
    on = len(catalogue.on)
    click.echo(f"{on} of {len(catalogue)} source(s) on", err=True)
