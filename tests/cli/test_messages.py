"""Messages a new user reads: each says what is wrong in their terms (the variable, the
folder, the direction of a clock skew), as the ``bridge`` console script prints them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from bridge.errors import TimestampOutOfTolerance
from bridge.providers.base import check_tolerance
from tests.processes import BIN


def run(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "bridge"), *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize(
    "args", [("mappings", "check"), ("mappings", "test"), ("preview", "stripe", "e.json")]
)
def test_a_missing_mappings_folder_is_named_with_its_variable(
    tmp_path: Path, args: tuple[str, ...]
) -> None:
    (tmp_path / "e.json").write_text("{}")
    result = run(*args, env={"BRIDGE_MAPPINGS_DIR": "/nope"}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: BRIDGE_MAPPINGS_DIR=/nope: the folder does not exist"
    assert "yaml" not in result.stdout + result.stderr


def test_without_the_variable_and_the_folder_the_shipped_catalogue_is_checked(
    tmp_path: Path,
) -> None:
    # BRIDGE_MAPPINGS_DIR unset and no ./mappings: no operator layer, which is fine.
    env = {k: v for k, v in os.environ.items() if k != "BRIDGE_MAPPINGS_DIR"}
    result = subprocess.run(
        [sys.executable, "-m", "bridge", "mappings", "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "info: source 'stripe' is off" in result.stdout
    # clerk, github, site, stripe and the ten revenue providers
    assert result.stdout.splitlines()[-1].startswith("OK: 14 mapping(s)")


def test_a_path_given_that_does_not_exist(tmp_path: Path) -> None:
    result = run("mappings", "check", "missing.yaml", env={}, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == "error: missing.yaml: no such file or folder"


@pytest.mark.parametrize(
    ("timestamp", "text"),
    [
        (1_000_000 + 999, "signed timestamp is too far in the future (999 s ahead"),
        (1_000_000 - 999, "signed timestamp is too old (999 s ago"),
    ],
)
def test_a_timestamp_out_of_tolerance_says_which_way(timestamp: int, text: str) -> None:
    with pytest.raises(TimestampOutOfTolerance) as info:
        check_tolerance(timestamp, tolerance=300, now=1_000_000)
    assert str(info.value).startswith(text)
    assert "-999" not in str(info.value)
