"""The force's monthly table, its breakdowns, calibration and whether alerts changed practice.

Counting rules (issue 12):
- a call counts in the UK-local month it was offered, once: its first review (`ordinal` 1);
  later reviews of the same call are calibration and only feed the agreement figures;
- a standard answered `not_applicable` leaves that standard's denominator;
- `percent` = 100 x met / applicable rounded half up to one decimal (49.05 -> 49.1), computed
  exactly on integers and given as a Decimal-rounded number; `null` when nothing applied.
Sums are done by the database (GROUP BY over first reviews in the months asked for), so the
cost follows the number of groups, not of reviews. What it costs at a year of 5,000 handlers
(180,000 reviews, 720,000 answers: `bench/qa`, BENCHMARKS.md) shaped the queries:
- the table comes from running sums kept with the reviews (`app.qa.tally`), not from the
  year's answers; the breakdowns by handler and queue still group the answers;
- the practice split reads only the first reviews of calls that carried one of the alerts
  (joined from those alerts); the calls with none are the rest of the table's practice row;
- calibration counts answer pairs in the database, starting from the later reviews (a partial
  index holds only those), so only calls graded more than once are read;
- on PostgreSQL the report's transaction runs without JIT and parallel workers (see
  `_planner_settings`).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal
from fractions import Fraction
from typing import Literal

from sqlalchemy import ColumnElement, and_, case, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute, aliased

from app.audit import service as audit
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.db import is_postgres
from app.errors import Forbidden
from app.history.models import Alert, AlertAcknowledgement
from app.qa import months, tally, training
from app.qa.forms import QaForm
from app.qa.models import QaAnswer, QaReview
from app.qa.schemas import Agreement, Group, Measure, MonthRow, Practice, Report

By = Literal["handler", "queue", "training"]
TRAINING_STATUSES = ("trained", "expired", "untrained")


def percent(met: int, applicable: int) -> float | None:
    """100 x met / applicable, half up to one decimal; None when nothing applied."""
    if applicable <= 0:
        return None
    # floor(1000 m / a + 1/2) in integers: exact at every .x5 boundary, whatever the sizes.
    tenths = (2000 * met + applicable) // (2 * applicable)
    return float(Decimal(tenths).scaleb(-1))


def _half_up(value: Fraction, places: int) -> float:
    quantum = Decimal(1).scaleb(-places)
    exact = Decimal(value.numerator) / Decimal(value.denominator)
    return float(exact.quantize(quantum, rounding=ROUND_HALF_UP))


def agreement(pairs: Sequence[tuple[str, str]]) -> Agreement:
    """Percent agreement and Cohen's kappa of (first rater, second rater) answer pairs.

    kappa = (po - pe) / (1 - pe): po the observed agreement, pe the agreement expected by
    chance from each rater's own answer frequencies. Undefined (None) when pe is 1 (both
    raters always gave the same single answer) or there are no pairs."""
    n = len(pairs)
    agreed = sum(1 for a, b in pairs if a == b)
    if n == 0:
        return Agreement(pairs=0, agreed=0, percent_agreement=None, kappa=None)
    first, second = Counter(a for a, _ in pairs), Counter(b for _, b in pairs)
    po = Fraction(agreed, n)
    pe = sum((Fraction(first[k], n) * Fraction(second[k], n) for k in first), Fraction(0))
    kappa = None if pe == 1 else _half_up((po - pe) / (1 - pe), 3)
    return Agreement(pairs=n, agreed=agreed, percent_agreement=percent(agreed, n), kappa=kappa)


@dataclass
class _Cell:
    met: int = 0
    applicable: int = 0
    answered: int = 0

    def add(self, met: int, applicable: int, answered: int) -> None:
        self.met += met
        self.applicable += applicable
        self.answered += answered

    def measure(self) -> Measure:
        return Measure(
            met=self.met,
            applicable=self.applicable,
            not_applicable=self.answered - self.applicable,
            percent=percent(self.met, self.applicable),
        )


_MET = func.sum(case((QaAnswer.met, 1), else_=0))
_APPLICABLE = func.sum(case((QaAnswer.applicable, 1), else_=0))


def _counted(span: Sequence[str]) -> ColumnElement[bool]:
    """First reviews of calls offered in the months asked for."""
    return and_(
        QaReview.ordinal == 1, QaReview.call_month >= span[0], QaReview.call_month <= span[-1]
    )


def _month_rows(
    form: QaForm,
    span: Sequence[str],
    cells: dict[tuple[str, str], _Cell],
    calls: dict[str, int] | None,
) -> list[MonthRow]:
    return [
        MonthRow(
            month=month,
            calls_assessed=None if calls is None else calls.get(month, 0),
            standards={s.id: cells.get((month, s.id), _Cell()).measure() for s in form.standards},
        )
        for month in span
    ]


# What a breakdown groups by: the handler (always set) or the queue (absent on some calls).
_GroupColumn = InstrumentedAttribute[str] | InstrumentedAttribute[str | None]


async def _calls(
    session: AsyncSession, span: Sequence[str], column: _GroupColumn | None
) -> list[tuple[str | None, str, int]]:
    """(group, month, first reviews) rows, group None without `column`: an index-only count
    on `ix_qa_review_call_month`."""
    month = QaReview.call_month
    if column is None:
        rows = await session.execute(
            select(month, func.count()).where(_counted(span)).group_by(month)
        )
        return [(None, m, int(count)) for m, count in rows]
    grouped = await session.execute(
        select(column, month, func.count()).where(_counted(span)).group_by(column, month)
    )
    return [(group, m, int(count)) for group, m, count in grouped]


async def _groups(
    session: AsyncSession, span: Sequence[str], column: _GroupColumn
) -> tuple[dict[str | None, dict[tuple[str, str], _Cell]], dict[str | None, dict[str, int]]]:
    """Per value of `column`: the cells by (month, standard) and the calls by month."""
    answers = await session.execute(
        select(column, QaReview.call_month, QaAnswer.standard, func.count(), _MET, _APPLICABLE)
        .select_from(QaAnswer)
        .join(QaReview, QaReview.id == QaAnswer.review_id)
        .where(_counted(span))
        .group_by(column, QaReview.call_month, QaAnswer.standard)
    )
    cells: dict[str | None, dict[tuple[str, str], _Cell]] = defaultdict(dict)
    for group, month, standard, answered, met, applicable in answers.all():
        cells[group].setdefault((month, standard), _Cell()).add(
            int(met or 0), int(applicable or 0), int(answered)
        )
    calls: dict[str | None, dict[str, int]] = defaultdict(dict)
    for group, month, count in await _calls(session, span, column):
        calls[group][month] = count
    return cells, calls


async def _everyone(
    session: AsyncSession, span: Sequence[str]
) -> tuple[dict[tuple[str, str], _Cell], dict[str, int]]:
    """The table: cells by (month, standard) from the running sums (`app.qa.tally`), and
    calls by month."""
    cells = {
        (month, standard): _Cell(met, applicable, answered)
        for month, standard, answered, met, applicable in await tally.read(session, span)
    }
    calls = {month: count for _, month, count in await _calls(session, span, None)}
    return cells, calls


async def _training_groups(session: AsyncSession, form: QaForm, span: Sequence[str]) -> list[Group]:
    """Each standard's results split by the handler's status in that standard's training
    module on the day the call was offered (UK local)."""
    rows = (
        await session.execute(
            select(
                QaReview.handler_id,
                QaReview.offered_at,
                QaReview.call_month,
                QaAnswer.standard,
                QaAnswer.met,
                QaAnswer.applicable,
            )
            .join(QaReview, QaReview.id == QaAnswer.review_id)
            .where(_counted(span))
        )
    ).all()
    register = await training.records_by_staff(session, {r.handler_id for r in rows if r[0]})
    modules = {s.id: s.training_module for s in form.standards}
    cells: dict[str, dict[tuple[str, str], _Cell]] = {s: {} for s in TRAINING_STATUSES}
    for handler_id, offered_at, month, standard, met, applicable in rows:
        module = modules.get(standard)
        if module is None:
            continue
        on: date = months.local_date(offered_at)
        status = training.status_on(register.get(handler_id or "", {}).get(module, []), on)
        cells[status].setdefault((month, standard), _Cell()).add(int(met), int(applicable), 1)
    return [
        Group(key=status, months=_month_rows(form, span, cells[status], None))
        for status in TRAINING_STATUSES
    ]


async def _calibration(
    session: AsyncSession, form: QaForm, span: Sequence[str]
) -> dict[str, Agreement]:
    """Agreement per standard over calls reviewed more than once: every pair of a call's
    reviews in the months, the earlier review as the first rater. The database counts the
    pairs by (standard, first answer, second answer), starting from the later reviews (only
    those are in `ix_qa_review_calibration`)."""
    earlier, later = aliased(QaReview), aliased(QaReview)
    first_answer, second_answer = aliased(QaAnswer), aliased(QaAnswer)
    rows = await session.execute(
        select(first_answer.standard, first_answer.answer, second_answer.answer, func.count())
        .select_from(later)
        .join(
            earlier,
            and_(
                earlier.call_id == later.call_id,
                earlier.ordinal < later.ordinal,
                earlier.call_month >= span[0],
                earlier.call_month <= span[-1],
            ),
        )
        .join(first_answer, first_answer.review_id == earlier.id)
        .join(
            second_answer,
            and_(
                second_answer.review_id == later.id,
                second_answer.standard == first_answer.standard,
            ),
        )
        .where(later.ordinal > 1, later.call_month >= span[0], later.call_month <= span[-1])
        .group_by(first_answer.standard, first_answer.answer, second_answer.answer)
    )
    pairs: dict[str, list[tuple[str, str]]] = {s.id: [] for s in form.standards}
    for standard, first, second, count in rows.all():
        if standard in pairs:
            pairs[standard].extend([(first, second)] * int(count))
    return {standard: agreement(found) for standard, found in pairs.items()}


async def _practice(
    session: AsyncSession,
    form: QaForm,
    span: Sequence[str],
    table: dict[tuple[str, str], _Cell],
) -> Practice | None:
    """The practice standard's rate for calls with one of the alerts against calls with none,
    and, among those with one, whether the call's handler acknowledged it. Only the first
    reviews of alerted calls are read (joined from those alerts); the calls with none are the
    rest of the table's practice row (`table`)."""
    if form.practice_standard is None:
        return None
    kinds = list(form.practice_alert_kinds)
    # The handler's own acknowledgement (issue 15: a supervisor's no longer hides it).
    by_handler = (
        select(AlertAcknowledgement.id)
        .where(
            AlertAcknowledgement.alert_id == Alert.id,
            AlertAcknowledgement.staff_id == QaReview.handler_id,
        )
        .exists()
    )
    alerted = (
        select(
            QaReview.id.label("review_id"),
            func.max(case((by_handler, 1), else_=0)).label("acknowledged"),
        )
        .select_from(Alert)
        .join(QaReview, QaReview.call_id == Alert.call_id)
        .where(Alert.kind.in_(kinds), _counted(span))
        .group_by(QaReview.id)
        .subquery("alerted")
    )
    rows = await session.execute(
        select(alerted.c.acknowledged, func.count(), _MET, _APPLICABLE)
        .select_from(alerted)
        .join(
            QaAnswer,
            and_(
                QaAnswer.review_id == alerted.c.review_id,
                QaAnswer.standard == form.practice_standard,
            ),
        )
        .group_by(alerted.c.acknowledged)
    )
    groups = {
        name: _Cell() for name in ("alerted", "not_alerted", "acknowledged", "not_acknowledged")
    }
    for was_acknowledged, answered, met, applicable in rows.all():
        values = (int(met or 0), int(applicable or 0), int(answered))
        groups["alerted"].add(*values)
        groups["acknowledged" if was_acknowledged else "not_acknowledged"].add(*values)
    everyone = _Cell()
    for (_month, standard), cell in table.items():
        if standard == form.practice_standard:
            everyone.add(cell.met, cell.applicable, cell.answered)
    done = groups["alerted"]
    groups["not_alerted"].add(
        everyone.met - done.met,
        everyone.applicable - done.applicable,
        everyone.answered - done.answered,
    )
    return Practice(
        standard=form.practice_standard,
        alert_kinds=kinds,
        groups={name: cell.measure() for name, cell in groups.items()},
    )


async def _planner_settings(session: AsyncSession) -> None:
    """For the report's transaction only, on PostgreSQL: no JIT (the aggregates over a year of
    reviews are costed high enough to be compiled, and compiling them took ~0.5 s, longer than
    running them) and no parallel workers (the plans would give each worker its own copy of
    the same hash join: as much work again per worker, for no gain on two busy cores)."""
    if is_postgres(session):
        await session.execute(text("SET LOCAL jit = off"))
        await session.execute(text("SET LOCAL max_parallel_workers_per_gather = 0"))


def measures(form: QaForm) -> list[dict[str, str]]:
    return [{"id": "calls_assessed", "label": "Calls assessed"}] + [
        {"id": s.id, "label": s.report_label} for s in form.standards
    ]


async def build(
    session: AsyncSession,
    form: QaForm,
    start: str,
    end: str,
    principal: Principal,
    *,
    by: By | None = None,
) -> Report:
    """The report for the months from `start` to `end` inclusive (422 if malformed or
    reversed). `by=handler` is for supervisors and QA only (403 otherwise)."""
    span = months.span(start, end)
    # Individual handlers' results are for those who manage and coach them (issue 12).
    if by == "handler" and not policy.allows(principal, Capability.qa_report_by_handler):
        raise Forbidden("results by handler are for supervisors and QA reviewers")
    await _planner_settings(session)
    cells, calls = await _everyone(session, span)
    groups: list[Group] | None = None
    if by in ("handler", "queue"):
        column = QaReview.handler_id if by == "handler" else QaReview.queue
        by_cells, by_calls = await _groups(session, span, column)
        groups = [
            Group(key=key, months=_month_rows(form, span, by_cells[key], by_calls.get(key, {})))
            for key in sorted(set(by_cells) | set(by_calls), key=lambda k: (k is None, k or ""))
        ]
    elif by == "training":
        groups = await _training_groups(session, form, span)
    report = Report(
        from_month=span[0],
        to_month=span[-1],
        form=form.ref,
        measures=measures(form),
        months=_month_rows(form, span, cells, calls),
        by=by,
        groups=groups,
        calibration=await _calibration(session, form, span),
        practice=await _practice(session, form, span, cells),
    )
    audit.record(
        session,
        actor=principal.actor,
        action="consultation",
        subject_type="qa_report",
        justification="QA monthly report",
        records={"from": span[0], "to": span[-1], "by": by},
    )
    return report


def table_rows(report: Report) -> Iterable[tuple[str, list[str]]]:
    """The force's layout: (measure label, one cell per month), percentages to one decimal,
    empty where nothing applied."""
    yield (
        "Calls assessed",
        ["" if m.calls_assessed is None else str(m.calls_assessed) for m in report.months],
    )
    for measure in report.measures[1:]:
        cells = []
        for month in report.months:
            value = month.standards[measure["id"]].percent
            cells.append("" if value is None else f"{value:.1f}")
        yield measure["label"], cells
