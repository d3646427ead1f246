"""Load and validate rule packs: every problem reported as `file:line: reason`.

Shipped defaults live in `app/rules/packs/`; a force's own directory (`RULES_DIR`) comes
after and replaces any shipped pack with the same `pack:` id, so a force copies a file,
edits it, and keeps the rest. Nothing is half-loaded: a set with any problem is refused
whole, which at start-up stops the service and on reload keeps the packs already loaded.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import TypeAdapter, ValidationError

from app.errors import Unprocessable
from app.rules import sourcemap
from app.rules.cues import PhraseError, compile_lexicon, expand_phrase
from app.rules.ruleset import (
    AdviceItem,
    AnyPack,
    IncidentType,
    LoadedPack,
    Prompt,
    RuleRef,
    RuleSet,
)
from app.rules.schema import (
    TEMPLATE_FIELDS,
    AdvicePack,
    AlertPack,
    AllCondition,
    AnyCondition,
    Condition,
    CountCondition,
    CuePack,
    MarkerCondition,
    NotCondition,
    Pack,
    PromptPack,
)

SHIPPED_DIR = Path(__file__).resolve().parent / "packs"
_PACK = TypeAdapter(Pack)
_SUFFIXES = (".yaml", ".yml")
IGNORED = "(ignore)"  # owner of an ignored phrase, in the phrase-clash check


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}: {self.reason}"


class PackLoadError(Unprocessable):
    """The packs are invalid; `problems` lists each with its file and line."""

    code = "invalid_rule_pack"

    def __init__(self, problems: Sequence[Problem]) -> None:
        self.problems = list(problems)
        super().__init__(
            "invalid rule pack(s):\n" + "\n".join(str(p) for p in self.problems),
            details=[{"file": p.file, "line": p.line, "reason": p.reason} for p in self.problems],
        )


@dataclass
class _Parsed:
    pack: AnyPack
    data: Any
    source: sourcemap.SourceMap
    file: str
    origin: Literal["shipped", "force"]

    def at(self, path: tuple[Any, ...], reason: str) -> Problem:
        return Problem(self.file, self.source.line_of(self.data, path), reason)


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


def parse_file(path: Path, origin: Literal["shipped", "force"] = "force") -> _Parsed:
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
    return _Parsed(pack, data, source, name, origin)


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
    problems: list[Problem] = []
    chosen: dict[str, _Parsed] = {}
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
    return build(list(chosen.values()), now=now, max_window_days=max_window_days)


def load_configured(rules_dir: Path | str | None, max_window_days: int | None = None) -> RuleSet:
    """What the service loads: the shipped packs plus the force's `RULES_DIR`, if set."""
    return load_paths([Path(rules_dir)] if rules_dir else [], max_window_days=max_window_days)


# ---- cross-pack checks and indexing -------------------------------------------------------


def _leaf_kinds(condition: Condition) -> list[str]:
    if isinstance(condition, AllCondition | AnyCondition):
        return [kind for part in condition.of for kind in _leaf_kinds(part)]
    if isinstance(condition, NotCondition):
        return []  # a negated condition justifies nothing, so offers no placeholders
    return [condition.kind]


def _walk(
    condition: Condition, path: tuple[Any, ...]
) -> Iterable[tuple[Condition, tuple[Any, ...]]]:
    yield condition, path
    if isinstance(condition, AllCondition | AnyCondition):
        for index, part in enumerate(condition.of):
            yield from _walk(part, (*path, "of", index))
    elif isinstance(condition, NotCondition):
        yield from _walk(condition.condition, (*path, "condition"))


def _template_problem(template: str, allowed: frozenset[str]) -> str | None:
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"bad template: {exc} (write {{{{ and }}}} for literal braces)"
    for _literal, name, spec, conversion in parts:
        if name is None:
            continue
        if not name.isidentifier() or spec or conversion:
            return f"bad placeholder {{{name}}}: only plain {{name}} is allowed"
        if name not in allowed:
            offered = ", ".join(sorted(allowed)) or "none"
            return f"unknown placeholder {{{name}}} (this rule's condition offers: {offered})"
    return None


def build(
    parsed: list[_Parsed], *, now: datetime | None = None, max_window_days: int | None = None
) -> RuleSet:
    """Check references between packs and index them; raises PackLoadError."""
    problems: list[Problem] = []
    ruleset = RuleSet(
        packs=[LoadedPack(p.pack, p.file, p.origin) for p in parsed],
        loaded_at=now or datetime.now(UTC),
    )
    alerts = [p for p in parsed if isinstance(p.pack, AlertPack)]
    prompts = [p for p in parsed if isinstance(p.pack, PromptPack)]
    advice = [p for p in parsed if isinstance(p.pack, AdvicePack)]
    cues = [p for p in parsed if isinstance(p.pack, CuePack)]

    # Advice first: it defines the incident-type catalogue the others refer to.
    for p in advice:
        assert isinstance(p.pack, AdvicePack)
        for ti, itype in enumerate(p.pack.incident_types):
            if itype.id not in ruleset.incident_types:
                ruleset.incident_types[itype.id] = IncidentType(
                    id=itype.id, name=itype.name, description=itype.description
                )
            items = ruleset.advice.setdefault(itype.id, [])
            for kind in ("preservation", "prevention"):
                for ai, item in enumerate(getattr(itype, kind)):
                    if item.id in ruleset.advice_items:
                        problems.append(
                            p.at(
                                ("incident_types", ti, kind, ai, "id"),
                                f"advice id {item.id!r} is used twice",
                            )
                        )
                        continue
                    advice_item = AdviceItem(
                        id=item.id,
                        kind=kind,
                        incident_type=itype.id,
                        text=item.text,
                        rule=f"{item.id}@{p.pack.version}",
                    )
                    ruleset.advice_items[item.id] = advice_item
                    items.append(advice_item)
    for itype_id, items in ruleset.advice.items():
        # Preservation first: it is the time-critical half (the golden hour).
        items.sort(key=lambda i: 0 if i.kind == "preservation" else 1)
        ruleset.advice[itype_id] = items

    # Alerts: marker catalogue, then rules.
    for p in alerts:
        assert isinstance(p.pack, AlertPack)
        for mi, marker in enumerate(p.pack.markers):
            if marker.id in ruleset.marker_labels:
                problems.append(
                    p.at(("markers", mi, "id"), f"marker {marker.id!r} is defined twice")
                )
            ruleset.marker_labels[marker.id] = marker.label
    rule_ids: set[str] = set()
    alert_keys: set[str] = set(ruleset.marker_labels)
    horizon = 0
    for p in alerts:
        assert isinstance(p.pack, AlertPack)
        for ri, rule in enumerate(p.pack.rules):
            here = ("rules", ri)
            if rule.id in rule_ids:
                problems.append(p.at((*here, "id"), f"rule id {rule.id!r} is used twice"))
            rule_ids.add(rule.id)
            alert_keys.add(rule.alert)
            alert_keys.update(rule.tags)
            for condition, cpath in _walk(rule.when, (*here, "when")):
                if isinstance(condition, MarkerCondition):
                    for ki, kind in enumerate(condition.kinds):
                        if kind not in ruleset.marker_labels:
                            problems.append(
                                p.at(
                                    (*cpath, "kinds", ki),
                                    f"unknown marker kind {kind!r}: add it under markers:",
                                )
                            )
                elif isinstance(condition, CountCondition):
                    horizon = max(horizon, condition.within_days)
                    if max_window_days is not None and condition.within_days > max_window_days:
                        problems.append(
                            p.at(
                                (*cpath, "within_days"),
                                f"looks back {condition.within_days} days but the history "
                                f"lookup reads {max_window_days} (HISTORY_HORIZON_DAYS): "
                                "raise that setting or shorten the window",
                            )
                        )
                    for ti, itype_id in enumerate(condition.incident_types):
                        if itype_id not in ruleset.incident_types:
                            problems.append(
                                p.at(
                                    (*cpath, "incident_types", ti),
                                    f"unknown incident type {itype_id!r}",
                                )
                            )
            kinds = _leaf_kinds(rule.when)
            # Any placeholder a leaf of the condition offers; reasons fall back to the built-in
            # wording for items from leaves that do not offer all of theirs.
            allowed = frozenset().union(*(TEMPLATE_FIELDS[k] for k in kinds))
            for key in ("title", "reason"):
                template = getattr(rule, key)
                if template is None:
                    continue
                issue = _template_problem(template, allowed)
                if issue:
                    problems.append(p.at((*here, key), issue))
            ruleset.alert_rules.append(RuleRef(rule, p.pack.version))
    ruleset.horizon_days = horizon

    # Prompts: the THRIVE+ template's elements, then the prompts on them.
    element_ids: dict[str, str] = {}
    for p in prompts:
        assert isinstance(p.pack, PromptPack)
        for ei, element in enumerate(p.pack.elements):
            if element.id in element_ids:
                problems.append(
                    p.at(("elements", ei, "id"), f"element {element.id!r} is defined twice")
                )
                continue
            element_ids[element.id] = element.name
            ruleset.elements.append(element)
    prompt_ids: set[str] = set()
    for p in prompts:
        assert isinstance(p.pack, PromptPack)
        for pi, prompt in enumerate(p.pack.prompts):
            here = ("prompts", pi)
            if prompt.id in prompt_ids:
                problems.append(p.at((*here, "id"), f"prompt id {prompt.id!r} is used twice"))
            prompt_ids.add(prompt.id)
            if prompt.element not in element_ids:
                problems.append(
                    p.at(
                        (*here, "element"),
                        f"unknown element {prompt.element!r} "
                        f"(known: {', '.join(element_ids) or 'none'})",
                    )
                )
            for ti, itype_id in enumerate(prompt.incident_types):
                if itype_id not in ruleset.incident_types:
                    problems.append(
                        p.at((*here, "incident_types", ti), f"unknown incident type {itype_id!r}")
                    )
            for ki, key in enumerate(prompt.alerts):
                if key not in alert_keys:
                    problems.append(
                        p.at(
                            (*here, "alerts", ki),
                            f"unknown alert {key!r}: not an alert kind, tag or marker kind "
                            "of the loaded alert packs",
                        )
                    )
            ruleset.prompts.append(
                (
                    Prompt(
                        id=prompt.id,
                        element=prompt.element,
                        element_name=element_ids.get(prompt.element, prompt.element),
                        text=prompt.text,
                        reason="general",
                        rule=f"{prompt.id}@{p.pack.version}",
                    ),
                    frozenset(prompt.incident_types),
                    frozenset(prompt.alerts),
                )
            )

    # Cues: phrases compile, each phrase belongs to one cue, one negation section.
    negation = None
    negation_from = ""
    seen_sequences: dict[tuple[str, ...], str] = {}
    cue_ids: set[str] = set()
    ignored: list[str] = []
    strand_input: dict[str, tuple[str, list[tuple[str, str, list[str]]]]] = {}
    # A strand's severity is said once: a force pack adding cues to a shipped strand may
    # leave it out (and keep the shipped one) but may not contradict it.
    strand_severity: dict[str, tuple[str, str]] = {}  # strand id -> (severity, file)
    for p in cues:
        assert isinstance(p.pack, CuePack)
        if p.pack.negation is not None:
            if negation is not None:
                problems.append(
                    p.at(("negation",), f"negation is already defined in {negation_from}")
                )
            else:
                negation, negation_from = p.pack.negation, p.file
                for key in ("before", "breakers", "after"):
                    for wi, phrase in enumerate(getattr(negation, key)):
                        try:
                            expand_phrase(phrase)
                        except PhraseError as exc:
                            problems.append(p.at(("negation", key, wi), str(exc)))
        for ii, phrase in enumerate(p.pack.ignore):
            try:
                sequences = expand_phrase(phrase)
            except PhraseError as exc:
                problems.append(p.at(("ignore", ii), str(exc)))
                continue
            for seq in sequences:
                owner = seen_sequences.get(seq)
                if owner is not None and owner != IGNORED:
                    problems.append(
                        p.at(
                            ("ignore", ii), f"phrase {' '.join(seq)!r} is a phrase of cue {owner!r}"
                        )
                    )
                    break
                seen_sequences[seq] = IGNORED
            else:
                ignored.append(phrase)
        for si, strand in enumerate(p.pack.strands):
            entry = strand_input.setdefault(strand.id, (strand.name, []))
            if strand.severity is not None:
                said = strand_severity.setdefault(strand.id, (strand.severity, p.file))
                if said[0] != strand.severity:
                    problems.append(
                        p.at(
                            ("strands", si, "severity"),
                            f"strand {strand.id!r} has severity {said[0]!r} in {said[1]}; "
                            "leave it out here or change it there",
                        )
                    )
            for ci, cue in enumerate(strand.cues):
                if cue.id in cue_ids:
                    problems.append(
                        p.at(("strands", si, "cues", ci, "id"), f"cue id {cue.id!r} is used twice")
                    )
                    continue
                cue_ids.add(cue.id)
                good: list[str] = []
                for hi, phrase in enumerate(cue.phrases):
                    where = ("strands", si, "cues", ci, "phrases", hi)
                    try:
                        sequences = expand_phrase(phrase)
                    except PhraseError as exc:
                        problems.append(p.at(where, str(exc)))
                        continue
                    clash = next(
                        (s for s in sequences if seen_sequences.get(s, cue.id) != cue.id), None
                    )
                    if clash is not None:
                        owner = seen_sequences[clash]
                        problems.append(
                            p.at(
                                where,
                                f"phrase {' '.join(clash)!r} is already "
                                + (
                                    "an ignored phrase"
                                    if owner == IGNORED
                                    else f"a phrase of cue {owner!r}"
                                ),
                            )
                        )
                        continue
                    for seq in sequences:
                        seen_sequences[seq] = cue.id
                    good.append(phrase)
                entry[1].append((cue.id, p.pack.version, good))
    if problems:
        raise PackLoadError(problems)
    ruleset.lexicon = compile_lexicon(
        [(sid, name, cue_list) for sid, (name, cue_list) in strand_input.items()],
        ignore=ignored,
        negate_before=negation.before if negation else (),
        breakers=negation.breakers if negation else (),
        window=negation.window if negation else 3,
        negate_after=negation.after if negation else (),
        after_window=negation.after_window if negation else 1,
        severity={sid: severity for sid, (severity, _) in strand_severity.items()},
    )
    return ruleset
