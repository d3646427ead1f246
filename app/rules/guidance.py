"""THRIVE+ prompts and advice chosen for a call: pure selection from the loaded packs.

Prompts, not scripts: these say what not to forget; the handler decides what to ask.
"""

from __future__ import annotations

from collections.abc import Iterable

from app.rules.errors import RulesError
from app.rules.facts import PlannedAlert
from app.rules.ruleset import AdviceItem, IncidentType, Prompt, RuleSet


class UnknownIncidentType(RulesError):
    code = "unknown_incident_type"


class UnknownAdviceItem(RulesError):
    code = "unknown_advice_item"


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
) -> list[Prompt]:
    """General prompts, plus those for the incident type and for the alerts raised.

    `alerts` may be alert kinds ("repeat_victim") or planned alerts, whose kind and tags
    (marker kinds such as "da_high_risk") both count. Ordered by THRIVE+ element, then pack
    order; each prompt once.
    """
    triggers = _triggers(alerts)
    chosen: list[Prompt] = []
    for prompt, types, keys in packs.prompts:
        if not types and not keys:
            chosen.append(prompt)
        elif incident_type is not None and incident_type in types:
            chosen.append(prompt.model_copy(update={"reason": "incident_type"}))
        elif keys & triggers:
            chosen.append(prompt.model_copy(update={"reason": "alert"}))
    order = {element.id: index for index, element in enumerate(packs.elements)}
    chosen.sort(key=lambda p: order.get(p.element, len(order)))  # stable: pack order kept
    return chosen


# An alert (kind or tag) that puts crime-prevention advice before preservation advice: near
# repeat, where the caller's risk is of the next offence rather than of losing evidence.
PREVENTION_FIRST = "prevention_first"


def advice_for(
    packs: RuleSet, incident_type: str, alerts: Iterable[str | PlannedAlert] = ()
) -> list[AdviceItem]:
    """Preservation then prevention advice for an incident type (unknown type: empty);
    prevention first when an alert raised asks for it (`prevention_first`). Pack order is
    kept within each kind."""
    items = list(packs.advice.get(incident_type, ()))
    if PREVENTION_FIRST in _triggers(alerts):
        items.sort(key=lambda a: a.kind != "prevention")  # stable
    return items


def advice_item(packs: RuleSet, item_id: str) -> AdviceItem | None:
    return packs.advice_items.get(item_id)


def require_advice_items(packs: RuleSet, item_ids: Iterable[str]) -> list[AdviceItem]:
    """The items, or `UnknownAdviceItem` (422) listing the ids that do not exist."""
    ids = list(item_ids)
    missing = sorted({i for i in ids if i not in packs.advice_items})
    if missing:
        raise UnknownAdviceItem("unknown advice item(s)", details={"unknown": missing})
    return [packs.advice_items[i] for i in ids]
