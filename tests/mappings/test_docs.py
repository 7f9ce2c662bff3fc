"""docs/mappings.md: its YAML is linted, and its reference matches the schema."""

from __future__ import annotations

import re

import pytest
import yaml

from bridge.mappings import load_text
from bridge.mappings.casetests import CaseFile
from bridge.mappings.spec import reference_markdown
from tests.conftest import ROOT

DOC = (ROOT / "docs" / "mappings.md").read_text()
BLOCKS = re.findall(r"^( *)```yaml\n(.*?)^\1```", DOC, re.S | re.M)
ENV = {"STRIPE_WEBHOOK_SECRET": "s", "PADDLE_WEBHOOK_SECRET": "p"}


def dedent(indent: str, text: str) -> str:
    return "\n".join(line.removeprefix(indent) for line in text.splitlines()) + "\n"


def test_the_docs_have_yaml_examples() -> None:
    assert len(BLOCKS) >= 4


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_yaml_block_is_valid(index: int) -> None:
    text = dedent(*BLOCKS[index])
    data = yaml.safe_load(text)
    if "cases" in data:
        CaseFile.model_validate(data)
    else:
        mapping, problems = load_text(text, "doc", ENV, f"docs/mappings.md block {index}")
        assert [str(p) for p in problems] == []
        assert mapping is not None


def test_reference_is_generated_from_the_schema() -> None:
    start = DOC.index("<!-- reference:start -->\n") + len("<!-- reference:start -->\n")
    end = DOC.index("<!-- reference:end -->")
    assert DOC[start:end] == reference_markdown(), "regenerate: reference_markdown()"
