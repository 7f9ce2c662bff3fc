"""Reading mapping files: YAML that keeps line/column, ``${VAR}`` interpolation, schema.

Every string in a mapping file may hold ``${VAR}`` or ``${VAR:default}``; they are
replaced from the settings' environment when the file loads (``$${`` writes a literal
``${``). An unset variable without default is a problem of kind ``secret`` inside
``secrets`` and ``env`` elsewhere. Test files (``<source>.tests.yaml``) live in the same
folder and are not mappings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import ValidationError

from bridge.mappings.problems import Problem
from bridge.mappings.spec import MappingFile

#: Suffix of the test-case files kept beside mappings.
TESTS_SUFFIX = ".tests.yaml"

Loc = tuple[str | int, ...]

_VAR = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_MERGE_TAG = "tag:yaml.org,2002:merge"


@dataclass
class Positions:
    """1-based (line, column) of every value and key in a parsed file, by path."""

    values: dict[Loc, tuple[int, int, str | None]] = field(default_factory=dict)
    keys: dict[Loc, tuple[int, int]] = field(default_factory=dict)
    #: ``${VAR}`` names each string value referenced (set or not), by path: the
    #: catalogue reads the secret variables of a source from here.
    variables: dict[Loc, tuple[str, ...]] = field(default_factory=dict)
    #: Paths whose values come from another file (a shipped mapping a file extends),
    #: so that problems there name that file.
    files: dict[Loc, str] = field(default_factory=dict)
    #: With ``extends``: the shipped rules this file replaced or dropped.
    changed_rules: tuple[str, ...] = ()

    def file_of(self, loc: Loc, default: str) -> str:
        """The file the value at ``loc`` was written in."""
        for end in range(len(loc), -1, -1):
            found = self.files.get(loc[:end])
            if found:
                return found
        return default

    def value(self, loc: Loc) -> tuple[int, int]:
        """Position of the value at ``loc`` (or of its nearest ancestor)."""
        for end in range(len(loc), -1, -1):
            found = self.values.get(loc[:end])
            if found:
                return found[0], found[1]
        return 1, 1

    def key(self, loc: Loc) -> tuple[int, int]:
        """Position of the key that names ``loc`` (or of the value if it has no key)."""
        return self.keys.get(loc) or self.value(loc)

    def inside(self, loc: Loc, column: int) -> tuple[int, int]:
        """Position ``column`` characters into the scalar at ``loc`` (if on one line)."""
        found = self.values.get(loc)
        if not found:
            return self.value(loc)
        line, col, style = found
        if style in ('"', "'"):
            return line, col + 1 + column
        if style is None or style == "":
            return line, col + column
        return line, col


def unset_message(name: str) -> str:
    """The problem message of an unset ``${VAR}`` (the catalogue recognises it)."""
    return f"environment variable {name} is not set (and has no default)"


def variables_in(text: str) -> tuple[str, ...]:
    """The ``${VAR}`` names ``text`` references (``$${`` escapes skipped)."""
    return tuple(m.group(1) for m in _VAR.finditer(text) if m.group(1))


def interpolate(text: str, environ: MappingABC[str, str], on_unset: Callable[[str], None]) -> str:
    """Replace ``${VAR}`` / ``${VAR:default}``; call ``on_unset(VAR)`` for each unset one."""
    if "$" not in text:
        return text

    def sub(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        value = environ.get(name)
        if value is None or value == "":
            if default is None:
                on_unset(name)
                return ""
            return default
        return value

    return _VAR.sub(sub, text)


class _Reader:
    def __init__(self, file: str, environ: MappingABC[str, str]) -> None:
        self.file = file
        self.environ = environ
        self.positions = Positions()
        self.problems: list[Problem] = []
        self.constructor = yaml.constructor.SafeConstructor()

    def problem(self, line: int, col: int, kind: str, message: str) -> None:
        self.problems.append(Problem(self.file, line, col, kind, message))

    def convert(self, node: yaml.Node, loc: Loc) -> Any:
        mark = node.start_mark
        style = getattr(node, "style", None)
        self.positions.values[loc] = (mark.line + 1, mark.column + 1, style)
        if isinstance(node, yaml.MappingNode):
            out: dict[str, Any] = {}
            for key_node, value_node in node.value:
                if key_node.tag == _MERGE_TAG:
                    merged = self.convert(value_node, (*loc, "<<"))
                    for item in merged if isinstance(merged, list) else [merged]:
                        if isinstance(item, dict):
                            for k, v in item.items():
                                out.setdefault(k, v)
                    continue
                if not isinstance(key_node, yaml.ScalarNode):
                    km = key_node.start_mark
                    self.problem(km.line + 1, km.column + 1, "schema", "keys must be text")
                    continue
                key = str(key_node.value)
                km = key_node.start_mark
                if key in out and (*loc, key) in self.positions.keys:
                    self.problem(km.line + 1, km.column + 1, "schema", f"duplicate key {key!r}")
                self.positions.keys[(*loc, key)] = (km.line + 1, km.column + 1)
                out[key] = self.convert(value_node, (*loc, key))
            return out
        if isinstance(node, yaml.SequenceNode):
            return [self.convert(item, (*loc, i)) for i, item in enumerate(node.value)]
        value = self.constructor.construct_object(node, deep=True)
        if isinstance(value, str) and "$" in value:
            kind = "secret" if loc[:1] == ("secrets",) else "env"

            def unset(name: str) -> None:
                self.problem(mark.line + 1, mark.column + 1, kind, unset_message(name))

            names = variables_in(value)
            if names:
                self.positions.variables[loc] = names
            value = interpolate(value, self.environ, unset)
        return value


def read_yaml(
    text: str, file: str, environ: MappingABC[str, str]
) -> tuple[Any, Positions, list[Problem]]:
    """Parse ``text`` keeping positions; YAML errors become problems (data is None)."""
    reader = _Reader(file, environ)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        reason = exc.problem or str(exc)
        return None, reader.positions, [Problem(file, line, col, "yaml", reason)]
    except yaml.YAMLError as exc:
        return None, reader.positions, [Problem(file, 1, 1, "yaml", str(exc))]
    if root is None:
        return None, reader.positions, []
    try:
        data = reader.convert(root, ())
    except yaml.YAMLError as exc:
        return None, reader.positions, [Problem(file, 1, 1, "yaml", str(exc))]
    return data, reader.positions, reader.problems


def _data_loc(data: Any, loc: Iterable[str | int]) -> tuple[Loc, bool]:
    """Trim pydantic's ``loc`` (which names union branches) to a path into ``data``.

    Returns the path and whether it reached all the way (False: the last key is absent).
    """
    out: list[str | int] = []
    current = data
    for part in loc:
        if isinstance(current, dict) and isinstance(part, str) and part in current:  # noqa: SIM114
            current = current[part]
            out.append(part)
        elif isinstance(current, list) and isinstance(part, int) and 0 <= part < len(current):
            current = current[part]
            out.append(part)
        elif isinstance(current, dict) and isinstance(part, str) and part in ("from_",):
            out.append("from")
            return tuple(out), "from" in current
        else:
            return tuple(out), False
    return tuple(out), True


def schema_problems(
    exc: ValidationError, data: Any, positions: Positions, default: str
) -> list[Problem]:
    """One problem per distinct location in a pydantic validation error."""
    grouped: dict[Loc, list[tuple[str, str, str | int | None]]] = {}
    for err in exc.errors():
        loc, reached = _data_loc(data, err["loc"])
        missing_key = (
            None
            if reached
            else next((p for p in err["loc"][len(loc) :] if isinstance(p, str)), None)
        )
        grouped.setdefault(loc, []).append((err["type"], err["msg"], missing_key))
    problems = []
    for loc, errors in grouped.items():
        kinds = {t for t, _, _ in errors}
        where = ".".join(str(p) for p in loc) or "(file)"
        file = positions.file_of(loc, default)
        if "extra_forbidden" in kinds:
            line, col = positions.key(loc)
            problems.append(Problem(file, line, col, "unknown-key", f"unknown key {loc[-1]!r}"))
            continue
        missing = [m for t, _, m in errors if t == "missing" and m]
        if missing:
            line, col = positions.value(loc)
            names = ", ".join(repr(m) for m in dict.fromkeys(missing))
            problems.append(
                Problem(file, line, col, "required", f"{where}: missing required key {names}")
            )
            continue
        messages = " or ".join(dict.fromkeys(_plain(m) for _, m, _ in errors))
        line, col = positions.value(loc)
        problems.append(Problem(file, line, col, "schema", f"{where}: {messages}"))
    return problems


def _plain(message: str) -> str:
    return message.replace("Input should be", "expected").replace("a valid ", "")


def parse_file(
    path: Path, environ: MappingABC[str, str]
) -> tuple[MappingFile | None, Positions, list[Problem]]:
    """Read and schema-check one mapping file."""
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return None, Positions(), [Problem(file, 1, 1, "yaml", f"cannot read: {exc}")]
    return parse_text(text, file, environ)


def parse_text(
    text: str, file: str, environ: MappingABC[str, str]
) -> tuple[MappingFile | None, Positions, list[Problem]]:
    """Schema-check mapping text (``file`` names it in problems)."""
    data, positions, problems = read_yaml(text, file, environ)
    if data is None and not problems:
        problems.append(Problem(file, 1, 1, "required", "the file is empty"))
    if data is None:
        return None, positions, problems
    if not isinstance(data, dict):
        problems.append(Problem(file, 1, 1, "schema", "a mapping file is a YAML mapping"))
        return None, positions, problems
    if "extends" in data:
        from bridge.mappings.layers import extend  # layers builds on this module

        data, positions, problems = extend(data, positions, problems, file, environ)
        if data is None:
            return None, positions, problems
    try:
        model = MappingFile.model_validate(data)
    except ValidationError as exc:
        return None, positions, problems + schema_problems(exc, data, positions, file)
    return model, positions, problems


def source_of(path: Path) -> str:
    """The source a mapping file defines: its stem (``mappings/stripe.yaml`` -> stripe)."""
    return path.name.removesuffix(".yaml").removesuffix(".yml")


def _kind_of(path: Path) -> Literal["mappings", "tests"]:
    return "tests" if path.name.endswith(TESTS_SUFFIX) else "mappings"


def mapping_files(
    paths: Iterable[Path],
    kind: Literal["all", "mappings", "tests"] = "all",
    *,
    layered: bool = False,
) -> list[Path]:
    """The mapping and test files ``paths`` name: the one way bridge lists them.

    A folder gives its ``*.yaml`` files of ``kind`` in name order; a file is itself
    (whatever its kind: the caller named it), except that with ``kind="tests"`` a
    mapping file names its test file (``stripe.yaml`` -> ``stripe.tests.yaml``, which
    may not exist, and is listed once however many paths name it).

    ``layered``: ``paths`` are the catalogue's layers (shipped first, then the
    operator's folder); of each file name only the one in the highest layer counts,
    and the result is the mappings in name order, then the test files. A layer that
    is not a folder is listed as it is, first, for the caller to report.
    """
    found: list[Path] = []
    if layered:
        chosen: dict[str, Path] = {}
        for layer in paths:
            if not layer.is_dir():
                found.append(layer)
                continue
            for path in sorted(layer.glob("*.yaml")):
                chosen[path.name] = path
        for group in ("mappings", "tests"):
            if kind in ("all", group):
                found.extend(p for _, p in sorted(chosen.items()) if _kind_of(p) == group)
        return found
    for path in paths:
        if path.is_dir():
            found.extend(p for p in sorted(path.glob("*.yaml")) if kind in ("all", _kind_of(p)))
        elif kind == "tests" and _kind_of(path) == "mappings":
            found.append(path.with_name(source_of(path) + TESTS_SUFFIX))
        else:
            found.append(path)
    return list(dict.fromkeys(found)) if kind == "tests" else found
