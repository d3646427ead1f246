"""The QA form pack: its schema, its loader (problems as `file:line: reason`) and its checks.

The shipped form is `app/qa/packs/qa.yaml`. A force's own form goes in `RULES_DIR/qa/` (a
folder of its own: the rule-pack loader reads `RULES_DIR`'s top level and would refuse a pack
kind it does not know) and replaces the shipped form whatever its `pack:` id, since a service
grades against one form at a time. Like the rule packs, nothing is half-loaded: a form with
any problem is refused whole, and at start-up the service does not start.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, StringConstraints, ValidationError
from pydantic_core import ErrorDetails

from app.errors import Unprocessable
from app.rules import sourcemap
from app.rules.loader import Problem
from app.rules.schema import PackHeader, Strict
from app.rules.vocabulary import Id, Text

log = logging.getLogger(__name__)

SHIPPED_FORM = Path(__file__).resolve().parent / "packs" / "qa.yaml"
FORCE_SUBDIR = "qa"  # RULES_DIR/qa/*.yaml
NOT_APPLICABLE = "not_applicable"
_SUFFIXES = (".yaml", ".yml")

Label = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class StandardSpec(Strict):
    id: Id
    title: Label
    # The table's row for this standard, in the force's words.
    report_label: Label
    guidance: Text
    # The scale, best first; `not_applicable` is not written here (see below).
    answers: list[Id] = Field(min_length=1, max_length=20)
    met: list[Id] = Field(min_length=1)
    # May the reviewer answer `not_applicable` (the call leaves this standard's denominator)?
    not_applicable: bool = False
    # The standard applies to every call whose assessment records a victim: `not_applicable`
    # is refused for those (the repeat-victim check is measured on every call with a victim).
    applies_with_victim: bool = False
    training_module: Id | None = None


class PracticeSpec(Strict):
    standard: Id
    alert_kinds: list[Id] = Field(min_length=1)


class ModuleSpec(Strict):
    id: Id
    title: Label


class QaFormPack(PackHeader):
    kind: Literal["qa_form"]
    standards: list[StandardSpec] = Field(min_length=1, max_length=50)
    practice: PracticeSpec | None = None
    training_modules: list[ModuleSpec] = Field(default_factory=list)


@dataclass(frozen=True)
class Standard:
    id: str
    title: str
    report_label: str
    guidance: str
    answers: tuple[str, ...]  # the scale, `not_applicable` last when allowed
    met: frozenset[str]
    not_applicable_allowed: bool
    training_module: str | None
    applies_with_victim: bool = False


@dataclass(frozen=True)
class QaForm:
    """The loaded form: what reviews are checked against and the report is built from."""

    pack: str
    version: str
    source: str
    origin: Literal["shipped", "force"]
    standards: tuple[Standard, ...]
    practice_standard: str | None
    practice_alert_kinds: tuple[str, ...]
    modules: tuple[ModuleSpec, ...]

    @property
    def ref(self) -> str:
        return f"{self.pack}@{self.version}"

    def standard(self, standard_id: str) -> Standard | None:
        return next((s for s in self.standards if s.id == standard_id), None)

    @property
    def module_ids(self) -> tuple[str, ...]:
        return tuple(m.id for m in self.modules)


class QaFormError(Unprocessable):
    """The form is invalid; `problems` lists each with its file and line."""

    code = "invalid_qa_form"

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            "invalid QA form:\n" + "\n".join(str(p) for p in self.problems),
            details=[{"file": p.file, "line": p.line, "reason": p.reason} for p in self.problems],
        )


def _describe(error: ErrorDetails) -> str:
    loc = [str(part) for part in error["loc"]]
    if error["type"] == "extra_forbidden":
        return f"unknown key {loc[-1]!r}"
    if error["type"] == "missing":
        return f"missing key {loc[-1]!r}"
    where = ".".join(loc)
    return f"{where}: {error['msg']}" if where else str(error["msg"])


def parse_file(path: Path, origin: Literal["shipped", "force"] = "force") -> QaForm:
    """One form file, validated; raises QaFormError listing every problem with its line."""
    name = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise QaFormError([Problem(name, 1, f"cannot read: {exc}")]) from exc
    try:
        data, source = sourcemap.load(text)
    except sourcemap.SourceError as exc:
        raise QaFormError([Problem(name, exc.line, exc.reason)]) from exc
    if not isinstance(data, dict):
        raise QaFormError([Problem(name, 1, "a QA form is a mapping with pack:, version:, kind:")])
    try:
        pack = QaFormPack.model_validate(data)
    except ValidationError as exc:
        raise QaFormError(
            Problem(name, source.line_of(data, tuple(err["loc"])), _describe(err))
            for err in exc.errors(include_url=False)
        ) from exc

    problems: list[Problem] = []

    def at(path: tuple[str | int, ...], reason: str) -> None:
        problems.append(Problem(name, source.line_of(data, path), reason))

    module_ids: set[str] = set()
    for mi, module in enumerate(pack.training_modules):
        if module.id in module_ids:
            at(("training_modules", mi, "id"), f"training module {module.id!r} is defined twice")
        module_ids.add(module.id)
    standards: list[Standard] = []
    seen: set[str] = set()
    for si, spec in enumerate(pack.standards):
        here = ("standards", si)
        if spec.id in seen:
            at((*here, "id"), f"standard {spec.id!r} is defined twice")
        seen.add(spec.id)
        if NOT_APPLICABLE in spec.answers:
            at(
                (*here, "answers"),
                f"{NOT_APPLICABLE!r} is not on the scale: allow it with not_applicable: true",
            )
        if len(set(spec.answers)) != len(spec.answers):
            at((*here, "answers"), "an answer is listed twice")
        for ai, answer in enumerate(spec.met):
            if answer not in spec.answers:
                at((*here, "met", ai), f"met answer {answer!r} is not on the scale")
        if set(spec.met) == set(spec.answers):
            at((*here, "met"), "every answer counts as met: the standard would measure nothing")
        if spec.training_module is not None and spec.training_module not in module_ids:
            at(
                (*here, "training_module"),
                f"unknown training module {spec.training_module!r} (add it under "
                "training_modules:)",
            )
        standards.append(
            Standard(
                id=spec.id,
                title=spec.title,
                report_label=spec.report_label,
                guidance=spec.guidance,
                answers=(*spec.answers, *((NOT_APPLICABLE,) if spec.not_applicable else ())),
                met=frozenset(spec.met),
                not_applicable_allowed=spec.not_applicable,
                training_module=spec.training_module,
                applies_with_victim=spec.applies_with_victim,
            )
        )
    if pack.practice is not None and pack.practice.standard not in seen:
        at(("practice", "standard"), f"unknown standard {pack.practice.standard!r}")
    if problems:
        raise QaFormError(problems)
    return QaForm(
        pack=pack.pack,
        version=pack.version,
        source=name,
        origin=origin,
        standards=tuple(standards),
        practice_standard=pack.practice.standard if pack.practice else None,
        practice_alert_kinds=tuple(pack.practice.alert_kinds) if pack.practice else (),
        modules=tuple(pack.training_modules),
    )


def _force_files(location: Path) -> list[Path]:
    if location.is_file():
        return [location]
    return sorted(p for p in location.iterdir() if p.is_file() and p.suffix in _SUFFIXES)


def load(rules_dir: Path | str | None) -> QaForm:
    """The form the service grades against: the force's (`RULES_DIR/qa/`) if it has one,
    else the shipped one. Raises QaFormError."""
    if rules_dir is not None:
        location = Path(rules_dir) / FORCE_SUBDIR
        if location.exists():
            return load_path(location)
    return parse_file(SHIPPED_FORM, "shipped")


def load_path(location: Path) -> QaForm:
    """A force's form from a file or a folder holding exactly one form file."""
    if not location.exists():
        raise QaFormError([Problem(str(location), 1, "no such file or directory")])
    files = _force_files(location)
    if not files:
        return parse_file(SHIPPED_FORM, "shipped")
    if len(files) > 1:
        raise QaFormError(
            [
                Problem(str(f), 1, "one QA form at a time: keep a single file in this folder")
                for f in files
            ]
        )
    return parse_file(files[0], "force")


def load_at_start(rules_dir: Path | str | None) -> QaForm:
    """Load the form or refuse to start, logging every problem as `file:line: reason`."""
    try:
        form = load(rules_dir)
    except QaFormError as exc:
        log.error("QA form refused, not starting:\n%s", "\n".join(str(p) for p in exc.problems))
        raise
    log.info("QA form loaded", extra={"form": form.ref, "origin": form.origin})
    return form
