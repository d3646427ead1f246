"""Revision 0009 derives the monthly table's running sums from the reviews already stored (a
service upgraded with a year of reviews reports the same table after the upgrade)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from app import migrate
from app.config import Settings
from app.db import create_engine
from tests.test_migrations import scratch_settings

__all__ = ["scratch_settings"]  # the fixture, shared with the migration tests

AT = datetime(2022, 6, 15, 11, tzinfo=UTC)
# (review id, call id, ordinal, month, {standard: (met, applicable)})
REVIEWS = [
    (1, 1, 1, "2022-06", {"vulnerability": (1, 1), "prevention": (0, 0)}),
    (2, 1, 2, "2022-06", {"vulnerability": (0, 1), "prevention": (1, 1)}),  # calibration
    (3, 2, 1, "2022-06", {"vulnerability": (0, 1), "prevention": (1, 1)}),
    (4, 3, 1, "2022-07", {"vulnerability": (1, 1), "prevention": (0, 1)}),
]


async def test_revision_0009_sums_the_first_reviews_already_stored(
    scratch_settings: Settings,
) -> None:
    await migrate.upgrade_async(scratch_settings, "0008_qa")
    engine = create_engine(scratch_settings)
    try:
        async with engine.begin() as conn:
            for call_id in (1, 2, 3):
                await conn.execute(
                    text(
                        "INSERT INTO call (id, source, external_id, state, presentation, "
                        "handlers, marks, flagged, created_at, updated_at) VALUES (:id, "
                        "'canonical', :ext, 'ended', 'allowed', '[]', '{}', false, :at, :at)"
                    ),
                    {"id": call_id, "ext": f"m{call_id}", "at": AT},
                )
            for review_id, call_id, ordinal, month, answers in REVIEWS:
                await conn.execute(
                    text(
                        "INSERT INTO qa_review (id, call_id, ordinal, reviewer_id, reviewer_role, "
                        "reviewed_at, form, handler_id, queue, call_month, offered_at) VALUES "
                        "(:id, :call, :ordinal, :reviewer, 'qa', :at, 'qa-form@1', 'H1', "
                        "'emergency', :month, :at)"
                    ),
                    {"id": review_id, "call": call_id, "ordinal": ordinal, "month": month,
                     "reviewer": f"Q{ordinal}", "at": AT},
                )  # fmt: skip
                for standard, (met, applicable) in answers.items():
                    await conn.execute(
                        text(
                            "INSERT INTO qa_answer (review_id, standard, answer, met, applicable)"
                            " VALUES (:review, :standard, 'x', :met, :applicable)"
                        ),
                        {"review": review_id, "standard": standard, "met": bool(met),
                         "applicable": bool(applicable)},
                    )  # fmt: skip
        await migrate.upgrade_async(scratch_settings)
        async with engine.connect() as conn:
            rows = (
                await conn.execute(
                    text(
                        "SELECT call_month, standard, answered, met, applicable FROM qa_month_tally"
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert {(m, s): (n, met, a) for m, s, n, met, a in rows} == {
        ("2022-06", "vulnerability"): (2, 1, 2),
        ("2022-06", "prevention"): (2, 1, 1),
        ("2022-07", "vulnerability"): (1, 1, 1),
        ("2022-07", "prevention"): (1, 0, 1),
    }
