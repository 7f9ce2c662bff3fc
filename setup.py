"""Build hook: ship the repository's ``mappings/`` inside the package.

The shipped catalogue stays in ``mappings/`` (where it is edited and reviewed); a wheel,
and so the image, carries a copy as ``bridge/shipped/*.yaml``, which
:func:`bridge.mappings.layers.shipped_dir` prefers. A checkout or an editable install
reads ``mappings/`` itself. Everything else is in pyproject.toml.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py


class BuildPyWithCatalogue(build_py):
    """``build_py`` that also copies ``mappings/*.yaml`` to ``bridge/shipped/``."""

    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads mappings/ in place
            return
        source = Path(__file__).resolve().parent / "mappings"
        target = Path(self.build_lib) / "bridge" / "shipped"
        target.mkdir(parents=True, exist_ok=True)
        for path in sorted(source.glob("*.yaml")):
            shutil.copy2(path, target / path.name)


setup(cmdclass={"build_py": BuildPyWithCatalogue})
