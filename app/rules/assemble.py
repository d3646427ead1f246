"""Rule packs checked against each other and indexed into a `RuleSet`, one function per
pack kind (advice first: it defines the incident types the others refer to; the cue packs'
are in assemble_cues.py). Every problem is collected with its file and line; a set with any
problem is refused whole."""

from __future__ import annotations

import string
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from app.rules.assemble_cues import compile_cues, cue_input
from app.rules.problems import PackLoadError, ParsedPack, Problem
from app.rules.qualifiers import qualifier_packs
from app.rules.ruleset import (
    AdviceItem,
    IncidentType,
    LoadedPack,
    NearNeed,
    Prompt,
    RuleRef,
    RuleSet,
)
from app.rules.schema import (
    AdvicePack,
    AlertPack,
    AllCondition,
    AnyCondition,
    Condition,
    CountCondition,
    CuePack,
    MarkerCondition,
    NearRepeatCondition,
    NotCondition,
    PromptPack,
    ThisCallCondition,
)
from app.rules.vocabulary import ADVICE_KINDS, TEMPLATE_FIELDS


def build(
    parsed: list[ParsedPack], *, now: datetime | None = None, max_window_days: int | None = None
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

    _advice(ruleset, advice, problems)
    qualifier_packs(ruleset, advice, problems)
    alert_keys = _alerts(ruleset, alerts, problems, max_window_days)
    _prompts(ruleset, prompts, problems, alert_keys)
    cues_read = cue_input(cues, problems, ruleset)
    if problems:
        raise PackLoadError(problems)
    compile_cues(ruleset, cues_read)
    return ruleset


def _advice(ruleset: RuleSet, packs: list[ParsedPack], problems: list[Problem]) -> None:
    """The incident-type catalogue and each type's advice; first, as the others refer to it."""
    for p in packs:
        assert isinstance(p.pack, AdvicePack)
        for ti, itype in enumerate(p.pack.incident_types):
            if itype.id not in ruleset.incident_types:
                ruleset.incident_types[itype.id] = IncidentType(
                    id=itype.id,
                    name=itype.name,
                    description=itype.description,
                    category=itype.category,
                )
                ruleset.incident_names[itype.id] = itype.name
            items = ruleset.advice.setdefault(itype.id, [])
            for kind in ADVICE_KINDS:
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
                        source=item.source or "",
                    )
                    ruleset.advice_items[item.id] = advice_item
                    items.append(advice_item)
    for itype_id, items in ruleset.advice.items():
        # Preservation first: it is the time-critical half (the golden hour).
        items.sort(key=lambda i: ADVICE_KINDS.index(i.kind))
        ruleset.advice[itype_id] = items


def _alerts(
    ruleset: RuleSet,
    packs: list[ParsedPack],
    problems: list[Problem],
    max_window_days: int | None,
) -> set[str]:
    """The marker catalogue, then the rules; the alert keys (kinds, tags, marker kinds) that
    prompts may name."""
    for p in packs:
        assert isinstance(p.pack, AlertPack)
        for mi, marker in enumerate(p.pack.markers):
            if marker.id in ruleset.marker_labels:
                problems.append(
                    p.at(("markers", mi, "id"), f"marker {marker.id!r} is defined twice")
                )
            ruleset.marker_labels[marker.id] = marker.label
            ruleset.marker_categories[marker.id] = marker.category
    rule_ids: set[str] = set()
    alert_keys: set[str] = set(ruleset.marker_labels)
    horizon = 0
    for p in packs:
        assert isinstance(p.pack, AlertPack)
        for ri, rule in enumerate(p.pack.rules):
            here = ("rules", ri)
            if rule.id in rule_ids:
                problems.append(p.at((*here, "id"), f"rule id {rule.id!r} is used twice"))
            rule_ids.add(rule.id)
            alert_keys.add(rule.alert)
            alert_keys.update(rule.tags)
            conditions = list(_walk(rule.when, (*here, "when")))
            for ei, escalation in enumerate(rule.escalate):
                if escalation.when is not None:
                    conditions.extend(_walk(escalation.when, (*here, "escalate", ei, "when")))
                if escalation.score_at_least is not None and not any(
                    isinstance(c, CountCondition) and c.half_life_days is not None
                    for c, _ in _walk(rule.when, ())
                ):
                    problems.append(
                        p.at(
                            (*here, "escalate", ei, "score_at_least"),
                            "no score to compare: give the rule's count condition half_life_days",
                        )
                    )
            for condition, cpath in conditions:
                if isinstance(condition, MarkerCondition):
                    for ki, kind in enumerate(condition.kinds):
                        if kind not in ruleset.marker_labels:
                            problems.append(
                                p.at(
                                    (*cpath, "kinds", ki),
                                    f"unknown marker kind {kind!r}: add it under markers:",
                                )
                            )
                elif isinstance(condition, NearRepeatCondition):
                    problems.extend(_unknown_incident_types(p, cpath, condition, ruleset))
                    if rule.enabled:
                        ruleset.near = widen(ruleset.near, condition)
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
                    problems.extend(_unknown_incident_types(p, cpath, condition, ruleset))
                elif isinstance(condition, ThisCallCondition):
                    problems.extend(_unknown_incident_types(p, cpath, condition, ruleset))
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

    return alert_keys


def _prompts(
    ruleset: RuleSet, packs: list[ParsedPack], problems: list[Problem], alert_keys: set[str]
) -> None:
    """The THRIVE+ template's elements, then the prompts on them."""
    element_ids: dict[str, str] = {}
    for p in packs:
        assert isinstance(p.pack, PromptPack)
        if p.pack.visible_limit is not None:
            ruleset.visible_limit = p.pack.visible_limit
        for ei, element in enumerate(p.pack.elements):
            if element.id in element_ids:
                problems.append(
                    p.at(("elements", ei, "id"), f"element {element.id!r} is defined twice")
                )
                continue
            element_ids[element.id] = element.name
            ruleset.elements.append(element)
    prompt_ids: set[str] = set()
    for p in packs:
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
            for qi, qualifier in enumerate(prompt.qualifiers):
                if qualifier not in ruleset.qualifiers:
                    problems.append(
                        p.at((*here, "qualifiers", qi), f"unknown qualifier {qualifier!r}")
                    )
            if prompt.qualifiers:
                ruleset.prompt_qualifiers[prompt.id] = frozenset(prompt.qualifiers)
            if prompt.cue_only:
                ruleset.cue_only_prompts |= {prompt.id}
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
                        priority=prompt.priority,
                        source=prompt.source or "",
                    ),
                    frozenset(prompt.incident_types),
                    frozenset(prompt.alerts),
                )
            )


def widen(need: NearNeed | None, condition: NearRepeatCondition) -> NearNeed:
    """`need` grown to cover what `condition` reads."""
    if need is None:
        return NearNeed(
            condition.within_metres, condition.within_days, frozenset(condition.incident_types)
        )
    return NearNeed(
        max(need.within_metres, condition.within_metres),
        max(need.within_days, condition.within_days),
        need.incident_types | frozenset(condition.incident_types),
    )


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


def _unknown_incident_types(
    p: ParsedPack,
    cpath: tuple[Any, ...],
    condition: CountCondition | NearRepeatCondition | ThisCallCondition,
    ruleset: RuleSet,
) -> list[Problem]:
    """A problem for each incident type a condition names that the advice packs do not."""
    return [
        p.at((*cpath, "incident_types", ti), f"unknown incident type {itype_id!r}")
        for ti, itype_id in enumerate(condition.incident_types)
        if itype_id not in ruleset.incident_types
    ]
