"""The loaded rule packs, indexed for the pure functions that use them.

Built by `app.rules.loader` (which validates everything first) and never changed after: a
reload builds a new `RuleSet` and swaps it in whole, so a request sees one set throughout.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict

from app.rules.cues import Lexicon
from app.rules.schema import AdvicePack, AlertPack, AlertRule, CuePack, Element, PromptPack

AnyPack = AlertPack | PromptPack | AdvicePack | CuePack


class Prompt(BaseModel):
    """A THRIVE+ prompt selected for a call; `id` is stable (record "answered" against it)."""

    model_config = ConfigDict(frozen=True)

    id: str
    element: str
    element_name: str
    text: str
    # Why it is shown: general, for the incident type, a qualifier, or an alert raised.
    reason: Literal["general", "incident_type", "qualifier", "alert", "cue"]
    rule: str  # "<prompt id>@<pack version>"
    priority: int = 2  # 1 ask now, 2 must ask, 3 when there is time
    folded: bool = False  # set by the selection: beyond what the handler sees at first
    source: str = ""  # for supervisors and QA, never the handler's screen


class AdviceItem(BaseModel):
    """One piece of advice; `id` is stable (record "given" against it)."""

    model_config = ConfigDict(frozen=True)

    id: str
    kind: Literal["preservation", "prevention", "support"]
    incident_type: str  # the incident type it belongs to ("" for a qualifier's own item)
    qualifier: str = ""  # the qualifier it belongs to, for a qualifier's own item
    text: str
    rule: str  # "<advice id>@<pack version>"
    source: str = ""  # for supervisors and QA, never the handler's screen


class IncidentType(BaseModel):
    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str = ""
    category: Literal["crime", "asb", "other"] | None = None


class Qualifier(BaseModel):
    """A qualifier a call may carry (domestic_abuse, hate_crime, ...), from the advice packs."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    description: str = ""
    # Incident types whose advice it brings (its own items are in RuleSet.qualifier_advice).
    advice_of: tuple[str, ...] = ()
    # Strand id -> name, in pack order (shipped first, then a force's).
    strands: dict[str, str] = {}


@dataclass(frozen=True)
class LoadedPack:
    pack: AnyPack
    source: str  # the file it came from
    origin: Literal["shipped", "force"]

    @property
    def ref(self) -> str:
        return f"{self.pack.pack}@{self.pack.version}"


@dataclass(frozen=True)
class RuleRef:
    rule: AlertRule
    version: str

    @property
    def ref(self) -> str:
        return f"{self.rule.id}@{self.version}"


@dataclass(frozen=True)
class NearNeed:
    """What the history lookup must fetch for the near-repeat rules: the widest radius and
    window any of them asks for, and every incident type they count."""

    within_metres: int
    within_days: int
    incident_types: frozenset[str]


@dataclass
class RuleSet:
    """Every loaded pack, plus the indexes the engine and selectors read."""

    packs: list[LoadedPack]
    loaded_at: datetime
    alert_rules: list[RuleRef] = field(default_factory=list)
    marker_labels: dict[str, str] = field(default_factory=dict)
    marker_categories: dict[str, str] = field(default_factory=dict)  # kind -> category
    elements: list[Element] = field(default_factory=list)
    prompts: list[tuple[Prompt, frozenset[str], frozenset[str]]] = field(default_factory=list)
    incident_types: dict[str, IncidentType] = field(default_factory=dict)
    incident_names: dict[str, str] = field(default_factory=dict)  # id -> name, for wording
    advice: dict[str, list[AdviceItem]] = field(default_factory=dict)  # by incident type
    advice_items: dict[str, AdviceItem] = field(default_factory=dict)  # by id
    qualifiers: dict[str, Qualifier] = field(default_factory=dict)
    qualifier_advice: dict[str, list[AdviceItem]] = field(default_factory=dict)  # own items
    # Prompt id -> the qualifiers that add it (prompts naming none are absent).
    prompt_qualifiers: dict[str, frozenset[str]] = field(default_factory=dict)
    # Prompts only a narrative cue adds (thrive.yaml `cue_only`).
    cue_only_prompts: frozenset[str] = frozenset()
    lexicon: Lexicon = field(default_factory=Lexicon)
    # How many prompts a handler sees unfolded, at most (prompt packs' `visible_limit`).
    visible_limit: int = 10
    # How far back the alert rules look (days): the history lookup need not fetch older.
    horizon_days: int = 0
    # What near-repeat rules need from the lookup (None: no such rule is enabled).
    near: NearNeed | None = None
