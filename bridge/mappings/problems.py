"""What lint finds: one :class:`Problem` per mistake, printed ``file:line:col: kind: message``."""

from __future__ import annotations

from dataclasses import dataclass

#: The kinds of problem, as printed (stable: scripts may grep for them).
KINDS = {
    "yaml": "the file is not valid YAML",
    "unknown-key": "a key the schema does not define",
    "required": "a required key or value is missing",
    "schema": "a value of the wrong type or shape",
    "expression": "a JMESPath expression that does not compile",
    "pattern": "an event-type pattern in `on` that is not valid",
    "provider": "a provider no plugin registers",
    "secret": "a secret variable that is unset, or no secret at all",
    "env": "an unset ${VAR} without default outside `secrets`",
    "identity": "a rule that emits calls but can never name a user",
    "test": "a mapping test case that is malformed",
}


@dataclass(frozen=True, slots=True)
class Problem:
    """One finding, with a 1-based line and column."""

    file: str
    line: int
    col: int
    kind: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}: {self.kind}: {self.message}"
