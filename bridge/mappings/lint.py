"""Lint: every problem in mapping files (and their test files), with file:line:col.

``bridge mappings check`` prints :func:`check` 's problems and exits 1 on any. Mapping
files get the full load (schema, expressions, patterns, provider, secrets, identity);
test files get their own schema (kind ``test``). A source that is off because its
secret is unset is a note (kind ``info``), not a problem, unless ``BRIDGE_SOURCES``
pins it (see :mod:`bridge.catalogue`).
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from bridge.catalogue import PIN_VARIABLE, load_source
from bridge.mappings.casetests import CaseFile
from bridge.mappings.loader import (
    TESTS_SUFFIX,
    mapping_files,
    read_yaml,
    schema_problems,
    source_of,
)
from bridge.mappings.problems import Problem


@dataclass
class LintResult:
    """What :func:`check` found."""

    mappings: list[Path] = field(default_factory=list)
    test_files: list[Path] = field(default_factory=list)
    rules: int = 0
    problems: list[Problem] = field(default_factory=list)
    #: Information, not findings: which sources are off and why.
    notes: list[Problem] = field(default_factory=list)


def check(
    paths: list[Path],
    environ: MappingABC[str, str],
    pinned: Sequence[str] = (),
    *,
    whole_catalogue: bool = False,
) -> LintResult:
    """Lint the files named by ``paths`` (folders: every ``*.yaml`` inside);
    ``pinned``: the sources ``BRIDGE_SOURCES`` lists, each of which must be among the
    files when they are a whole catalogue (or a folder)."""
    result = LintResult()
    for path in mapping_files(paths):
        if not path.exists():
            result.problems.append(Problem(str(path), 1, 1, "yaml", "no such file"))
        elif path.name.endswith(TESTS_SUFFIX):
            result.test_files.append(path)
            result.problems.extend(check_tests(path))
        else:
            result.mappings.append(path)
            source, problems = load_source(path, environ, pinned)
            result.problems.extend(problems)
            if source is not None:
                result.rules += len(source.mapping.rules)
                if source.note is not None:
                    result.notes.append(source.note)
    if pinned and (whole_catalogue or any(p.is_dir() for p in paths)):
        names = {source_of(p) for p in result.mappings}
        for name in pinned:
            if name not in names:
                result.problems.append(
                    Problem(
                        PIN_VARIABLE,
                        1,
                        1,
                        "secret",
                        f"{PIN_VARIABLE} lists {name!r}: no such source",
                    )
                )
    return result


def check_tests(path: Path) -> list[Problem]:
    """Schema problems of a test file."""
    file = str(path)
    data, positions, problems = read_yaml(path.read_text(encoding="utf-8"), file, {})
    if data is None:
        return problems or [Problem(file, 1, 1, "test", "the file is empty")]
    try:
        CaseFile.model_validate(data)
    except ValidationError as exc:
        problems = problems + [
            Problem(p.file, p.line, p.col, "test", p.message)
            for p in schema_problems(exc, data, positions, file)
        ]
    return problems
