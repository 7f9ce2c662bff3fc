"""Mapping test cases: ``<source>.tests.yaml`` beside ``<source>.yaml``.

A test file holds ``cases``; each feeds one event to the mapping and compares the
calls it emits with ``expect`` (see docs/mappings.md, "Test cases")::

    cases:
      - name: paid checkout session is an Order Completed
        event: {id: evt_1, type: checkout.session.completed, created: 1700000000, ...}
        patch: {...}            # optional, deep-merged onto event (share a base via &anchor)
        type: ...               # optional: event type (default: what the provider reads
                                #   from the body, e.g. event.type; GitHub needs it)
        id: ...                 # optional: event id (default: the provider's, else case-<n>)
        time: ...               # optional: Unix seconds (default: the provider's, else 0)
        identity: {cus_1: u_1}  # optional: identity store contents before the event
        claimed: {pi_1: in_1}   # optional: once-claims earlier events hold: id -> counted as
        match: subset           # subset (default) or exact
        expect: [...]           # the calls, in order; [] = handled, nothing emitted
        ignored: true           # instead of expect: no rule takes this event type
        error: "text"           # instead of expect: a MappingError containing the text

Subset matching compares only the keys written in ``expect`` (recursively), but the
number of calls must always be equal, so an extra revenue call fails the test.
Unset ``${VAR}`` in the mapping read as ``test-secret`` here (``check`` reports them).

A mapping that ``extends`` a shipped one also runs the shipped mapping's cases
(against the extended mapping), except those that exercise a rule it replaced or
dropped: they are listed as skipped. Its own test file runs as usual.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from collections.abc import Mapping as MappingABC
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bridge import codec
from bridge.envelope import Envelope
from bridge.errors import MappingError
from bridge.mappings.engine import Mapping, load_file, truthy
from bridge.mappings.identity import MemoryIdentityStore
from bridge.mappings.loader import (
    TESTS_SUFFIX,
    mapping_files,
    read_yaml,
    schema_problems,
    source_of,
)
from bridge.mappings.problems import Problem

#: Value of an unset ``${VAR}`` while running test cases.
PLACEHOLDER = "test-secret"

#: Value of an unset ``${..._URL}`` while running test cases.
PLACEHOLDER_URL = "https://test-secret.invalid/"


class Case(BaseModel):
    """One test case (the schema of an entry of ``cases``)."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(description="What the case shows, in words.")
    event: dict[str, Any] = Field(description="The provider's event body.")
    patch: dict[str, Any] | None = Field(None, description="Deep-merged onto `event`.")
    type: str | None = Field(None, description="Event type (default: `event.type`).")
    id: str | None = Field(None, description="Event id (default: `event.id`, else the name).")
    time: float | None = Field(None, description="Unix seconds (default: `event.created`).")
    identity: dict[str, str] = Field(
        default_factory=dict, description="Identity store before the event: customer -> userId."
    )
    claimed: dict[str, str] = Field(
        default_factory=dict,
        description="Once-claims earlier events hold: id -> what it was counted as.",
    )
    match: str = Field("subset", pattern="^(subset|exact)$", description="subset or exact.")
    expect: list[dict[str, Any]] | None = Field(None, description="Expected calls, in order.")
    ignored: bool = Field(False, description="Expect no rule to take the event type.")
    error: str | None = Field(None, description="Expect a MappingError containing this text.")


class CaseFile(BaseModel):
    """A ``<source>.tests.yaml`` file."""

    model_config = ConfigDict(extra="forbid")

    mapping: str | None = Field(None, description="Mapping file, relative (default: sibling).")
    cases: list[Case] = Field(min_length=1)


class _Placeholder(MappingABC[str, str]):
    def __init__(self, environ: MappingABC[str, str]) -> None:
        self.environ = environ

    def __getitem__(self, key: str) -> str:
        value = self.environ.get(key)
        if value:
            return value
        # A URL option (SQUARE_WEBHOOK_URL -> options.public_url) must still be a URL.
        return PLACEHOLDER_URL if key.endswith("_URL") else PLACEHOLDER

    def __iter__(self) -> Iterator[str]:
        return iter(self.environ)

    def __len__(self) -> int:
        return len(self.environ)


@dataclass
class CaseResult:
    """The outcome of one case."""

    file: str
    name: str
    line: int
    failures: list[str] = field(default_factory=list)
    rules: set[str] = field(default_factory=set)

    @property
    def ok(self) -> bool:
        return not self.failures


@dataclass
class Report:
    """The outcome of a run: results, load problems and rules no case exercised."""

    results: list[CaseResult] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    untested: list[str] = field(default_factory=list)
    #: Shipped cases not run because they exercise a rule the extending file changed.
    skipped: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results)


def _collects(path: Path) -> bool:
    """Whether ``path`` is a first-party collection source (``collect:``): its calls come
    complete from clients, so it has no mapping rules to test and needs no test file."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return False
    return isinstance(data, dict) and "collect" in data


def deep_merge(base: Any, patch: Any) -> Any:
    """``patch`` onto ``base``: objects merge key by key, anything else replaces."""
    if isinstance(base, dict) and isinstance(patch, dict):
        out = dict(base)
        for key, value in patch.items():
            out[key] = deep_merge(base.get(key), value)
        return out
    return patch


def compare(expected: Any, actual: Any, exact: bool, path: str = "calls") -> list[str]:
    """Readable differences between expected and actual (empty when they match)."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        out: list[str] = []
        for key, value in expected.items():
            if key not in actual:
                out.append(f"{path}.{key}: expected {_show(value)}, but it is missing")
            else:
                out.extend(compare(value, actual[key], exact, f"{path}.{key}"))
        if exact:
            out.extend(
                f"{path}.{key}: not expected, got {_show(actual[key])}"
                for key in actual
                if key not in expected
            )
        return out
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [
                f"{path}: expected {len(expected)} item(s), got {len(actual)}: {_summary(actual)}"
            ]
        out = []
        for i, (e, a) in enumerate(zip(expected, actual, strict=True)):
            out.extend(compare(e, a, exact, f"{path}[{i}]"))
        return out
    if _same(expected, actual):
        return []
    return [f"{path}: expected {_show(expected)}, got {_show(actual)}"]


def _same(expected: Any, actual: Any) -> bool:
    """Equal, numbers compared exactly: a YAML float means the decimal written in the
    file (``19.99``), which a Decimal amount must equal digit for digit."""
    if isinstance(expected, bool) != isinstance(actual, bool):
        return False
    if isinstance(expected, float) and isinstance(actual, Decimal):
        return Decimal(repr(expected)) == actual
    if isinstance(actual, float) and isinstance(expected, Decimal):
        return Decimal(repr(actual)) == expected
    return bool(expected == actual)


def _show(value: Any) -> str:
    text = codec.dumps(value).decode() if isinstance(value, Decimal) else repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def _summary(calls: list[Any]) -> str:
    names = []
    for call in calls:
        if isinstance(call, dict):
            names.append(str(call.get("event") or call.get("type")))
        else:
            names.append(repr(call))
    return "[" + ", ".join(names) + "]"


def run_file(path: Path, environ: MappingABC[str, str], mapping_path: Path | None = None) -> Report:
    """Run every case of one test file against its mapping (``mapping_path``: a
    mapping that extends the one the cases were written for)."""
    report = Report()
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        report.problems.append(Problem(file, 1, 1, "test", f"cannot read: {exc}"))
        return report
    data, positions, problems = read_yaml(text, file, {})
    report.problems.extend(problems)
    if data is None:
        return report
    try:
        spec = CaseFile.model_validate(data)
    except ValidationError as exc:
        for p in schema_problems(exc, data, positions, file):
            report.problems.append(Problem(p.file, p.line, p.col, "test", p.message))
        return report
    own_path = path.parent / (spec.mapping or path.name.removesuffix(TESTS_SUFFIX) + ".yaml")
    base: Mapping | None = None
    if mapping_path is not None:
        base, load_problems = load_file(own_path, _Placeholder(environ))
        if base is None:
            report.problems.extend(load_problems)
            return report
    mapping, load_problems = load_file(mapping_path or own_path, _Placeholder(environ))
    if mapping is None:
        report.problems.extend(load_problems)
        return report
    changed = set(mapping.changed_rules)
    for i, case in enumerate(spec.cases):
        line = positions.value(("cases", i))[0]
        result = run_case(mapping, case, file, line, i)
        if base is not None and changed:
            # A case is the operator's to re-check when a rule it changed takes part,
            # in the shipped mapping or in theirs.
            touched = (run_case(base, case, file, line, i).rules | result.rules) & changed
            if touched:
                report.skipped.append(
                    f"{file}:{line}: {case.name} (rule {', '.join(sorted(touched))} "
                    f"changed by {mapping_path})"
                )
                continue
        if mapping_path is not None:
            result.name = f"{case.name} [against {mapping_path}]"
        report.results.append(result)
    if mapping_path is None:
        exercised = set().union(*(r.rules for r in report.results)) if report.results else set()
        report.untested = [
            f"{own_path}: rule {r.name!r}" for r in mapping.rules if r.name not in exercised
        ]
    return report


def run_case(mapping: Mapping, case: Case, file: str, line: int, index: int) -> CaseResult:
    """Run one case (identity store in memory)."""
    result = CaseResult(file, case.name, line)
    body = deep_merge(case.event, case.patch) if case.patch else case.event
    # Where id, type and time come from is the provider's business (body or headers).
    facts = mapping.plugin().facts(body, {})
    event_type = case.type or facts.type
    if event_type is None:
        result.failures.append("no event type: give `type:` (the event body has none)")
        return result
    default_time = facts.time if facts.time is not None else 0.0
    envelope = Envelope(
        source=mapping.source,
        id=case.id or facts.id or f"case-{index}",
        type=event_type,
        time=case.time if case.time is not None else default_time,
        received_at=0.0,
        body=body,
    )
    if case.ignored:
        if mapping.handles(event_type):
            result.failures.append(f"expected no rule to take {event_type!r}, but one does")
        return result
    if not mapping.handles(event_type):
        result.failures.append(f"no rule takes event type {event_type!r}")
        return result
    store = MemoryIdentityStore(case.identity, case.claimed)
    try:
        result.rules = set(matched_rules(mapping, envelope))
        calls = mapping.evaluate(envelope, store)
    except MappingError as exc:
        if case.error is None:
            result.failures.append(f"mapping error: {exc.message}")
        elif case.error not in exc.message:
            result.failures.append(f"expected an error containing {case.error!r}, got: {exc}")
        return result
    if case.error is not None:
        result.failures.append(f"expected an error containing {case.error!r}, got calls")
        return result
    if case.expect is None:
        result.failures.append("the case says nothing to expect: add `expect`")
        return result
    result.failures.extend(compare(case.expect, calls, case.match == "exact"))
    return result


def matched_rules(mapping: Mapping, envelope: Envelope) -> list[str]:
    """Names of the rules whose ``on`` and ``when`` take this event."""
    names = []
    for rule in mapping.rules_for(envelope.type):
        if rule.when is None or truthy(rule.when.search(envelope.body)):
            names.append(rule.name)
    return names


def _extends(path: Path, environ: MappingABC[str, str]) -> Path | None:
    """The shipped test file of the mapping ``path`` extends, if it has one."""
    if not path.is_file() or path.name.endswith(TESTS_SUFFIX):
        return None
    mapping, _ = load_file(path, _Placeholder(environ))
    if mapping is None or mapping.extends is None:
        return None
    from bridge.mappings.layers import shipped_dir

    shipped = shipped_dir() / f"{mapping.extends}{TESTS_SUFFIX}"
    return shipped if shipped.is_file() else None


def run(paths: list[Path], environ: MappingABC[str, str]) -> Report:
    """Run the test files named by ``paths`` (and, for mappings that extend a shipped
    one, the shipped cases against them)."""
    started = time.perf_counter()
    report = Report()
    runs: list[tuple[Path, Path | None]] = [(p, None) for p in mapping_files(paths, "tests")]
    for extending in mapping_files(paths, "mappings"):
        shipped = _extends(extending, environ)
        if shipped is not None:
            runs.append((shipped, extending))
            own = extending.with_name(source_of(extending) + TESTS_SUFFIX)
            if not own.exists() and (own, None) in runs:
                runs.remove((own, None))  # its cases are the shipped ones
    for path, mapping_path in runs:
        if not path.exists():
            mapping = path.with_name(path.name.removesuffix(TESTS_SUFFIX) + ".yaml")
            if mapping.exists() and _collects(mapping):
                continue  # a collection source has no rules to test
            report.problems.append(Problem(str(path), 1, 1, "test", "no such test file"))
            continue
        one = run_file(path, environ, mapping_path)
        report.results.extend(one.results)
        report.problems.extend(one.problems)
        report.untested.extend(one.untested)
        report.skipped.extend(one.skipped)
    report.seconds = time.perf_counter() - started
    return report
