"""The shipped catalogue ships inside the package: a wheel carries mappings/ as
bridge/shipped/, and an installed bridge reads it from there."""

from __future__ import annotations

import os
import shutil
import subprocess
import zipfile
from pathlib import Path

from tests.processes import BIN, ROOT


def test_a_wheel_carries_the_shipped_mappings_and_reads_them(tmp_path: Path) -> None:
    # Build from a copy: an in-tree build would leave build/ in the checkout.
    src = tmp_path / "src"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(".git", ".venv", "build", "*.egg-info", "__pycache__", ".*"),
    )
    subprocess.run(
        [str(BIN / "pip"), "wheel", "-q", "--no-deps", "-w", str(tmp_path / "dist"), str(src)],
        check=True,
        timeout=300,
    )
    [wheel] = (tmp_path / "dist").glob("bridge-*.whl")
    shipped = sorted(p.name for p in (ROOT / "mappings").glob("*.yaml"))
    with zipfile.ZipFile(wheel) as archive:
        inside = sorted(
            n.removeprefix("bridge/shipped/")
            for n in archive.namelist()
            if n.startswith("bridge/shipped/")
        )
        assert inside == shipped
        assert (
            archive.read("bridge/shipped/stripe.yaml")
            == (ROOT / "mappings/stripe.yaml").read_bytes()
        )

    target = tmp_path / "site"
    subprocess.run(
        [str(BIN / "pip"), "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
        check=True,
        timeout=300,
    )
    # The installed copy wins over the checkout (PYTHONPATH comes before the editable
    # install's finder); run from a folder without ./mappings, like the image's /app.
    result = subprocess.run(
        [str(BIN / "python"), "-m", "bridge", "sources", "--json"],
        env={**os.environ, "PYTHONPATH": str(target), "STRIPE_WEBHOOK_SECRET": "s"},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert f'"file": "{target}/bridge/shipped/stripe.yaml"' in result.stdout
