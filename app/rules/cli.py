"""`firstcontact rules check PATH`: validate packs without starting the service."""

from __future__ import annotations

from pathlib import Path

import typer

from app.rules import loader
from app.rules.loader import PackLoadError


def check(path: Path, *, shipped: bool = True, max_window_days: int | None = None) -> int:
    """Load PATH (a pack file or a directory) as RULES_DIR would be loaded: after the shipped
    packs, replacing those with the same id, so references between packs are checked too.
    Prints `file:line: reason` per problem on stderr; returns the exit code (0 ok, 1 not)."""
    try:
        rules = loader.load_paths([path], shipped=shipped, max_window_days=max_window_days)
    except PackLoadError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        typer.echo(f"{len(exc.problems)} problem(s); nothing would be loaded", err=True)
        return 1
    for loaded in rules.packs:
        typer.echo(f"ok  {loaded.ref:<32} {loaded.pack.kind:<8} {loaded.origin:<8} {loaded.source}")
    return 0
