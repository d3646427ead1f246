"""The loaded packs as a catalogue a UI can list (the `business-rules` idea, read-only)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel

from app.rules.ruleset import AdviceItem, RuleSet
from app.rules.schema import AdvicePack, AlertPack, CuePack, PromptPack
from app.rules.vocabulary import (
    COUNT_SUBJECTS,
    FACTS,
    MARKER_CATEGORIES,
    MARKER_SUBJECTS,
    OPERATORS,
    PRIORITIES,
)


class PackInfo(BaseModel):
    pack: str
    version: str
    kind: str
    description: str
    origin: str  # shipped | force
    file: str  # file name only


class AlertRuleInfo(BaseModel):
    id: str
    rule: str  # "<id>@<version>", as carried by the alerts it raises
    pack: str
    alert: str
    severity: str
    title: str
    description: str
    enabled: bool
    suggest_grade: str | None
    tags: list[str]
    when: dict[str, Any]


class PromptInfo(BaseModel):
    id: str
    rule: str
    element: str
    text: str
    incident_types: list[str]
    alerts: list[str]
    qualifiers: list[str] = []
    priority: int = 2  # 1 ask now, 2 must ask, 3 when there is time (folded)
    source: str = ""  # where the wording comes from (supervisors, QA)


class IncidentTypeInfo(BaseModel):
    id: str
    name: str
    advice: list[AdviceItem]


class QualifierInfo(BaseModel):
    id: str
    name: str
    description: str
    advice_of: list[str]  # incident types whose advice it brings
    advice: list[AdviceItem]  # its own
    strands: dict[str, str]  # strand id -> name


class CueInfo(BaseModel):
    id: str
    rule: str
    phrases: list[str]
    # Its effects in force (its strand's merged with its own): qualifiers proposed, prompts
    # added, the suggested grade's floor.
    qualifiers_proposed: list[str] = []
    prompts_added: list[str] = []
    grade_floor: str | None = None


class StrandInfo(BaseModel):
    id: str
    name: str
    description: str
    # The strand's severity in force (its pack's, else another pack's, else medium).
    severity: str
    cues: list[CueInfo]


class ElementInfo(BaseModel):
    id: str
    name: str
    description: str


class Catalogue(BaseModel):
    loaded_at: datetime
    horizon_days: int
    packs: list[PackInfo]
    facts: dict[str, str]
    operators: dict[str, str]
    count_subjects: dict[str, str]
    marker_subjects: dict[str, str]
    markers: dict[str, str]
    # Each marker kind's category, and what the categories mean (issue 13).
    marker_categories: dict[str, str]
    categories: dict[str, str]
    alert_rules: list[AlertRuleInfo]
    elements: list[ElementInfo]
    prompts: list[PromptInfo]
    # What prompt priorities mean, and how many prompts a handler sees unfolded at most.
    priorities: dict[int, str]
    visible_limit: int
    incident_types: list[IncidentTypeInfo]
    qualifiers: list[QualifierInfo]
    strands: list[StrandInfo]
    cue_ignore: list[str]  # phrases never reported although they contain a cue word


def describe(rules: RuleSet) -> Catalogue:
    """Everything loaded, in pack order."""
    alert_rules: list[AlertRuleInfo] = []
    prompts: list[PromptInfo] = []
    strands: dict[str, StrandInfo] = {}
    ignore: list[str] = []
    for loaded in rules.packs:
        pack = loaded.pack
        if isinstance(pack, AlertPack):
            for rule in pack.rules:
                alert_rules.append(
                    AlertRuleInfo(
                        id=rule.id,
                        rule=f"{rule.id}@{pack.version}",
                        pack=pack.pack,
                        alert=rule.alert,
                        severity=rule.severity,
                        title=rule.title,
                        description=rule.description,
                        enabled=rule.enabled,
                        suggest_grade=rule.suggest_grade,
                        tags=list(rule.tags),
                        when=rule.when.model_dump(mode="json", by_alias=True),
                    )
                )
        elif isinstance(pack, PromptPack):
            for prompt in pack.prompts:
                prompts.append(
                    PromptInfo(
                        id=prompt.id,
                        rule=f"{prompt.id}@{pack.version}",
                        element=prompt.element,
                        text=prompt.text,
                        incident_types=list(prompt.incident_types),
                        alerts=list(prompt.alerts),
                        qualifiers=list(prompt.qualifiers),
                        priority=prompt.priority,
                        source=prompt.source or "",
                    )
                )
        elif isinstance(pack, CuePack):
            ignore.extend(pack.ignore)
            for strand in pack.strands:
                info = strands.setdefault(
                    strand.id,
                    StrandInfo(
                        id=strand.id,
                        name=strand.name,
                        description=strand.description,
                        severity=rules.lexicon.severity_of(strand.id),
                        cues=[],
                    ),
                )
                info.cues.extend(
                    CueInfo(
                        id=c.id,
                        rule=f"{c.id}@{pack.version}",
                        phrases=list(c.phrases),
                        qualifiers_proposed=list(rules.lexicon.effects_of(c.id).qualifiers),
                        prompts_added=list(rules.lexicon.effects_of(c.id).prompts),
                        grade_floor=rules.lexicon.effects_of(c.id).grade_floor,
                    )
                    for c in strand.cues
                )
        else:
            assert isinstance(pack, AdvicePack)
    return Catalogue(
        loaded_at=rules.loaded_at,
        horizon_days=rules.horizon_days,
        packs=[
            PackInfo(
                pack=p.pack.pack,
                version=p.pack.version,
                kind=p.pack.kind,
                description=p.pack.description,
                origin=p.origin,
                file=p.source.rsplit("/", 1)[-1],
            )
            for p in rules.packs
        ],
        facts=FACTS,
        operators=OPERATORS,
        count_subjects=COUNT_SUBJECTS,
        marker_subjects=MARKER_SUBJECTS,
        markers=dict(rules.marker_labels),
        marker_categories=dict(rules.marker_categories),
        categories=MARKER_CATEGORIES,
        alert_rules=alert_rules,
        elements=[
            ElementInfo(id=e.id, name=e.name, description=e.description) for e in rules.elements
        ],
        prompts=prompts,
        priorities=PRIORITIES,
        visible_limit=rules.visible_limit,
        incident_types=[
            IncidentTypeInfo(id=t.id, name=t.name, advice=rules.advice.get(t.id, []))
            for t in rules.incident_types.values()
        ],
        qualifiers=[
            QualifierInfo(
                id=q.id,
                name=q.name,
                description=q.description,
                advice_of=list(q.advice_of),
                advice=rules.qualifier_advice.get(q.id, []),
                strands=dict(q.strands),
            )
            for q in rules.qualifiers.values()
        ],
        strands=list(strands.values()),
        cue_ignore=ignore,
    )
