"""Request and response bodies of the call-time API and the assessment record."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class Element(StrEnum):
    """The THRIVE+ elements, in the order the template shows them."""

    threat = "threat"
    harm = "harm"
    risk = "risk"
    investigation = "investigation"
    vulnerability = "vulnerability"
    engagement = "engagement"
    prevention = "prevention"
    preservation = "preservation"


class Grade(StrEnum):
    """National Call Handling Standards grades, most urgent first."""

    emergency = "emergency"
    priority = "priority"
    scheduled = "scheduled"
    resolution_without_deployment = "resolution_without_deployment"


RiskLevel = Literal["high", "medium", "low", "not_applicable"]
RepeatVictimCheck = Literal["yes", "no", "not_applicable"]
NarrativeMode = Literal["replace", "append"]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
_ID = Field(min_length=1, max_length=80)


class IncidentTypeSet(BaseModel):
    model_config = _STRICT
    incident_type: str = Field(min_length=1, max_length=64)


class NarrativeIn(BaseModel):
    # No whitespace stripping here: the text is read as typed. Its size is checked against
    # NARRATIVE_MAX_CHARS by the service (413 with a reason), not by the schema.
    model_config = ConfigDict(extra="forbid")
    text: str
    # replace: `text` is the whole narrative so far; append: `text` follows what was sent.
    mode: NarrativeMode = "replace"


class IdsIn(BaseModel):
    model_config = _STRICT
    ids: list[str] = Field(min_length=1, max_length=200)


class PromptMarksIn(IdsIn):
    # false: take the marks off (the handler unticked them)
    answered: bool = True


class AdviceMarksIn(IdsIn):
    # false: take the marks off (the handler unticked them)
    given: bool = True


class ElementIn(BaseModel):
    model_config = _STRICT
    risk: RiskLevel
    text: str = Field(default="", max_length=4000)


class AssessmentIn(BaseModel):
    model_config = _STRICT

    # None: the incident type set during the call. Neither: the checker reports it with
    # every other problem (field `incident_type`).
    incident_type: str | None = Field(default=None, min_length=1, max_length=64)
    # No preset grade: None is reported by the checker with every other problem (field
    # `grade`), not refused alone before the rest are looked at. A bad value is still a 422.
    grade: Grade | None = None
    grade_reason: str | None = Field(default=None, max_length=2000)
    elements: dict[Element, ElementIn]
    # None: take what was marked given / answered during the call.
    advice_given: list[str] | None = Field(default=None, max_length=200)
    prompts_answered: list[str] | None = Field(default=None, max_length=500)
    repeat_victim_check: RepeatVictimCheck | None = None
    victim: bool
    # None: true exactly when the incident type is domestic abuse.
    domestic_abuse: bool | None = None

    @field_validator("incident_type", "grade", mode="before")
    @classmethod
    def _blank_is_not_chosen(cls, value: object) -> object:
        # A form's empty choice ("" or spaces) means not chosen yet: the checker reports it
        # with the other problems instead of a lone validation error.
        if isinstance(value, str) and not value.strip():
            return None
        return value


class PromptOut(BaseModel):
    id: str
    element: str
    element_name: str
    text: str
    reason: str  # general | incident_type | alert: why it is shown
    rule: str  # "<prompt id>@<pack version>"
    answered: bool = False
    # 1 ask now, 2 must ask, 3 when there is time; folded: listed after the ones shown, behind
    # "more prompts" on the handler's screen (still offered, and may be answered).
    priority: int = 2
    folded: bool = False


class AdviceOut(BaseModel):
    id: str
    kind: str  # preservation | prevention | support
    text: str
    rule: str
    given: bool = False


class CueOut(BaseModel):
    cue_id: str
    strand: str
    strand_name: str = ""
    # The narrative's words that matched (personal data: returned and pushed, never logged).
    matched: list[str]
    rule: str = ""
    # The strand's severity (critical | high | medium | low | info): a high or critical cue
    # makes threat, harm, risk and vulnerability required in the assessment.
    severity: str = "medium"
    # What the cue does (cues.yaml `effects`): qualifiers it proposes (the handler confirms
    # them with PUT .../qualifiers; never set by the service), prompt ids it adds to the
    # call's prompts, and the least urgent grade the call's suggested grade may now be.
    qualifiers_proposed: list[str] = []
    prompts_added: list[str] = []
    grade_floor: Grade | None = None


class QualifiersSet(BaseModel):
    """PUT /calls/{id}/qualifiers: the call's qualifiers, all of them (an empty list clears
    them), and the strands of those that have some (hate crime's monitored strands)."""

    model_config = _STRICT
    qualifiers: list[Annotated[str, Field(min_length=1, max_length=80)]] = Field(max_length=50)
    qualifier_strands: dict[
        Annotated[str, Field(min_length=1, max_length=80)],
        list[Annotated[str, Field(min_length=1, max_length=80)]],
    ] = Field(default_factory=dict, max_length=50)


class CallThriveRead(BaseModel):
    call_id: int
    incident_type: str | None
    # The call's qualifiers (domestic_abuse, hate_crime, ...) and their strands: their prompts
    # and advice are merged into `prompts` and `advice`.
    qualifiers: list[str] = []
    qualifier_strands: dict[str, list[str]] = {}
    alert_kinds: list[str]
    prompts: list[PromptOut]
    advice: list[AdviceOut]
    cues: list[CueOut]
    # The most urgent grade the call's alerts suggest, raised to the floor of any cue its
    # narrative raised (a threat to kill: emergency). A suggestion: the handler grades.
    suggested_grade: Grade | None = None
    # Qualifiers the narrative's cues propose that the call does not carry yet.
    proposed_qualifiers: list[str] = []


class NarrativeResult(BaseModel):
    call_id: int
    new_cues: list[CueOut]
    cues_total: int


class AssessmentVersion(BaseModel):
    version: int
    submitted_by: str
    submitted_at: datetime
    incident_type: str
    grade: Grade
    suggested_grade: Grade | None
    grade_reason: str | None
    elements: dict[str, object]
    advice_given: dict[str, list[str]]
    prompts_answered: list[str]
    repeat_victim_check: RepeatVictimCheck | None
    victim: bool
    domestic_abuse: bool
    alert_kinds: list[str]
    # Where the call's contact was filed (issue 13): the victim and the incident's location.
    victim_person_id: str | None = None
    location_household_id: str | None = None


class AssessmentRead(AssessmentVersion):
    call_id: int
    # Every version, oldest first (the last is this one): later edits keep the earlier ones.
    history: list[AssessmentVersion]
