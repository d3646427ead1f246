"""Request and response bodies of the QA and training APIs."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

INT64_MAX = 2**63 - 1


def _storable(value: str) -> str:
    # NUL and lone surrogates cannot be stored in PostgreSQL text: refuse them with a 422
    # (naming the field, never echoing the value) rather than fail at the database.
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode (no lone surrogates)") from None
    return value


StorableText = Annotated[str, AfterValidator(_storable)]
Month = Annotated[str, Field(min_length=7, max_length=7, examples=["2026-11"])]
RowId = Annotated[int, Field(ge=1, le=INT64_MAX)]
Key = Annotated[StorableText, Field(min_length=1, max_length=80)]

_STRICT = ConfigDict(extra="forbid", str_strip_whitespace=True)
# Query-string ids are matched against these before they reach the database (a NUL or a lone
# surrogate there would fail in PostgreSQL, not with a 4xx).
STAFF_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$"  # as app.auth.service.STAFF_ID
PACK_ID_PATTERN = r"^[a-z][a-z0-9_.\-]{0,79}$"  # as app.rules.vocabulary.Id


# ---- the form --------------------------------------------------------------------------


class StandardRead(BaseModel):
    id: str
    title: str
    report_label: str
    guidance: str
    answers: list[str]
    met: list[str]
    not_applicable_allowed: bool
    training_module: str | None


class ModuleRead(BaseModel):
    id: str
    title: str


class FormRead(BaseModel):
    form: str  # "<pack>@<version>"
    origin: Literal["shipped", "force"]
    standards: list[StandardRead]
    practice: dict[str, object] | None
    training_modules: list[ModuleRead]


# ---- samples ---------------------------------------------------------------------------


class SampleCreate(BaseModel):
    model_config = _STRICT

    month: Month
    per_handler: int = Field(default=3, ge=1, le=100)
    seed: int = Field(ge=0, le=INT64_MAX)
    queue: Annotated[StorableText, Field(min_length=1, max_length=64)] | None = None
    min_talk_seconds: int | None = Field(default=None, ge=0, le=86_400)
    flagged_only: bool = False
    # Draw one of the handler's flagged calls first, when the handler has one.
    at_least_one_flagged: bool = False


class SampleCall(BaseModel):
    call_id: int
    handler_id: str
    offered_at: datetime | None
    queue: str | None
    flagged: bool
    reviews: int  # how many reviews the call has (the first counts, later: calibration)
    reviewed: bool


class Shortfall(BaseModel):
    handler_id: str
    eligible: int
    drawn: int


class SampleRead(BaseModel):
    id: int
    month: str
    per_handler: int
    seed: int
    criteria: dict[str, object]
    drawn_by: str
    drawn_at: datetime
    handlers: int
    calls: list[SampleCall]
    shortfalls: list[Shortfall]


class SampleList(BaseModel):
    items: list[SampleRead]


# ---- reviews ---------------------------------------------------------------------------


class ReviewCreate(BaseModel):
    model_config = _STRICT

    call_id: RowId
    # Standard id -> answer. Checked against the form as a whole (every problem at once).
    answers: dict[Key, Key] = Field(max_length=100)
    feedback: dict[Key, Annotated[StorableText, Field(max_length=4000)]] = Field(
        default_factory=dict, max_length=100
    )
    sample_id: RowId | None = None


class AnswerRead(BaseModel):
    standard: str
    answer: str
    met: bool
    applicable: bool
    feedback: str | None


class ReviewRead(BaseModel):
    id: int
    call_id: int
    reviewer_id: str
    reviewed_at: datetime
    sample_id: int | None
    targeted: bool  # not drawn in a sample
    calibration: bool  # a later review of an already reviewed call: not in the table
    form: str
    handler_id: str | None
    queue: str | None
    month: str
    answers: list[AnswerRead]


class ReviewList(BaseModel):
    items: list[ReviewRead]


# ---- the report ------------------------------------------------------------------------


class Measure(BaseModel):
    met: int
    applicable: int
    not_applicable: int
    percent: float | None  # 100 x met / applicable, half up to one decimal; null: none applied


class MonthRow(BaseModel):
    month: str
    # Calls counted (first reviews); null in a training breakdown, where each standard
    # counts the calls of handlers in that status for its own module.
    calls_assessed: int | None
    standards: dict[str, Measure]


class Group(BaseModel):
    key: str | None
    months: list[MonthRow]


class Agreement(BaseModel):
    pairs: int
    agreed: int
    percent_agreement: float | None
    kappa: float | None  # Cohen's kappa; null when chance agreement is 1 (or no pairs)


class Practice(BaseModel):
    standard: str
    alert_kinds: list[str]
    # alerted / not_alerted, and within alerted: acknowledged / not_acknowledged.
    groups: dict[str, Measure]


class Report(BaseModel):
    from_month: str = Field(serialization_alias="from")
    to_month: str = Field(serialization_alias="to")
    form: str
    measures: list[dict[str, str]]  # the table's rows: standard id and its label
    months: list[MonthRow]
    by: Literal["handler", "queue", "training"] | None = None
    groups: list[Group] | None = None
    calibration: dict[str, Agreement]
    practice: Practice | None


# ---- training --------------------------------------------------------------------------


class TrainingRecordCreate(BaseModel):
    model_config = _STRICT

    staff_id: Annotated[StorableText, Field(min_length=1, max_length=32)]
    module: Key
    completed_on: date
    expires_on: date | None = None


class TrainingRecordRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    staff_id: str
    module: str
    completed_on: date
    expires_on: date | None
    recorded_by: str
    recorded_at: datetime


class TrainingRecordList(BaseModel):
    items: list[TrainingRecordRead]


class ModuleSummary(BaseModel):
    module: str
    title: str
    trained: int
    expired: int
    untrained: int


class TrainingSummary(BaseModel):
    on: date
    staff: int  # handlers counted (active staff with the handler role)
    modules: list[ModuleSummary]
