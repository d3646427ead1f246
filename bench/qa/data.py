"""The QA benchmark's data: a year of monthly QA at a large force, as the service writes it.

Every row is built by the functions below from a call's facts (who, when, which queue, the
answers), with the service's own pure code where the service derives a column: the call's
state and merge marks from `app.calls.lifecycle.fold` over its four canonical events, the
review's UK-local month from `app.qa.months.of`, each answer's met/applicable from the shipped
form. `bench.qa.fidelity` posts a few calls through the signed webhook and grades them through
the API, then checks that these functions give the very rows the service wrote for them.

What the report counts is tallied here too, while generating, from the generator's own
choices (the month a call was placed in, the answers it was given, the alerts it carried, the
training each handler did), never read back from the database: `bench.qa.expected` compares
the service's report with these tallies.
"""

from __future__ import annotations

import json
import random
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from app.calls import lifecycle
from app.qa import months
from app.qa.forms import NOT_APPLICABLE, QaForm
from app.telephony.events import EventType, Presentation

UK = ZoneInfo("Europe/London")
QUEUES = ("emergency", "non_emergency", "online", "switchboard", "resolution_centre")
PRACTICE_KINDS = ("repeat_victim", "household_risk")
# The shipped form's standards, their scales and met answers (issue 12's contract), written out
# here rather than read from the form, so the tallies do not depend on the code under test.
SCALES = {
    "vulnerability": ("outstanding", "good", "requires_improvement", "inadequate"),
    "prevention": ("outstanding", "good", "requires_improvement", "inadequate"),
    "preservation": ("outstanding", "good", "requires_improvement", "inadequate"),
    "repeat_victim_check": ("yes", "no"),
}
MET = {"outstanding", "good", "yes"}
# The share of not-applicable answers per standard (no crime to prevent, no evidence...).
NOT_APPLICABLE_SHARE = {
    "vulnerability": 0.04,
    "prevention": 0.25,
    "preservation": 0.30,
    "repeat_victim_check": 0.20,
}
WEIGHTS = {4: (15, 40, 30, 15), 2: (70, 30)}
CALIBRATION_SHARE = 0.03  # calls graded again by a second reviewer
ALERT_SHARE = 0.25  # calls that carried a repeat-victim or household-risk alert
OTHER_ALERT_SHARE = 0.05  # calls with another kind of alert only (not counted as alerted)
ACKNOWLEDGED_SHARE = 0.6
REVIEWERS = 40


def handler_id(n: int) -> str:
    return f"H{n:05d}"


def reviewer_id(n: int) -> str:
    return f"QA{n:03d}"


def month_list(first: str, count: int) -> list[str]:
    year, month = months.parse(first)
    out = []
    for _ in range(count):
        out.append(months.label(year, month))
        year, month = months.following(year, month)
    return out


def local_moment(month: str, rng: random.Random) -> datetime:
    """A random moment of the UK-local month, between 07:00 and 22:59 local (never in the
    hour the clocks skip or repeat), in UTC. Built from the local wall clock with zoneinfo,
    not with `app.qa.months`, so that the month a call counts in is checked, not assumed."""
    year, number = (int(part) for part in month.split("-"))
    last = (date(year + number // 12, number % 12 + 1, 1) - timedelta(days=1)).day
    local = datetime(
        year, number, rng.randint(1, last), rng.randint(7, 22), rng.randrange(60),
        rng.randrange(60), tzinfo=UK,
    )  # fmt: skip
    return local.astimezone(UTC)


# ---- rows, as the service writes them ----------------------------------------------------


@dataclass(frozen=True)
class CallFacts:
    """One call's canonical events: offered to `queue`, rung and answered at `handler`,
    ended after `talk` seconds of talk."""

    external_id: str
    handler: str
    queue: str
    offered_at: datetime
    talk: int
    number: str

    def events(self) -> list[dict[str, Any]]:
        """The canonical events a platform posts for this call (the webhook's JSON)."""
        at = self.offered_at
        caller = {"number": self.number, "presentation": "allowed"}
        times = (at, at + timedelta(seconds=2), at + timedelta(seconds=5),
                 at + timedelta(seconds=5 + self.talk))  # fmt: skip
        extra: list[dict[str, Any]] = [
            {"caller": caller, "called": "999", "queue": self.queue},
            {"handler_id": self.handler},
            {"handler_id": self.handler},
            {"cause": "normal_clearing"},
        ]
        return [
            {"event_id": f"{self.external_id}-{kind}", "call_id": self.external_id, "type": kind,
             "occurred_at": when.isoformat().replace("+00:00", "Z"), **fields}
            for kind, when, fields in zip(
                ("offered", "ringing", "answered", "ended"), times, extra, strict=True
            )
        ]  # fmt: skip

    def facts(self) -> list[lifecycle.Fact]:
        """What each event contributes to the call, as `app.calls.service.fact_of` gives it
        for these events (the number is already E.164, so normalising keeps it)."""
        out = []
        for body in self.events():
            kind = EventType(body["type"])
            out.append(
                lifecycle.Fact(
                    event_id=body["event_id"],
                    type=kind,
                    occurred_at=datetime.fromisoformat(body["occurred_at"]),
                    has_caller="caller" in body,
                    caller_e164=self.number if "caller" in body else None,
                    presentation=Presentation.allowed
                    if "caller" in body
                    else Presentation.unavailable,
                    called=body.get("called"),
                    queue=body.get("queue"),
                    handler_id=body.get("handler_id"),
                    cause=body.get("cause"),
                )
            )
        return out


def call_row(call_id: int, call: CallFacts, flagged: bool) -> dict[str, Any]:
    """The `call` row the service holds once the four events are processed (created when the
    first arrived, updated by the last)."""
    state = lifecycle.fold(call.facts())
    assert state.state is not None and state.ended_at is not None
    return {
        "id": call_id,
        "source": "canonical",
        "external_id": call.external_id,
        "state": state.state,
        "caller_e164": state.caller_e164,
        "presentation": state.presentation,
        "called": state.called,
        "queue": state.queue,
        "handler_id": state.handler_id,
        "handlers": list(state.handlers),
        "offered_at": state.offered_at,
        "ringing_at": state.ringing_at,
        "answered_at": state.answered_at,
        "ended_at": state.ended_at,
        "end_cause": state.end_cause,
        "flagged": flagged,
        "marks": state.marks,
        "created_at": call.offered_at,
        "updated_at": state.ended_at,
    }


def sample_row(sample_id: int, month: str, seed: int, drawn_by: str) -> dict[str, Any]:
    """A sample drawn with no filters, 3 per handler, every handler having enough calls."""
    return {
        "id": sample_id,
        "month": month,
        "per_handler": 3,
        "seed": seed,
        "criteria": {
            "queue": None,
            "min_talk_seconds": None,
            "flagged_only": False,
            "at_least_one_flagged": False,
        },
        "drawn_by": drawn_by,
        "drawn_at": months.start_utc(*months.following(*months.parse(month))),
        "shortfalls": [],
    }


def review_rows(
    form: QaForm,
    review_id: int,
    call: dict[str, Any],
    ordinal: int,
    reviewer: str,
    sample_id: int | None,
    answers: dict[str, str],
    feedback: dict[str, str],
    reviewed_at: datetime,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The `qa_review` row and its `qa_answer` rows, as `app.qa.reviews.create_review` stores
    them for a qa reviewer grading `call` (a `call_row`)."""
    offered_at = call["offered_at"]
    review = {
        "id": review_id,
        "call_id": call["id"],
        "ordinal": ordinal,
        "reviewer_id": reviewer,
        "reviewer_role": "qa",
        "reviewed_at": reviewed_at,
        "sample_id": sample_id,
        "form": form.ref,
        "handler_id": call["handler_id"],
        "queue": call["queue"],
        "call_month": months.of(offered_at),
        "offered_at": offered_at,
    }
    rows = [
        {
            "review_id": review_id,
            "standard": standard.id,
            "answer": answers[standard.id],
            "met": answers[standard.id] in standard.met,
            "applicable": answers[standard.id] != NOT_APPLICABLE,
            "feedback": feedback.get(standard.id) or None,
        }
        for standard in form.standards
    ]
    return review, rows


def alert_row(
    alert_id: int, call: dict[str, Any], kind: str, acknowledged: bool, pack: str
) -> dict[str, Any]:
    """An alert as the history step raises it on `offered` (acknowledged by the handler
    during the call when `acknowledged`)."""
    raised = call["offered_at"] + timedelta(milliseconds=40)
    return {
        "id": alert_id,
        "call_id": call["id"],
        "kind": kind,
        "severity": "high",
        "title": kind.replace("_", " ").capitalize(),
        "reasons": ["2 victim contacts in the last 365 days"],
        "evidence": [],
        "rule": f"{kind}@{pack}",
        "tags": [],
        "suggested_grade": None,
        "raised_at": raised,
        "acknowledged_at": call["answered_at"] + timedelta(seconds=20) if acknowledged else None,
        "acknowledged_by": call["handler_id"] if acknowledged else None,
    }


def tally_rows(
    reviews: list[dict[str, Any]], answers: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """`qa_month_tally` as the service leaves it: every first review's answers summed by its
    month and standard (`app.qa.tally.add`, once per first review)."""
    month_of = {r["id"]: r["call_month"] for r in reviews if r["ordinal"] == 1}
    sums: dict[tuple[str, str], list[int]] = {}
    for a in answers:
        month = month_of.get(a["review_id"])
        if month is not None:
            cell = sums.setdefault((month, a["standard"]), [0, 0, 0])
            cell[0] += 1
            cell[1] += int(a["met"])
            cell[2] += int(a["applicable"])
    return [
        {"call_month": m, "standard": s, "answered": n, "met": met, "applicable": applicable}
        for (m, s), (n, met, applicable) in sorted(sums.items())
    ]


# ---- the year's data and what the report must say about it -------------------------------


@dataclass
class Tally:
    """Independent counts: cells keyed (..., month, standard) -> [met, applicable, answered];
    calls keyed (..., month) -> first reviews."""

    cells: dict[tuple[Any, ...], list[int]] = field(
        default_factory=lambda: defaultdict(lambda: [0, 0, 0])
    )
    calls: dict[tuple[Any, ...], int] = field(default_factory=lambda: defaultdict(int))

    def add(self, key: tuple[Any, ...], standard: str, answer: str) -> None:
        cell = self.cells[(*key, standard)]
        cell[0] += answer in MET
        cell[1] += answer != NOT_APPLICABLE
        cell[2] += 1


@dataclass
class Expected:
    months: list[str]
    total: Tally = field(default_factory=Tally)
    by_handler: Tally = field(default_factory=Tally)
    by_queue: Tally = field(default_factory=Tally)
    by_training: Tally = field(default_factory=Tally)
    # practice group -> [met, applicable, answered] of the practice standard
    practice: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0, 0]))
    # standard -> [pairs, agreed]
    calibration: dict[str, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))


@dataclass(frozen=True)
class Completion:
    completed_on: date
    expires_on: date | None


def training_status(completions: list[Completion], on: date) -> str:
    """The register's rule, written again here: the latest completion on or before `on`
    decides; trained while it has not expired."""
    latest = None
    for c in completions:
        if c.completed_on <= on and (latest is None or c.completed_on > latest.completed_on):
            latest = c
    if latest is None:
        return "untrained"
    return "trained" if latest.expires_on is None or latest.expires_on > on else "expired"


@dataclass
class Dataset:
    staff: list[tuple[str, str, str]]  # (id, name, role)
    training: list[dict[str, Any]]
    samples: list[dict[str, Any]]
    calls: list[dict[str, Any]]
    sample_calls: list[dict[str, Any]]
    reviews: list[dict[str, Any]]
    answers: list[dict[str, Any]]
    alerts: list[dict[str, Any]]
    expected: Expected


def _answers(rng: random.Random, alerted: bool) -> dict[str, str]:
    out = {}
    for standard, scale in SCALES.items():
        if rng.random() < NOT_APPLICABLE_SHARE[standard]:
            out[standard] = NOT_APPLICABLE
            continue
        weights = WEIGHTS[len(scale)]
        if standard == "repeat_victim_check" and alerted:
            weights = (85, 15)  # the alert reminded the handler to check
        out[standard] = rng.choices(scale, weights)[0]
    return out


def _second_opinion(rng: random.Random, first: dict[str, str]) -> dict[str, str]:
    out = {}
    for standard, answer in first.items():
        out[standard] = answer if rng.random() < 0.8 else rng.choice(SCALES[standard])
    return out


def generate(
    form: QaForm,
    first_month: str,
    month_count: int,
    handlers: int,
    per_handler: int,
    seed: int = 12,
) -> Dataset:
    """The year: `handlers` handlers, each with `per_handler` sampled and reviewed calls a
    month for `month_count` months from `first_month`; their training; the tallies."""
    rng = random.Random(seed)
    span = month_list(first_month, month_count)
    expected = Expected(months=span)
    staff = [(handler_id(h), f"Bench handler {h}", "handler") for h in range(handlers)]
    staff += [(reviewer_id(r), f"Bench reviewer {r}", "qa") for r in range(REVIEWERS)]
    modules = {s.id: s.training_module for s in form.standards}

    # Training: each module done by three handlers in four, some twice (a refresher); most
    # expire after two years. Dates run from two years before the span to its end.
    register: dict[str, dict[str, list[Completion]]] = defaultdict(lambda: defaultdict(list))
    training: list[dict[str, Any]] = []
    first_day = date.fromisoformat(f"{span[0]}-01")
    days = (date.fromisoformat(f"{span[-1]}-28") - first_day).days + 730
    recorded_at = months.start_utc(*months.parse(span[0])) - timedelta(days=800)
    for h in range(handlers):
        for module in form.module_ids:
            if rng.random() >= 0.75:
                continue
            done = sorted({rng.randrange(days) for _ in range(1 + (rng.random() < 0.2))})
            for offset in done:
                completed = first_day - timedelta(days=730 - offset)
                expires = completed + timedelta(days=730) if rng.random() < 0.8 else None
                register[handler_id(h)][module].append(Completion(completed, expires))
                training.append(
                    {"staff_id": handler_id(h), "module": module, "completed_on": completed,
                     "expires_on": expires, "recorded_by": "staff:bench",
                     "recorded_at": recorded_at}
                )  # fmt: skip

    samples, calls, sample_calls, reviews, answers, alerts = [], [], [], [], [], []
    review_id = alert_id = 0
    for m, month in enumerate(span):
        sample_id = m + 1
        samples.append(sample_row(sample_id, month, 1000 + m, reviewer_id(m % REVIEWERS)))
        month_end = months.start_utc(*months.following(*months.parse(month)))
        for h in range(handlers):
            handler = handler_id(h)
            home = QUEUES[h % len(QUEUES)]
            for k in range(per_handler):
                queue = home if rng.random() < 0.9 else rng.choice(QUEUES)
                offered = local_moment(month, rng)
                facts = CallFacts(
                    external_id=f"qa-{month}-{h}-{k}", handler=handler, queue=queue,
                    offered_at=offered, talk=rng.randint(30, 900),
                    number=f"+4477009{(h * 37 + k) % 100000:05d}",
                )  # fmt: skip
                roll = rng.random()
                kind = (
                    rng.choice(PRACTICE_KINDS) if roll < ALERT_SHARE
                    else "repeat_caller" if roll < ALERT_SHARE + OTHER_ALERT_SHARE else None
                )  # fmt: skip
                acknowledged = kind is not None and rng.random() < ACKNOWLEDGED_SHARE
                call = call_row(len(calls) + 1, facts, flagged=kind is not None)
                calls.append(call)
                sample_calls.append(
                    {"sample_id": sample_id, "call_id": call["id"], "handler_id": handler}
                )
                if kind is not None:
                    alert_id += 1
                    alerts.append(alert_row(alert_id, call, kind, acknowledged, "2026.11.1"))
                alerted = kind in PRACTICE_KINDS
                given = _answers(rng, alerted)
                feedback = {s: "Bench feedback." for s in given if rng.random() < 0.1}
                reviewer = rng.randrange(REVIEWERS)
                reviewed_at = month_end + timedelta(days=rng.randint(1, 20))
                review_id += 1
                review, rows = review_rows(
                    form, review_id, call, 1, reviewer_id(reviewer), sample_id, given, feedback,
                    reviewed_at,
                )  # fmt: skip
                reviews.append(review)
                answers.extend(rows)
                # What the report must say, from the generator's own choices.
                on = offered.astimezone(UK).date()
                expected.total.calls[(month,)] += 1
                expected.by_handler.calls[(handler, month)] += 1
                expected.by_queue.calls[(queue, month)] += 1
                for standard, answer in given.items():
                    expected.total.add((month,), standard, answer)
                    expected.by_handler.add((handler, month), standard, answer)
                    expected.by_queue.add((queue, month), standard, answer)
                    status = training_status(register[handler][modules[standard] or ""], on)
                    expected.by_training.add((status, month), standard, answer)
                practice = given["repeat_victim_check"]
                groups = ["alerted", "acknowledged" if acknowledged else "not_acknowledged"]
                for group in groups if alerted else ["not_alerted"]:
                    cell = expected.practice[group]
                    cell[0] += practice in MET
                    cell[1] += practice != NOT_APPLICABLE
                    cell[2] += 1
                if rng.random() < CALIBRATION_SHARE:
                    second = _second_opinion(rng, given)
                    review_id += 1
                    other = (reviewer + 1 + rng.randrange(REVIEWERS - 1)) % REVIEWERS
                    review, rows = review_rows(
                        form, review_id, call, 2, reviewer_id(other), sample_id, second, {},
                        reviewed_at + timedelta(days=2),
                    )  # fmt: skip
                    reviews.append(review)
                    answers.extend(rows)
                    for standard, answer in second.items():
                        pair = expected.calibration[standard]
                        pair[0] += 1
                        pair[1] += answer == given[standard]
    return Dataset(
        staff, training, samples, calls, sample_calls, reviews, answers, alerts, expected
    )


# ---- loading -----------------------------------------------------------------------------

JSON_COLUMNS = {"handlers", "marks", "criteria", "shortfalls", "reasons", "evidence", "tags"}


def _records(rows: list[dict[str, Any]], columns: list[str]) -> Iterator[tuple[Any, ...]]:
    for row in rows:
        yield tuple(
            json.dumps(row[c], separators=(",", ":")) if c in JSON_COLUMNS else row[c]
            for c in columns
        )


async def copy(conn: asyncpg.Connection, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    for start in range(0, len(rows), 50_000):
        await conn.copy_records_to_table(
            table, records=list(_records(rows[start : start + 50_000], columns)), columns=columns
        )


async def load(conn: asyncpg.Connection, data: Dataset) -> dict[str, int]:
    """COPY everything in one transaction, then move each id sequence past the loaded ids
    (the service's own inserts come after)."""
    created = datetime(2020, 1, 1, tzinfo=UTC)
    tally = tally_rows(data.reviews, data.answers)
    async with conn.transaction():
        await conn.copy_records_to_table(
            "staff", records=[(i, n, r, True, created) for i, n, r in data.staff],
            columns=["id", "name", "role", "active", "created_at"],
        )  # fmt: skip
        await copy(conn, "training_record", data.training)
        await copy(conn, "qa_sample", data.samples)
        await copy(conn, "call", data.calls)
        await copy(conn, "qa_sample_call", data.sample_calls)
        await copy(conn, "alert", data.alerts)
        await copy(conn, "qa_review", data.reviews)
        await copy(conn, "qa_answer", data.answers)
        await copy(conn, "qa_month_tally", tally)
        for table in ("training_record", "qa_sample", "call", "alert", "qa_review"):
            await conn.execute(
                f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                f'(SELECT coalesce(max(id), 0) + 1 FROM "{table}"), false)'
            )
    return {
        "staff": len(data.staff),
        "training_record": len(data.training),
        "qa_sample": len(data.samples),
        "call": len(data.calls),
        "qa_sample_call": len(data.sample_calls),
        "alert": len(data.alerts),
        "qa_review": len(data.reviews),
        "qa_answer": len(data.answers),
        "qa_month_tally": len(tally),
    }
