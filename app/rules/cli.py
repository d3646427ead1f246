"""`firstcontact rules check PATH`: validate packs without starting the service."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import typer

from app.rules import lint, loader
from app.rules.loader import PackLoadError, Problem


def check(path: Path, *, shipped: bool = True, max_window_days: int | None = None) -> int:
    """Load PATH (a pack file or a directory) as RULES_DIR would be loaded: after the shipped
    packs, replacing those with the same id, so references between packs are checked too;
    then check the content (`app.rules.lint`: sources, reused ids, near duplicates).
    Prints `file:line: reason` per problem on stderr; returns the exit code (0 ok, 1 not)."""
    try:
        parsed = loader.collect([path], shipped=shipped)
        rules = loader.build(parsed, max_window_days=max_window_days)
    except PackLoadError as exc:
        _report(exc.problems, "nothing would be loaded")
        return 1
    problems = lint.lint(parsed, rules)
    if problems:
        _report(problems, "the service would load these packs, but fix them first")
        return 1
    for loaded in rules.packs:
        typer.echo(f"ok  {loaded.ref:<32} {loaded.pack.kind:<8} {loaded.origin:<8} {loaded.source}")
    return 0


def _report(problems: Sequence[Problem], outcome: str) -> None:
    for problem in problems:
        typer.echo(str(problem), err=True)
    typer.echo(f"{len(problems)} problem(s); {outcome}", err=True)
