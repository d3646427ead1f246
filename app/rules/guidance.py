"""THRIVE+ prompts and advice chosen for a call: pure selection from the loaded packs.

Prompts, not scripts: these say what not to forget; the handler decides what to ask.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping

from app.rules.errors import RulesError
from app.rules.facts import PlannedAlert
from app.rules.ruleset import AdviceItem, IncidentType, Prompt, RuleSet
from app.rules.vocabulary import ADVICE_KINDS


class UnknownIncidentType(RulesError):
    code = "unknown_incident_type"


class UnknownAdviceItem(RulesError):
    code = "unknown_advice_item"


class InvalidQualifiers(RulesError):
    code = "invalid_qualifiers"


def incident_types(packs: RuleSet) -> list[IncidentType]:
    """The incident-type catalogue (from the advice packs), in pack order."""
    return list(packs.incident_types.values())


def is_incident_type(packs: RuleSet, incident_type: str) -> bool:
    return incident_type in packs.incident_types


def require_incident_type(packs: RuleSet, incident_type: str) -> IncidentType:
    """The catalogue entry, or `UnknownIncidentType` (422) naming the known ones."""
    found = packs.incident_types.get(incident_type)
    if found is None:
        raise UnknownIncidentType(
            "unknown incident type", details={"known": sorted(packs.incident_types)}
        )
    return found


def _triggers(alerts: Iterable[str | PlannedAlert]) -> frozenset[str]:
    keys: set[str] = set()
    for alert in alerts:
        if isinstance(alert, str):
            keys.add(alert)
        else:
            keys.add(alert.kind)
            keys.update(alert.tags)
    return frozenset(keys)


def prompts_for(
    packs: RuleSet,
    incident_type: str | None,
    alerts: Iterable[str | PlannedAlert] = (),
    qualifiers: Collection[str] = (),
    added: Collection[str] = (),
) -> list[Prompt]:
    """General prompts, plus those for the incident type, the call's qualifiers and the
    alerts raised (a DA rape: the sexual-offence prompts and the DA ones), and the prompts
    `added` by the narrative's cues (ids; reason `cue` when nothing else brings them).

    `alerts` may be alert kinds ("repeat_victim") or planned alerts, whose kind and tags
    (marker kinds such as "da_high_risk") both count. Each prompt once, ordered by
    priority, then THRIVE+ element, then pack order; see `rank` for what is folded.
    """
    triggers = _triggers(alerts)
    carried = frozenset(qualifiers)
    chosen: list[Prompt] = []
    for prompt, types, keys in packs.prompts:
        by_qualifier = packs.prompt_qualifiers.get(prompt.id, frozenset())
        if prompt.id in packs.cue_only_prompts:
            if prompt.id in added:
                chosen.append(prompt.model_copy(update={"reason": "cue"}))
        elif not types and not keys and not by_qualifier:
            chosen.append(prompt)
        elif incident_type is not None and incident_type in types:
            chosen.append(prompt.model_copy(update={"reason": "incident_type"}))
        elif by_qualifier & carried:
            chosen.append(prompt.model_copy(update={"reason": "qualifier"}))
        elif keys & triggers:
            chosen.append(prompt.model_copy(update={"reason": "alert"}))
        elif prompt.id in added:
            chosen.append(prompt.model_copy(update={"reason": "cue"}))
    return rank(packs, chosen)


# Priorities a handler sees unfolded (1 ask now, 2 must ask); 3 is folded.
SHOWN_PRIORITIES = (1, 2)


def rank(packs: RuleSet, prompts: list[Prompt]) -> list[Prompt]:
    """`prompts` most urgent first (priority, then THRIVE+ element, then pack order), the
    must-ask ones shown up to the packs' `visible_limit` and the rest folded after them: a
    handler mid-call reads a short list, and nothing is lost (folded prompts stay offered)."""
    order = {element.id: index for index, element in enumerate(packs.elements)}
    ordered = sorted(prompts, key=lambda p: (p.priority, order.get(p.element, len(order))))
    shown: list[Prompt] = []
    folded: list[Prompt] = []
    for prompt in ordered:
        if prompt.priority in SHOWN_PRIORITIES and len(shown) < packs.visible_limit:
            shown.append(prompt.model_copy(update={"folded": False}))
        else:
            folded.append(prompt.model_copy(update={"folded": True}))
    return shown + folded


# An alert (kind or tag) that puts crime-prevention advice before preservation advice: near
# repeat, where the caller's risk is of the next offence rather than of losing evidence.
PREVENTION_FIRST = "prevention_first"


def advice_for(
    packs: RuleSet,
    incident_type: str | None,
    qualifiers: Collection[str] = (),
    alerts: Iterable[str | PlannedAlert] = (),
) -> list[AdviceItem]:
    """Preservation, prevention, then support advice for an incident type (unknown type:
    empty), merged with what the call's qualifiers bring (the advice of their incident types,
    then their own), each item once, in pack order within each kind; prevention first when
    an alert raised asks for it (`prevention_first`: near repeat)."""
    merged: dict[str, AdviceItem] = {}
    sources: list[str] = [incident_type] if incident_type else []
    for qualifier_id in qualifiers:
        qualifier = packs.qualifiers.get(qualifier_id)
        if qualifier is not None:
            sources.extend(qualifier.advice_of)
    for source in sources:
        for item in packs.advice.get(source, ()):
            merged.setdefault(item.id, item)
    for qualifier_id in qualifiers:
        for item in packs.qualifier_advice.get(qualifier_id, ()):
            merged.setdefault(item.id, item)
    kinds = list(ADVICE_KINDS)
    if PREVENTION_FIRST in _triggers(alerts):
        kinds.remove("prevention")
        kinds.insert(0, "prevention")
    # Preservation first otherwise: it is the time-critical half (the golden hour); support
    # (medical help, referrals) last. Stable sort: pack order within each kind.
    return sorted(merged.values(), key=lambda i: kinds.index(i.kind))


def check_qualifiers(
    packs: RuleSet, chosen: Iterable[str], strands: Mapping[str, Iterable[str]]
) -> dict[str, list[str]]:
    """The qualifiers as stored (qualifier id -> its strands, in catalogue order), or
    `InvalidQualifiers` (422) with every problem as `{field, reason}` in `details`."""
    wanted = list(dict.fromkeys(chosen))
    problems: list[dict[str, str]] = []
    for qualifier_id in wanted:
        if qualifier_id not in packs.qualifiers:
            problems.append(
                {
                    "field": "qualifiers",
                    "reason": f"unknown qualifier {qualifier_id!r} (known: "
                    + ", ".join(packs.qualifiers)
                    + ")",
                }
            )
    for qualifier_id, named in strands.items():
        field = f"qualifier_strands.{qualifier_id}"
        qualifier = packs.qualifiers.get(qualifier_id)
        if qualifier is None or qualifier_id not in wanted:
            problems.append(
                {"field": field, "reason": f"strands given for {qualifier_id!r}, not set"}
            )
            continue
        if not qualifier.strands:
            problems.append({"field": field, "reason": f"{qualifier.name} has no strands"})
            continue
        unknown = [s for s in named if s not in qualifier.strands]
        if unknown:
            problems.append(
                {
                    "field": field,
                    "reason": f"unknown strand(s) {', '.join(unknown)} (known: "
                    + ", ".join(qualifier.strands)
                    + ")",
                }
            )
    if problems:
        raise InvalidQualifiers(
            "the qualifiers cannot be set: " + "; ".join(p["reason"] for p in problems),
            details=problems,
        )
    result: dict[str, list[str]] = {}
    for qualifier_id in packs.qualifiers:  # catalogue order: stored and shown the same way
        if qualifier_id in wanted:
            named = set(strands.get(qualifier_id, ()))
            result[qualifier_id] = [s for s in packs.qualifiers[qualifier_id].strands if s in named]
    return result


def advice_item(packs: RuleSet, item_id: str) -> AdviceItem | None:
    return packs.advice_items.get(item_id)


def require_advice_items(packs: RuleSet, item_ids: Iterable[str]) -> list[AdviceItem]:
    """The items, or `UnknownAdviceItem` (422) listing the ids that do not exist."""
    ids = list(item_ids)
    missing = sorted({i for i in ids if i not in packs.advice_items})
    if missing:
        raise UnknownAdviceItem("unknown advice item(s)", details={"unknown": missing})
    return [packs.advice_items[i] for i in ids]
