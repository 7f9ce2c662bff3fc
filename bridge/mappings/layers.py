"""Layers: the shipped catalogue, and an operator's folder over it.

The shipped mappings (``mappings/`` of the repository) ship inside the package:
a wheel (and so the image) carries them as ``bridge/shipped/*.yaml`` (copied at build
time by ``setup.py``); a checkout or an editable install reads ``mappings/`` itself.
:func:`shipped_dir` says which.

An operator's folder (``BRIDGE_MAPPINGS_DIR``) layers over it, file by file: a file
there with a new name adds a source; one with a shipped name and no ``extends``
replaces that source; one with ``extends: <shipped>`` builds on the shipped mapping
(:func:`extend`) — keys it writes win (``options`` and ``identity`` key by key),
``rules`` replace shipped rules of the same name in place or are added after them,
``drop`` leaves shipped rules out. Several files may extend the same shipped mapping
(``stripe-us.yaml`` and ``stripe-eu.yaml``, each with its own ``secrets``). Problems
are reported in the file that holds the value, with its line and column.
"""

from __future__ import annotations

from collections.abc import Mapping as MappingABC
from pathlib import Path
from typing import Any

from bridge.mappings.loader import Loc, Positions, mapping_files, read_yaml, source_of
from bridge.mappings.problems import Problem

#: Keys whose mappings merge key by key (the others are replaced whole).
_MERGED = ("options", "identity")
#: Keys of an extending file that are not merged into the result as they are.
_OWN = ("extends", "drop", "rules")


def shipped_dir() -> Path:
    """The folder of the shipped catalogue: packaged copy, else the checkout's."""
    package = Path(__file__).resolve().parent.parent
    packaged = package / "shipped"
    if packaged.is_dir():
        return packaged
    return package.parent / "mappings"


def _graft(dst: Positions, src: Positions, old: Loc, new: Loc, file: str | None) -> None:
    """Copy ``src``'s positions under ``old`` to ``dst`` under ``new``; ``file``: they
    were written in another file than ``dst``'s own."""
    n = len(old)
    for table_name in ("values", "keys", "variables"):
        table = getattr(src, table_name)
        target = getattr(dst, table_name)
        for loc, value in table.items():
            if loc[:n] == old:
                target[new + loc[n:]] = value
    for loc, value in src.files.items():
        if loc[:n] == old:
            dst.files[new + loc[n:]] = value
    if file is not None:
        dst.files[new] = file


def extend(
    data: dict[str, Any],
    positions: Positions,
    problems: list[Problem],
    file: str,
    environ: MappingABC[str, str],
) -> tuple[dict[str, Any] | None, Positions, list[Problem]]:
    """Merge the file ``data`` (which has ``extends``) over the shipped mapping it names."""
    name = data["extends"]
    line, col = positions.value(("extends",))
    shipped = shipped_dir()
    base_path = shipped / f"{name}.yaml" if isinstance(name, str) else None
    if base_path is not None and base_path.resolve() == Path(file).resolve():
        message = f"extends: {file} is the shipped {name!r} itself; extend it from your own folder"
        return None, positions, [*problems, Problem(file, line, col, "schema", message)]
    if base_path is None or not base_path.is_file():
        known = [source_of(p) for p in mapping_files([shipped], "mappings")]
        return (
            None,
            positions,
            [
                *problems,
                Problem(
                    file,
                    line,
                    col,
                    "schema",
                    f"extends: no shipped mapping {name!r} (shipped: {', '.join(known)})",
                ),
            ],
        )
    base_file = str(base_path)
    base, base_pos, base_problems = read_yaml(base_path.read_text("utf-8"), base_file, environ)
    if not isinstance(base, dict):
        return None, positions, [*problems, *base_problems]
    if "secrets" in data:
        # Overridden: the shipped file's unset secret variable is not this source's.
        base_problems = [p for p in base_problems if p.kind != "secret"]

    out = Positions()
    _graft(out, positions, (), (), None)
    for table in (out.values, out.keys, out.variables):
        for loc in [loc for loc in table if loc[:1] == ("rules",) and len(loc) > 1]:
            del table[loc]  # rules are re-numbered below
    merged: dict[str, Any] = {}
    for key, value in base.items():
        if key == "rules" or (key in data and key not in _MERGED):
            continue
        if key in _MERGED and isinstance(value, dict) and isinstance(data.get(key), dict):
            merged[key] = dict(value)
            for sub in value:
                if sub not in data[key]:
                    _graft(out, base_pos, (key, sub), (key, sub), base_file)
            continue
        merged[key] = value
        _graft(out, base_pos, (key,), (key,), base_file)
    for key, value in data.items():
        if key in _OWN:
            continue
        if key in _MERGED and isinstance(merged.get(key), dict) and isinstance(value, dict):
            merged[key].update(value)
        else:
            merged[key] = value

    own_rules = data.get("rules") or []
    drop = data.get("drop") or []
    if not isinstance(own_rules, list) or not isinstance(drop, list):
        merged["rules"] = own_rules
        merged["drop"] = drop
        return merged, out, [*problems, *base_problems]
    by_name = {r.get("name"): i for i, r in enumerate(own_rules) if isinstance(r, dict)}
    rules: list[Any] = []
    changed: list[str] = []
    shipped_names: set[str] = set()
    for j, rule in enumerate(base.get("rules") or []):
        rule_name = rule.get("name") if isinstance(rule, dict) else None
        shipped_names.add(str(rule_name))
        if rule_name in drop:
            changed.append(str(rule_name))
            continue
        if rule_name in by_name:
            k = by_name.pop(rule_name)
            _graft(out, positions, ("rules", k), ("rules", len(rules)), None)
            out.files.pop(("rules", len(rules)), None)
            rules.append(own_rules[k])
            changed.append(str(rule_name))
            continue
        _graft(out, base_pos, ("rules", j), ("rules", len(rules)), base_file)
        rules.append(rule)
    for k, rule in enumerate(own_rules):
        if isinstance(rule, dict) and rule.get("name") in by_name and by_name[rule["name"]] == k:
            _graft(out, positions, ("rules", k), ("rules", len(rules)), None)
            out.files.pop(("rules", len(rules)), None)
            rules.append(rule)
        elif not isinstance(rule, dict):
            rules.append(rule)
    extra: list[Problem] = []
    for i, dropped in enumerate(drop):
        if dropped not in shipped_names:
            d_line, d_col = positions.value(("drop", i))
            extra.append(
                Problem(
                    file, d_line, d_col, "schema", f"drop: shipped {name!r} has no rule {dropped!r}"
                )
            )
        elif dropped in by_name or dropped in {
            r.get("name") for r in own_rules if isinstance(r, dict)
        }:
            d_line, d_col = positions.value(("drop", i))
            extra.append(
                Problem(file, d_line, d_col, "schema", f"drop: rule {dropped!r} is also in `rules`")
            )
    if "rules" not in data:
        out.values[("rules",)] = base_pos.values.get(("rules",), (1, 1, None))
        out.files[("rules",)] = base_file
    merged["rules"] = rules
    merged["extends"] = name
    out.changed_rules = tuple(dict.fromkeys(changed))
    return merged, out, [*problems, *base_problems, *extra]
