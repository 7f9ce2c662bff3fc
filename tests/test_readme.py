"""README.md stays true: its commands exist, its tables match the code, its Python runs.

(The two quick-start scripts are run by tests/cli/test_dev.py and by CI itself; the
mapping, dlq, send and healthcheck commands by their own tests.)
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess

import pytest
from redis import Redis

from bridge.devtools.collector import Collector
from bridge.metrics import COUNTERS, DERIVED, GAUGES, HISTOGRAMS
from bridge.settings import Settings, settings_spec
from tests.processes import BIN, ROOT

README = (ROOT / "README.md").read_text()


def blocks(language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)```", README, flags=re.S)


def bridge_commands() -> list[list[str]]:
    """Every `bridge …` command line in the README's shell blocks, without options."""
    found = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("bridge "):
                words = [w for w in shlex.split(line.split(">")[0]) if w.isidentifier()]
                found.append(words)
    return found


def test_readme_shows_the_bridge_commands() -> None:
    names = {" ".join(c[:2]) for c in bridge_commands()}
    assert {"bridge mappings", "bridge preview", "bridge dlq"} <= names


@pytest.mark.parametrize("command", bridge_commands(), ids=" ".join)
def test_every_bridge_command_in_the_readme_exists(command: list[str]) -> None:
    # The command and its subcommand (e.g. `bridge dlq replay`) answer --help.
    depth = 3 if command[1] in {"mappings", "dlq"} and len(command) > 2 else 2
    result = subprocess.run(
        [str(BIN / "bridge"), *command[1:depth], "--help"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_quick_start_commands_are_the_scripts_ci_runs() -> None:
    quick = blocks("sh")[0]
    assert "./scripts/dev" in quick
    assert "./scripts/test" in quick
    ci = (ROOT / ".ci" / "run").read_text()
    assert "./scripts/test" in ci


#: Variables the configuration table documents that bridge itself does not read.
#: Variables bridge reads that are not settings: gunicorn's, and those the shipped mapping
#: files interpolate (`${BRIDGE_WRITE_KEYS}`, `${SQUARE_WEBHOOK_URL}`, secrets).
NOT_SETTINGS = {"WEB_CONCURRENCY"} | {
    m.group(1)
    for path in (ROOT / "mappings").glob("*.yaml")
    for m in re.finditer(r"\$\{([A-Z0-9_]+)", path.read_text())
}


def configuration_rows() -> dict[str, tuple[str, str]]:
    """Variable -> (meaning, default) from the README's "Configuration" table.

    A row naming two variables (`` `A` / `B` `` with defaults `` `1` / `300` ``) gives
    each its own default.
    """
    section = README.split("\n## Configuration\n", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        row = re.fullmatch(r"\| (`[A-Z_]+`(?: / `[A-Z_]+`)*) \| (.+) \| (.+) \|", line)
        if row is None:
            continue
        names = re.findall(r"`([A-Z_]+)`", row[1])
        defaults = row[3].split(" / ") if len(names) > 1 else [row[3]]
        assert len(defaults) == len(names), f"one default per variable: {line}"
        for name, default in zip(names, defaults, strict=True):
            rows[name] = (row[2], default)
    return rows


def test_configuration_table_agrees_with_the_settings_spec() -> None:
    rows = configuration_rows()
    spec = settings_spec()
    assert [s.variable for s in spec] == [
        str(f.validation_alias.choices[0])  # type: ignore[union-attr]
        for n, f in Settings.model_fields.items()
        if n != "environ"
    ]
    for setting in spec:
        assert setting.variable in rows, f"{setting.variable} is missing from the README's table"
        meaning, default = rows[setting.variable]
        assert default == setting.default, f"{setting.variable}: README says {default}"
        assert setting.meaning, f"{setting.variable} has no description in bridge/settings.py"
        assert meaning.strip(), f"{setting.variable} has no meaning in the README's table"
    unknown = set(rows) - {s.variable for s in spec} - NOT_SETTINGS
    assert not unknown, f"the README documents variables bridge does not read: {unknown}"


def test_metrics_table_lists_every_metric() -> None:
    names = [c.name for c in COUNTERS] + [c.name for c in DERIVED]
    names += [h.name for h in HISTOGRAMS] + list(GAUGES)
    for name in names:
        assert name in README, f"{name} is missing from the README's metrics table"


def test_python_example_sends_a_call(
    redis: Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # "Sending your own calls" (the collection section's Flask snippets are run by
    # tests/collect/test_middleware.py).
    [example] = [b for b in blocks("python") if "Report Exported" in b]
    with Collector() as collector:
        monkeypatch.setenv("REDIS_URL", redis_url)
        monkeypatch.setenv("SEGMENT_ENDPOINT", collector.url)
        monkeypatch.delenv("SEGMENT_WRITE_KEY", raising=False)
        exec(compile(example, "README.md", "exec"), {})  # noqa: S102 (our own README)
        assert collector.wait_for_calls(1, timeout=10)
        [call] = collector.calls
    assert (call["type"], call["userId"], call["event"]) == ("track", "u1", "Report Exported")
    assert os.environ["REDIS_URL"] == redis_url
