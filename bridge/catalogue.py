"""The catalogue: every source bridge knows, whether it is on, and why.

One :class:`Catalogue` serves intake (which sources take webhooks, with which
provider), workers (the mapping of every source, on or off: events made durable while
a source was on are still delivered), the CLI (``bridge sources``, ``mappings check``,
``preview``, ``send``) and ``/readyz``.

When a source is on:

- without ``BRIDGE_SOURCES``: when every ``${VAR}`` its ``secrets`` names is set. A
  shipped source whose secret is unset is *off* (it answers 404 ``source_off``), not a
  boot failure, so a deployment needs the secrets of the sources it uses and no others;
- with ``BRIDGE_SOURCES=stripe,github``: exactly the sources listed are on; a listed
  source without its secret stops the boot with one line naming the variable, and an
  unlisted one is off ("not listed in BRIDGE_SOURCES") even if its secret is set.

Any other problem in a mapping file (schema, expression, an unset ``${VAR}`` outside
``secrets``) still stops the boot, on or off: a broken catalogue is never half-loaded.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator, Sequence
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bridge.errors import ConfigError
from bridge.mappings.engine import Mapping, load_file
from bridge.mappings.layers import shipped_dir
from bridge.mappings.loader import mapping_files, source_of
from bridge.mappings.problems import Problem
from bridge.providers import Provider

if TYPE_CHECKING:
    from bridge.settings import Settings

__all__ = ["Catalogue", "Source", "layer_dirs", "load_source"]

#: The variable that pins sources.
PIN_VARIABLE = "BRIDGE_SOURCES"

#: What an unset secret variable reads as while an off source's mapping is compiled
#: (for listing and for mapping events already durable). Never used to verify: an off
#: source's mapping has no secrets at all.
_OFF_PLACEHOLDER = "bridge-source-off"

_UNSET = re.compile(r"^environment variable ([A-Za-z_][A-Za-z0-9_]*) is not set")


@dataclass(frozen=True)
class Source:
    """One entry of the catalogue: a mapping served at ``/webhooks/<name>``."""

    name: str
    mapping: Mapping
    #: The provider plugin instance that verifies this source's webhooks.
    provider: Provider
    on: bool
    #: Why the source is on or off, in words ("STRIPE_WEBHOOK_SECRET is not set").
    reason: str
    #: Where the reason points (the unset ``${VAR}``), for ``mappings check``.
    note: Problem | None = None

    @property
    def provider_name(self) -> str:
        return self.mapping.provider

    @property
    def secret_vars(self) -> tuple[str, ...]:
        return self.mapping.secret_vars

    def describe(self) -> dict[str, Any]:
        """What ``bridge sources --json`` and ``/readyz`` show (variable names, no values)."""
        return {
            "source": self.name,
            "provider": self.provider_name,
            "dedup_on": self.provider.dedup_on,
            "on": self.on,
            "reason": self.reason,
            "secrets": list(self.secret_vars),
            "rules": len(self.mapping.rules),
            "event_types": list(self.mapping.event_types),
            "file": str(self.mapping.path) if self.mapping.path else None,
            "extends": self.mapping.extends,
        }


def layer_dirs(settings: Settings) -> list[Path]:
    """The catalogue's folders, lowest first: the shipped mappings, then the operator's.

    ``BRIDGE_MAPPINGS_DIR`` (default ``./mappings``) is the operator's folder; when not
    set explicitly and absent, there is none. In a checkout ``./mappings`` is the
    shipped folder itself, which is then read once.
    """
    shipped = shipped_dir()
    folder = settings.mappings_dir
    explicit = "mappings_dir" in settings.model_fields_set
    if not folder.is_dir():
        return [shipped, folder] if explicit else [shipped]
    if folder.resolve() == shipped.resolve():
        return [shipped]
    return [shipped, folder]


def _unset_secrets(problems: Sequence[Problem]) -> tuple[list[Problem], list[str]]:
    """The problems that are unset secret variables, and those variables' names."""
    found: list[Problem] = []
    names: list[str] = []
    for problem in problems:
        match = _UNSET.match(problem.message) if problem.kind == "secret" else None
        if match:
            found.append(problem)
            names.append(match.group(1))
    return found, list(dict.fromkeys(names))


def load_source(
    path: Path, environ: MappingABC[str, str], pinned: Sequence[str] = ()
) -> tuple[Source | None, list[Problem]]:
    """Load one mapping file as a source, deciding whether it is on.

    Returns the source (None when the file has problems) and the problems: unset
    secrets are not problems unless ``pinned`` lists the source.
    """
    name = source_of(path)
    mapping, problems = load_file(path, environ)
    unset_problems, unset = _unset_secrets(problems)
    if mapping is None and unset:
        if name in pinned:
            return None, [
                dataclasses.replace(
                    p,
                    message=f"{p.message}; {PIN_VARIABLE} lists {name!r}, so it must be set",
                )
                for p in unset_problems
            ] + [p for p in problems if p not in unset_problems]
        # Compile with placeholders: everything else in the file must still be right.
        overlay = {**environ, **dict.fromkeys(unset, _OFF_PLACEHOLDER)}
        mapping, problems = load_file(path, overlay)
        if mapping is None:
            return None, problems
        mapping = dataclasses.replace(mapping, secrets=())
        verb = "is" if len(unset) == 1 else "are"
        reason = f"{', '.join(unset)} {verb} not set"
        if pinned:
            reason = f"not listed in {PIN_VARIABLE} (and {reason})"
        note = unset_problems[0]
        note = Problem(note.file, note.line, note.col, "info", f"source {name!r} is off: {reason}")
        return Source(name, mapping, mapping.plugin(), False, reason, note), []
    if mapping is None:
        return None, problems
    plugin = mapping.plugin()
    if pinned and name not in pinned:
        reason = f"not listed in {PIN_VARIABLE}"
        note = Problem(str(path), 1, 1, "info", f"source {name!r} is off: {reason}")
        off = dataclasses.replace(mapping, secrets=())
        return Source(name, off, plugin, False, reason, note), []
    if pinned:
        reason = f"listed in {PIN_VARIABLE}"
    elif mapping.secret_vars:
        reason = f"{', '.join(mapping.secret_vars)} set"
    else:
        reason = "secrets written in the file"
    return Source(name, mapping, plugin, True, reason), []


@dataclass(frozen=True)
class Catalogue:
    """Every source, by name, and the pins it was loaded with."""

    sources: dict[str, Source] = field(default_factory=dict)
    pinned: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Settings, *, pinned: bool = True) -> Catalogue:
        """The catalogue the settings describe; ConfigError lists every problem.

        ``pinned=False`` ignores BRIDGE_SOURCES (tools that need no secret: preview)."""
        return cls.load(layer_dirs(settings), settings.environ, settings.sources if pinned else ())

    @classmethod
    def load(
        cls,
        directories: Path | Sequence[Path],
        environ: MappingABC[str, str],
        pinned: Sequence[str] = (),
    ) -> Catalogue:
        """Load every mapping in ``directories`` (later layers win, file by file);
        raise ConfigError on any problem."""
        layers = [directories] if isinstance(directories, Path) else list(directories)
        for directory in layers:
            if not directory.is_dir():
                raise ConfigError(
                    "invalid mapping files", [f"{directory}: mappings directory does not exist"]
                )
        sources: dict[str, Source] = {}
        problems: list[Problem] = []
        for path in mapping_files(layers, "mappings", layered=True):
            source, found = load_source(path, environ, pinned)
            problems.extend(found)
            if source is not None:
                sources[source.name] = source
        messages = [str(p) for p in problems]
        unknown = [name for name in pinned if name not in sources and not _named(name, problems)]
        if unknown:
            messages.append(
                f"{PIN_VARIABLE}: no mapping for {', '.join(map(repr, unknown))} in "
                f"{', '.join(map(str, layers))} "
                f"(known: {', '.join(sorted(sources)) or 'none'})"
            )
        if messages:
            raise ConfigError("invalid mapping files", messages)
        return cls(sources, tuple(pinned))

    def __iter__(self) -> Iterator[Source]:
        return iter(self.sources[name] for name in sorted(self.sources))

    def __len__(self) -> int:
        return len(self.sources)

    def get(self, name: str) -> Source | None:
        return self.sources.get(name)

    @property
    def on(self) -> list[str]:
        """Names of the sources that take webhooks."""
        return [s.name for s in self if s.on]

    @property
    def off(self) -> dict[str, str]:
        """Sources that are off, with the reason."""
        return {s.name: s.reason for s in self if not s.on}

    def mappings(self) -> dict[str, Mapping]:
        """The mapping of every source, on or off (workers map what is already durable)."""
        return {s.name: s.mapping for s in self}

    def summary(self) -> dict[str, Any]:
        """The one boot line's fields: which sources are on, which off and why."""
        return {"on": self.on, "off": self.off, "pinned": list(self.pinned)}


def _named(name: str, problems: Sequence[Problem]) -> bool:
    """Whether a problem was already reported for the file of source ``name``."""
    return any(source_of(Path(p.file)) == name for p in problems)
