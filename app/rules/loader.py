"""Load and validate rule packs: every problem reported as `file:line: reason`.

Shipped defaults live in `app/rules/packs/`; a force's own directory (`RULES_DIR`) comes
after and replaces any shipped pack with the same `pack:` id, so a force copies a file,
edits it, and keeps the rest. Nothing is half-loaded: a set with any problem is refused
whole, which at start-up stops the service and on reload keeps the packs already loaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from app.rules import sourcemap
from app.rules.assemble import build
from app.rules.problems import PackLoadError, ParsedPack, Problem
from app.rules.ruleset import RuleSet
from app.rules.schema import Pack

SHIPPED_DIR = Path(__file__).resolve().parent / "packs"
_PACK = TypeAdapter(Pack)
_SUFFIXES = (".yaml", ".yml")


def _describe(error: Any, data: Any) -> str:
    loc = [str(part) for part in error["loc"]]
    kind = error["type"]
    if kind not in ("extra_forbidden", "missing"):
        # Name the place by the keys a pack editor wrote, not pydantic's union tags.
        loc = [str(part) for part in sourcemap.resolve(data, tuple(error["loc"]))] or loc[-1:]
    if kind == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if kind == "missing":
        return f"missing key {loc[-1]!r}"
    where = ".".join(loc)
    message = str(error["msg"])
    if kind == "literal_error" and loc:
        return f"{loc[-1]}: unknown value; {message[0].lower()}{message[1:]}"
    if kind == "union_tag_invalid":
        return f"{where + ': ' if where else ''}unknown kind; {message}"
    return f"{where}: {message}" if where else message


def parse_file(path: Path, origin: Literal["shipped", "force"] = "force") -> ParsedPack:
    """One pack file, validated on its own; raises PackLoadError with its problems."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PackLoadError([Problem(name, 1, f"cannot read: {exc}")]) from exc
    try:
        data, source = sourcemap.load(text)
    except sourcemap.SourceError as exc:
        raise PackLoadError([Problem(name, exc.line, exc.reason)]) from exc
    if not isinstance(data, dict):
        raise PackLoadError([Problem(name, 1, "a pack is a mapping with pack:, version:, kind:")])
    try:
        pack = _PACK.validate_python(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors(include_url=False):
            loc = tuple(err["loc"])
            if err["type"] == "union_tag_invalid":
                loc = (*loc, "kind")  # point at the offending `kind:` line
            problems.append(Problem(name, source.line_of(data, loc), _describe(err, data)))
        raise PackLoadError(problems) from exc
    return ParsedPack(pack, data, source, name, origin)


def _files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_file() and p.suffix in _SUFFIXES)


def load_paths(
    paths: Sequence[Path],
    *,
    shipped: bool = True,
    now: datetime | None = None,
    max_window_days: int | None = None,
) -> RuleSet:
    """Load the shipped packs (unless `shipped=False`) and then each path (a pack file or a
    directory of them), later packs replacing earlier ones with the same id.

    `max_window_days`: how far back the history lookup reads (HISTORY_HORIZON_DAYS); a rule
    looking further back would silently undercount, so it is refused."""
    return build(collect(paths, shipped=shipped), now=now, max_window_days=max_window_days)


def collect(paths: Sequence[Path], *, shipped: bool = True) -> list[ParsedPack]:
    """The packs `load_paths` would build from, each validated on its own and with its
    source map (so `rules check` can point its content checks at lines); PackLoadError."""
    problems: list[Problem] = []
    chosen: dict[str, ParsedPack] = {}
    sources: list[tuple[Path, Literal["shipped", "force"]]] = []
    if shipped:
        sources.append((SHIPPED_DIR, "shipped"))
    sources.extend((Path(p), "force") for p in paths)
    for location, origin in sources:
        if location.is_dir():
            files = _files(location)
        elif location.is_file():
            files = [location]
        else:
            problems.append(Problem(str(location), 1, "no such file or directory"))
            continue
        here: dict[str, str] = {}
        for file in files:
            try:
                parsed = parse_file(file, origin)
            except PackLoadError as exc:
                problems.extend(exc.problems)
                continue
            pack_id = parsed.pack.pack
            if pack_id in here:
                problems.append(
                    parsed.at(("pack",), f"pack {pack_id!r} is also defined in {here[pack_id]}")
                )
                continue
            here[pack_id] = parsed.file
            chosen.pop(pack_id, None)  # re-insert so the override takes the later position
            chosen[pack_id] = parsed
    if problems:
        raise PackLoadError(problems)
    return list(chosen.values())


def load_configured(rules_dir: Path | str | None, max_window_days: int | None = None) -> RuleSet:
    """What the service loads: the shipped packs plus the force's `RULES_DIR`, if set."""
    return load_paths([Path(rules_dir)] if rules_dir else [], max_window_days=max_window_days)


# `Problem` and `PackLoadError` are part of this module's interface (callers import them
# from here); `build` is the cross-pack step, in app/rules/assemble.py.
__all__ = [
    "SHIPPED_DIR",
    "PackLoadError",
    "ParsedPack",
    "Problem",
    "build",
    "collect",
    "load_configured",
    "load_paths",
    "parse_file",
]
