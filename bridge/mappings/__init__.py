"""Mapping files: one YAML file per source, turning provider events into Segment calls.

PROVISIONAL: this module currently holds only what intake needs (which provider
verifies a source, its secrets, its tolerance, which event types it handles). The
mappings issue replaces the internals with the spec-driven loader, keeping this API:

- ``load_mappings(directory, environ) -> dict[str, Mapping]`` (raises ConfigError)
- ``Mapping.source``, ``.provider``, ``.secrets``, ``.tolerance``, ``.handles(type)``
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from bridge.errors import ConfigError
from bridge.providers import DEFAULT_TOLERANCE, get_provider

_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def interpolate(text: str, environ: MappingABC[str, str]) -> str:
    """Replace ``${VAR}`` / ``${VAR:default}``; an unset VAR without default is an error."""

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or value == "":
            if default is None:
                raise ConfigError(f"environment variable {name} is not set")
            return default
        return value

    return _VAR.sub(sub, text)


@dataclass(frozen=True)
class Mapping:
    """One source: how to verify it and which events it maps."""

    source: str
    provider: str
    secrets: tuple[str, ...]
    tolerance: int = DEFAULT_TOLERANCE
    patterns: tuple[str, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def handles(self, event_type: str) -> bool:
        """Whether any rule matches ``event_type`` (exact or glob pattern)."""
        return any(fnmatch.fnmatchcase(event_type, p) for p in self.patterns)


def load_mapping(path: Path, environ: MappingABC[str, str]) -> Mapping:
    doc = yaml.safe_load(path.read_text()) or {}
    provider = str(doc.get("provider", ""))
    get_provider(provider)
    secrets_raw = doc.get("secrets", "")
    if isinstance(secrets_raw, list):
        secrets_raw = ",".join(str(s) for s in secrets_raw)
    secrets = tuple(s.strip() for s in interpolate(str(secrets_raw), environ).split(",") if s)
    options = doc.get("options") or {}
    patterns: list[str] = []
    for rule in doc.get("rules") or []:
        on = rule.get("on")
        patterns.extend([on] if isinstance(on, str) else list(on or []))
    return Mapping(
        source=path.stem,
        provider=provider,
        secrets=secrets,
        tolerance=int(options.get("tolerance", DEFAULT_TOLERANCE)),
        patterns=tuple(patterns),
        raw=doc,
    )


def load_mappings(
    directory: Path, environ: MappingABC[str, str] | None = None
) -> dict[str, Mapping]:
    """Every ``*.yaml`` in ``directory``, keyed by source (file stem)."""
    env = os.environ if environ is None else environ
    if not directory.is_dir():
        raise ConfigError(f"mappings directory {directory} does not exist")
    found: dict[str, Mapping] = {}
    problems: list[str] = []
    for path in sorted(directory.glob("*.yaml")):
        try:
            found[path.stem] = load_mapping(path, env)
        except ConfigError as exc:
            problems.extend(f"{path}: {p}" for p in exc.problems)
    if problems:
        raise ConfigError("invalid mapping files", problems)
    return found
