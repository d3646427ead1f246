"""Are the loaded rows what the service writes? Three calls through the real service, and the
rows it stored (calls, sample, reviews, answers and the month's running sums) compared with
what `bench.qa.data` builds for the same calls.

The calls are posted through the signed batch webhook in a month outside the timed span (so
they change none of its figures), drawn in a sample through `POST /api/v1/qa/samples` and
graded through `POST /api/v1/qa/reviews` (one call twice: a calibration review). Only what the
service sets from its own clock is left out of the comparison (when a row was created, updated,
reviewed or drawn) and the row ids it chose (mapped).
"""

from __future__ import annotations

import json
import random
import time
from datetime import timedelta
from typing import Any

import asyncpg
import httpx

from app.qa.forms import QaForm
from app.telephony.signature import signed_headers
from bench.qa.data import (
    QUEUES,
    CallFacts,
    call_row,
    handler_id,
    local_moment,
    review_rows,
    reviewer_id,
    sample_row,
    tally_rows,
)
from bench.realtime_env import SECRET

CLOCK_COLUMNS = {"created_at", "updated_at", "reviewed_at", "drawn_at"}
GRADES = [
    {"vulnerability": "good", "prevention": "not_applicable", "preservation": "inadequate",
     "repeat_victim_check": "yes"},
    {"vulnerability": "outstanding", "prevention": "requires_improvement",
     "preservation": "not_applicable", "repeat_victim_check": "no"},
    {"vulnerability": "not_applicable", "prevention": "good", "preservation": "good",
     "repeat_victim_check": "not_applicable"},
]  # fmt: skip
SEED = 41


def _row(record: asyncpg.Record) -> dict[str, Any]:
    out = dict(record)
    for key, value in out.items():
        if isinstance(value, str) and value[:1] in "[{":
            out[key] = json.loads(value)
    return out


def _differences(what: str, stored: dict[str, Any], built: dict[str, Any]) -> list[str]:
    problems = []
    for column in sorted(set(stored) | set(built)):
        if column in CLOCK_COLUMNS:
            continue
        if stored.get(column) != built.get(column):
            problems.append(f"{what}.{column}: service wrote {stored.get(column)!r}, "
                            f"the loader writes {built.get(column)!r}")  # fmt: skip
    return problems


async def check(
    client: httpx.AsyncClient, dsn: str, form: QaForm, month: str, tokens: dict[str, str]
) -> list[str]:
    """The differences between the service's rows and the loader's (empty: none)."""
    rng = random.Random(SEED)
    calls = [
        CallFacts(f"qa-fidelity-{k}", handler_id(0), QUEUES[k % 2], local_moment(month, rng),
                  rng.randint(30, 600), f"+44770090{k:04d}")
        for k in range(3)
    ]  # fmt: skip
    raw = json.dumps([e for c in calls for e in c.events()]).encode()
    response = await client.post(
        "/api/v1/telephony/events/batch", content=raw,
        headers={"Content-Type": "application/json",
                 **signed_headers(SECRET.encode(), raw, int(time.time()))},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 12, response.text
    qa = {"Authorization": f"Bearer {tokens[reviewer_id(0)]}"}
    other = {"Authorization": f"Bearer {tokens[reviewer_id(1)]}"}
    response = await client.post(
        "/api/v1/qa/samples", json={"month": month, "per_handler": 3, "seed": SEED}, headers=qa
    )
    assert response.status_code == 201, response.text
    sample_id = response.json()["id"]
    conn = await asyncpg.connect(dsn)
    try:
        ids = {
            r["external_id"]: r["id"]
            for r in await conn.fetch(
                "SELECT id, external_id FROM call WHERE external_id LIKE 'qa-fidelity-%'"
            )
        }
        reviews = []  # (call id, reviewer, ordinal, answers, feedback)
        for k, facts in enumerate(calls):
            feedback = {"vulnerability": "Asked about the children: well done."} if k == 0 else {}
            reviews.append((ids[facts.external_id], reviewer_id(0), 1, GRADES[k], feedback))
        reviews.append((ids[calls[0].external_id], reviewer_id(1), 2, GRADES[1], {}))
        for call_id, reviewer, _, answers, feedback in reviews:
            response = await client.post(
                "/api/v1/qa/reviews",
                json={"call_id": call_id, "answers": answers, "feedback": feedback,
                      "sample_id": sample_id},
                headers=qa if reviewer == reviewer_id(0) else other,
            )  # fmt: skip
            assert response.status_code == 201, response.text
        problems: list[str] = []
        stored_sample = _row(
            await conn.fetchrow("SELECT * FROM qa_sample WHERE id = $1", sample_id)
        )
        problems += _differences(
            "qa_sample", stored_sample, sample_row(sample_id, month, SEED, reviewer_id(0))
        )
        built_calls = {}
        for facts in calls:
            stored = _row(
                await conn.fetchrow("SELECT * FROM call WHERE id = $1", ids[facts.external_id])
            )
            built_calls[stored["id"]] = built = call_row(stored["id"], facts, flagged=False)
            problems += _differences(f"call {facts.external_id}", stored, built)
        in_sample = {
            (r["call_id"], r["handler_id"])
            for r in await conn.fetch(
                "SELECT call_id, handler_id FROM qa_sample_call WHERE sample_id = $1", sample_id
            )
        }
        if in_sample != {(i, handler_id(0)) for i in ids.values()}:
            problems.append(f"qa_sample_call: {sorted(in_sample)}")
        built_reviews: list[dict[str, Any]] = []
        built_answers_all: list[dict[str, Any]] = []
        for call_id, reviewer, ordinal, answers, feedback in reviews:
            stored = _row(await conn.fetchrow(
                "SELECT * FROM qa_review WHERE call_id = $1 AND reviewer_id = $2", call_id, reviewer
            ))  # fmt: skip
            review, rows = review_rows(
                form, stored["id"], built_calls[call_id], ordinal, reviewer, sample_id, answers,
                feedback, stored["reviewed_at"] + timedelta(0),
            )  # fmt: skip
            problems += _differences(f"qa_review of call {call_id}", stored, review)
            built_reviews.append(review)
            built_answers_all.extend(rows)
            found = await conn.fetch("SELECT * FROM qa_answer WHERE review_id = $1", stored["id"])
            stored_answers = {r["standard"]: _row(r) for r in found}
            built_answers = {r["standard"]: r for r in rows}
            if set(stored_answers) != set(built_answers):
                problems.append(f"qa_answer standards {sorted(stored_answers)}")
            for standard, built in built_answers.items():
                problems += _differences(
                    f"qa_answer {standard}", stored_answers.get(standard, {}), built
                )
        stored_tally = [
            dict(r)
            for r in await conn.fetch(
                "SELECT * FROM qa_month_tally WHERE call_month = $1 ORDER BY standard", month
            )
        ]
        if stored_tally != tally_rows(built_reviews, built_answers_all):
            problems.append(f"qa_month_tally: service {stored_tally}")
        return problems
    finally:
        await conn.close()
