"""The rule-pack format: what a pack file may say, validated by pydantic at load.

Four kinds of pack, told apart by `kind:` (a discriminated union):

- `alerts`:  rules that turn a caller's facts into planned alerts;
- `prompts`: the THRIVE+ template (its elements) and prompts per element, incident type, alert;
- `advice`:  the incident-type catalogue with preservation and prevention advice;
- `cues`:    the hidden-vulnerability lexicon (strands, cue phrases, negation).

Rules are data over a whitelist: a condition is one of a few kinds (`count`, `markers`,
`presentation`, `all`, `any`, `not`), each naming only the facts and operators listed in
`app.rules.vocabulary`.
Nothing in a pack can name code to run (the lesson of `business-rules`); every unknown key,
fact or operator is refused at load with the file and line (see `app.rules.loader`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from app.rules.vocabulary import (
    Category,
    Grade,
    Id,
    MarkerCategory,
    Op,
    Priority,
    Severity,
    Source,
    Text,
)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CountCondition(Strict):
    """`value` compared with the number of `fact` contacts of a subject in the last days."""

    kind: Literal["count"]
    fact: Literal["contacts", "victim_contacts", "da_contacts"]
    per: list[Literal["number", "number_if_no_person", "person", "household"]] = Field(min_length=1)
    within_days: int = Field(ge=1, le=3650)
    op: Op = ">="
    value: int = Field(ge=0, le=100_000)
    # Only contacts of these incident types count (empty: any).
    incident_types: list[Id] = Field(default_factory=list)
    # Only contacts whose incident type's catalogue category is one of these (empty: any).
    categories: list[Literal["crime", "asb", "other", "unknown"]] = Field(default_factory=list)
    # The recency weighting: each counted contact weighs 0.5 ** (age in days / half-life), so
    # one today weighs 1 and one a half-life ago 0.5 (risk of a repeat is highest soon after
    # an incident, domain.md C.15). Offers `{score}`; a rule's `escalate` may read it.
    half_life_days: float | None = Field(default=None, gt=0, le=3650)


class MarkerCondition(Strict):
    """An active marker (of one of `kinds`, and of one of `categories`; empty: any) on one
    of the subjects in `of`."""

    kind: Literal["markers"]
    of: list[Literal["caller", "household_member", "household"]] = Field(min_length=1)
    kinds: list[Id] = Field(default_factory=list)
    # Set: a marker set within the last this-many days counts whether or not it is still
    # active ("within 12 months of a MARAC referral"); omitted: only markers active now.
    set_within_days: int | None = Field(default=None, ge=1, le=3650)
    categories: list[MarkerCategory] = Field(default_factory=list)


class PresentationCondition(Strict):
    kind: Literal["presentation"]
    any_of: list[Literal["allowed", "withheld", "unavailable"]] = Field(min_length=1)


class ThisCallCondition(Strict):
    """This call is one of `incident_types` or carries one of `qualifiers` (either list may
    be empty, not both). A rule reading it is evaluated again when the handler sets the
    incident type or a qualifier: at ring time neither is known, so it does not hold."""

    kind: Literal["this_call"]
    incident_types: list[Id] = Field(default_factory=list)
    qualifiers: list[Id] = Field(default_factory=list)

    @model_validator(mode="after")
    def _says_something(self) -> ThisCallCondition:
        if not self.incident_types and not self.qualifiers:
            raise ValueError("name incident_types or qualifiers (or both)")
        return self


class NearRepeatCondition(Strict):
    """A contact of one of `incident_types` at another household within `within_metres` of a
    caller's household, in the last `within_days` days (near repeat: domain.md C.15)."""

    kind: Literal["near_repeat"]
    incident_types: list[Id] = Field(min_length=1)
    within_metres: int = Field(ge=1, le=5000)
    within_days: int = Field(ge=1, le=365)


class AllCondition(Strict):
    kind: Literal["all"]
    of: list[Condition] = Field(min_length=1)


class AnyCondition(Strict):
    kind: Literal["any"]
    of: list[Condition] = Field(min_length=1)


class NotCondition(Strict):
    kind: Literal["not"]
    condition: Condition


Condition = Annotated[
    CountCondition
    | MarkerCondition
    | PresentationCondition
    | ThisCallCondition
    | NearRepeatCondition
    | AllCondition
    | AnyCondition
    | NotCondition,
    Field(discriminator="kind"),
]
AllCondition.model_rebuild()
AnyCondition.model_rebuild()
NotCondition.model_rebuild()


class PackHeader(Strict):
    pack: Id
    version: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    description: str = ""

    @field_validator("version", mode="before")
    @classmethod
    def _version_text(cls, value: Any) -> Any:
        # YAML reads `version: 1.10` as the float 1.1; refuse rather than silently change it.
        if isinstance(value, bool) or isinstance(value, float):
            raise ValueError('quote the version, e.g. version: "1.0"')
        if isinstance(value, int):
            return str(value)
        return value


# ---- alerts ------------------------------------------------------------------------------


class MarkerKind(Strict):
    id: Id
    label: Text
    category: MarkerCategory
    description: str = ""


class Escalation(Strict):
    """Raise the alert's severity when every test given holds: the recency score of the
    rule's counted contacts reaches `score_at_least`, and/or `when` holds (its reasons are
    added to the alert's). The highest severity of the escalations that hold wins; an
    escalation never lowers the rule's own severity."""

    severity: Severity
    score_at_least: float | None = Field(default=None, gt=0, le=100_000)
    when: Condition | None = None
    suggest_grade: Grade | None = None  # replaces the rule's, when given

    @model_validator(mode="after")
    def _tests_something(self) -> Escalation:
        if self.score_at_least is None and self.when is None:
            raise ValueError("an escalation needs score_at_least or when")
        return self


class AlertRule(Strict):
    id: Id
    alert: Id  # the alert kind raised: repeat_victim, household_risk, ...
    severity: Severity
    title: Text  # a template: {placeholders} of the condition kind (TEMPLATE_FIELDS)
    reason: Text | None = None  # one per matching subject; default: built-in wording
    when: Condition
    suggest_grade: Grade | None = None
    tags: list[Id] = Field(default_factory=list)
    enabled: bool = True
    description: str = ""
    escalate: list[Escalation] = Field(default_factory=list)
    # The alert's category on screen; omitted: the category of the markers that matched, or
    # `history` for a count of past contacts (see planning.category_of).
    category: MarkerCategory | None = None


class AlertPack(PackHeader):
    kind: Literal["alerts"]
    markers: list[MarkerKind] = Field(default_factory=list)
    rules: list[AlertRule] = Field(default_factory=list)


# ---- prompts -----------------------------------------------------------------------------


class Element(Strict):
    id: Id
    name: Text
    description: str = ""


class PromptDef(Strict):
    """A prompt for one element. With neither `incident_types` nor `alerts` it is general;
    otherwise it is added when the incident type is one of them or one of the alerts
    raised (its kind or one of its tags, such as a marker kind) is."""

    id: Id
    element: Id
    text: Text
    # 1: ask now (life and safety), 2: must ask, 3: ask when there is time. 1 and 2 are shown
    # (most urgent first, up to the pack's `visible_limit`); 3 and any overflow are folded.
    # Omitted: 2, so a force's own prompt is shown unless it says otherwise.
    priority: Priority = 2
    # Where the wording comes from (a College of Policing APP page, the Victims' Code...):
    # shown to supervisors and QA, never on the handler's screen; `rules check` wants one.
    source: Source | None = None
    incident_types: list[Id] = Field(default_factory=list)
    alerts: list[Id] = Field(default_factory=list)
    # Also added when the call carries one of these qualifiers (domestic_abuse, weapons, ...),
    # whatever its incident type.
    qualifiers: list[Id] = Field(default_factory=list)
    # Only added by a narrative cue that names it (cues.yaml `effects.prompts`), never shown
    # as a general prompt. Any prompt may be named by a cue; these need one.
    cue_only: bool = False


class PromptPack(PackHeader):
    kind: Literal["prompts"]
    # How many prompts a handler sees unfolded, at most (a later pack's value wins).
    visible_limit: int | None = Field(default=None, ge=1, le=100)
    elements: list[Element] = Field(default_factory=list)
    prompts: list[PromptDef] = Field(default_factory=list)


# ---- advice ------------------------------------------------------------------------------


class AdviceDef(Strict):
    id: Id
    text: Text
    source: Source | None = None  # as PromptDef.source


class IncidentTypeDef(Strict):
    id: Id
    name: Text
    description: str = ""
    # What the incident is, for rules that count only some (`count` `categories`): a crime,
    # anti-social behaviour, or other. Omitted: `unknown` to those rules.
    category: Category | None = None
    preservation: list[AdviceDef] = Field(default_factory=list)
    prevention: list[AdviceDef] = Field(default_factory=list)
    # Safety, medical help and referral (a SARC, a helpline): neither evidence nor prevention.
    support: list[AdviceDef] = Field(default_factory=list)


class QualifierStrand(Strict):
    id: Id
    name: Text


class QualifierDef(Strict):
    """A qualifier a handler may set on a call whatever its incident type (domain.md: DA and
    hate crime qualify an assault, criminal damage, a rape...). It brings the advice of the
    incident types in `advice_of` and its own, merged with the incident type's; prompts name
    it in their `qualifiers`. `strands`: what may be recorded with it (hate crime's monitored
    strands); a force pack naming a shipped qualifier adds strands and advice to it."""

    id: Id
    name: Text
    description: str = ""
    advice_of: list[Id] = Field(default_factory=list)
    preservation: list[AdviceDef] = Field(default_factory=list)
    prevention: list[AdviceDef] = Field(default_factory=list)
    # Safety, medical help and referral (a SARC, a helpline): neither evidence nor prevention.
    support: list[AdviceDef] = Field(default_factory=list)
    strands: list[QualifierStrand] = Field(default_factory=list)


class AdvicePack(PackHeader):
    kind: Literal["advice"]
    incident_types: list[IncidentTypeDef] = Field(default_factory=list)
    qualifiers: list[QualifierDef] = Field(default_factory=list)


# ---- cues --------------------------------------------------------------------------------

Phrase = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class Negation(Strict):
    """A cue is not reported when a `before` word occurs within `window` words before it
    (in the same clause: punctuation and `breakers` end the look-back), or when an `after`
    phrase follows it within `after_window` words ("the kids are not here")."""

    before: list[Phrase] = Field(min_length=1)
    window: int = Field(default=3, ge=1, le=10)
    breakers: list[Phrase] = Field(default_factory=list)
    after: list[Phrase] = Field(default_factory=list)
    after_window: int = Field(default=1, ge=0, le=5)
    # Words a negation reaches the cue across ("doesn't have any kids"); any other word
    # between them ends its reach ("didn't stop hitting the baby": the stopping is negated).
    through: list[Phrase] = Field(default_factory=list)


class Typos(Strict):
    """One typing slip tolerated in lexicon words of `min_length` letters or more (a letter
    missing, one extra, two neighbours swapped; never the first letter, never a substituted
    one); `not_typos` are real words that are not slips of a lexicon word."""

    min_length: int = Field(default=7, ge=5, le=20)
    not_typos: list[Phrase] = Field(default_factory=list)


class CueEffects(Strict):
    """What a cue does on a call besides showing: qualifiers proposed to the handler (who
    confirms them; never set silently), prompts added to the call's, and a floor for the
    suggested grade (a threat to kill, strangulation, a weapon present now: emergency)."""

    qualifiers: list[Id] = Field(default_factory=list)
    prompts: list[Id] = Field(default_factory=list)
    grade_floor: Grade | None = None


class CueDef(Strict):
    id: Id
    phrases: list[Phrase] = Field(min_length=1)
    description: str = ""
    # Added to its strand's effects (the more urgent grade floor wins).
    effects: CueEffects | None = None


class Strand(Strict):
    id: Id
    name: Text
    description: str = ""
    # How much a cue of this strand weighs: `high` or `critical` make the assessment's threat,
    # harm, risk and vulnerability required (as a high alert does). Omitted: the severity
    # another pack gave the strand, else medium (`cues.DEFAULT_SEVERITY`). Optional so that
    # a force pack adding cues to a shipped strand does not silently lower it.
    severity: Severity | None = None
    # Every cue of the strand has these (a force pack adding cues to a shipped strand may
    # add effects; they are merged).
    effects: CueEffects | None = None
    cues: list[CueDef] = Field(min_length=1)


class CuePack(PackHeader):
    kind: Literal["cues"]
    negation: Negation | None = None
    typos: Typos | None = None
    strands: list[Strand] = Field(default_factory=list)
    # Phrases that are never cues although they contain one ("shoulder blade", "nail gun"):
    # matched like cues (the longest phrase wins) and then dropped.
    ignore: list[Phrase] = Field(default_factory=list)


Pack = Annotated[AlertPack | PromptPack | AdvicePack | CuePack, Field(discriminator="kind")]
PACK_KINDS = ("alerts", "prompts", "advice", "cues")
