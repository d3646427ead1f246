"""A rule pack's problems, each at its file and line, and a pack as parsed (its source map
kept so that later checks can point at a line too)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from app.rules import sourcemap
from app.rules.errors import RulesError
from app.rules.ruleset import AnyPack


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class PackLoadError(RulesError):
    """The packs are invalid; `problems` lists each with its file and line."""

    code = "invalid_rule_pack"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            "invalid rule pack(s):\n" + "\n".join(str(p) for p in self.problems),
            details=[{"file": p.file, "line": p.line, "reason": p.reason} for p in self.problems],
        )


@dataclass
class ParsedPack:
    pack: AnyPack
    data: Any
    source: sourcemap.SourceMap
    file: str
    origin: Literal["shipped", "force"]

    def at(self, path: tuple[Any, ...], reason: str) -> Problem:
        return Problem(self.file, self.source.line_of(self.data, path), reason)
