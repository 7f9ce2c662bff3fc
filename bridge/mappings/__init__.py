"""Mapping files: one YAML file per source, turning provider events into Segment calls.

The public surface (see ``docs/mappings.md`` for the language)::

    Catalogue.load(directory, environ).mappings() -> dict[str, Mapping]  # bridge.catalogue
    Mapping.source / .provider / .secrets / .tolerance
    Mapping.handles(event_type) -> bool
    Mapping.evaluate(envelope, IdentityStore(redis)) -> list[dict]  # raises MappingError
    IdentityStore(redis)

Modules: :mod:`~bridge.mappings.spec` (the one schema), :mod:`~bridge.mappings.loader`
(YAML with positions, ``${VAR}``), :mod:`~bridge.mappings.expressions` (JMESPath and
functions), :mod:`~bridge.mappings.money`, :mod:`~bridge.mappings.identity`,
:mod:`~bridge.mappings.engine` (compiled rules), :mod:`~bridge.mappings.lint`,
:mod:`~bridge.mappings.casetests` (mapping test cases).
"""

from __future__ import annotations

from bridge.mappings.engine import Mapping, load_file, load_text
from bridge.mappings.identity import BufferedIdentityStore, IdentityStore, MemoryIdentityStore
from bridge.mappings.loader import interpolate
from bridge.mappings.problems import Problem

__all__ = [
    "BufferedIdentityStore",
    "IdentityStore",
    "Mapping",
    "MemoryIdentityStore",
    "Problem",
    "interpolate",
    "load_file",
    "load_text",
]
