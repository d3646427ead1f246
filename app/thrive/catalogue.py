"""What the rule packs offer a call, in this domain's shapes (pure; reads the loaded RuleSet).

The rules domain selects (`app.rules.guidance`, `app.rules.cues`); this module only turns its
answers into the records and messages of the call-time API.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass

from app.rules import guidance
from app.rules.cues import CueEffects, detect_cues
from app.rules.ruleset import RuleSet
from app.thrive.schemas import AdviceOut, CueOut, PromptOut

# The incident type whose contacts history counts as domestic abuse (DA escalation rules).
DOMESTIC_ABUSE = "domestic_abuse"


def require_incident_type(rules: RuleSet, incident_type: str) -> None:
    """422 `unknown_incident_type` (listing the known ones) unless the packs define it."""
    guidance.require_incident_type(rules, incident_type)


def is_domestic_abuse(incident_type: str) -> bool:
    return incident_type == DOMESTIC_ABUSE


@dataclass(frozen=True)
class CallCueEffects:
    """What the cues a call's narrative raised do, together (in the packs in force now)."""

    prompts: tuple[str, ...] = ()
    qualifiers: tuple[str, ...] = ()
    floors: tuple[str, ...] = ()


def cue_effects(rules: RuleSet, cue_ids: Iterable[str]) -> CallCueEffects:
    merged = CueEffects()
    floors: list[str] = []
    for cue_id in cue_ids:
        effects = rules.lexicon.effects_of(cue_id)
        merged = merged.merged(effects)
        if effects.grade_floor is not None:
            floors.append(effects.grade_floor)
    return CallCueEffects(merged.prompts, merged.qualifiers, tuple(floors))


def prompts(
    rules: RuleSet,
    incident_type: str | None,
    alert_keys: Iterable[str],
    qualifiers: Collection[str] = (),
    added: Collection[str] = (),
) -> list[PromptOut]:
    """The call's prompts; `added`: prompt ids its narrative's cues add."""
    return [
        PromptOut(
            id=p.id,
            element=p.element,
            element_name=p.element_name,
            text=p.text,
            reason=p.reason,
            rule=p.rule,
            priority=p.priority,
            folded=p.folded,
        )
        for p in guidance.prompts_for(rules, incident_type, list(alert_keys), qualifiers, added)
    ]


def advice(
    rules: RuleSet,
    incident_type: str | None,
    qualifiers: Collection[str] = (),
    alert_keys: Iterable[str] = (),
) -> list[AdviceOut]:
    """The incident type's advice merged with what the call's qualifiers bring; prevention
    first when an alert asks for it (near repeat)."""
    return [
        AdviceOut(id=a.id, kind=a.kind, text=a.text, rule=a.rule)
        for a in guidance.advice_for(rules, incident_type, qualifiers, list(alert_keys))
    ]


def cues(rules: RuleSet, text: str) -> list[CueOut]:
    """Each cue found in `text` once, with every distinct wording that matched it."""
    found: dict[str, CueOut] = {}
    for cue in detect_cues(rules.lexicon, text):
        seen = found.get(cue.cue)
        if seen is None:
            found[cue.cue] = CueOut(
                cue_id=cue.cue,
                strand=cue.strand,
                strand_name=cue.strand_name,
                matched=[cue.words],
                rule=cue.rule,
                severity=cue.severity,
                qualifiers_proposed=list(cue.qualifiers),
                prompts_added=list(cue.prompts),
                grade_floor=cue.grade_floor,
            )
        elif cue.words not in seen.matched:
            seen.matched.append(cue.words)
    return list(found.values())
