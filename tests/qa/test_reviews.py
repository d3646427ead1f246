"""Reviews: stored with answers and feedback per standard, every problem in one 422 with
nothing stored, calibration reviews by other reviewers, handlers see only their own, and
opening a call for review is audited."""

from __future__ import annotations

from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from sqlalchemy import select

from app.audit.models import AuditLog
from app.auth.models import Role
from app.config import Settings
from app.db import utcnow
from app.main import create_app
from app.qa.forms import SHIPPED_FORM
from app.qa.models import QaAnswer, QaReview
from app.thrive.models import Assessment
from tests.conftest import MakeStaff
from tests.qa.support import CallSpec, answers, at_uk, auth, offer
from tests.telephony.support import count_rows


async def test_review_is_stored_with_feedback_and_audited(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    qa = auth(await make_staff("Q1", Role.qa))
    ids = await offer(app, client, [CallSpec("r-1", "H1", at_uk("2022-06-30", 23))])
    body = {
        "call_id": ids["r-1"],
        "answers": answers(prevention="not_applicable", preservation="inadequate"),
        "feedback": {"preservation": "Advise the caller not to touch the door frame."},
    }
    response = await client.post("/api/v1/qa/reviews", json=body, headers=qa)
    assert response.status_code == 201, response.text
    review = response.json()
    assert review["targeted"] is True and review["calibration"] is False
    assert review["month"] == "2022-06"  # 23:00 UK on 30 June (22:00 UTC)
    assert review["handler_id"] == "H1" and review["queue"] == "emergency"
    assert review["form"] == "qa-form@2026.11.1"
    assert [(a["standard"], a["answer"], a["met"], a["applicable"]) for a in review["answers"]] == [
        ("vulnerability", "good", True, True),
        ("prevention", "not_applicable", False, False),
        ("preservation", "inadequate", False, True),
        ("repeat_victim_check", "yes", True, True),
    ]
    assert review["answers"][2]["feedback"] == body["feedback"]["preservation"]

    async with app.state.resources.sessions() as session:
        audit = await session.scalar(select(AuditLog).where(AuditLog.subject_type == "qa_review"))
    assert audit is not None
    assert (audit.actor, audit.action, audit.call_id) == ("staff:Q1", "collection", str(ids["r-1"]))

    # The same reviewer again: 409. Another reviewer: a calibration review.
    again = await client.post("/api/v1/qa/reviews", json=body, headers=qa)
    assert again.status_code == 409 and again.json()["error"]["code"] == "already_reviewed"
    supervisor = auth(await make_staff("S1", Role.supervisor))
    second = await client.post("/api/v1/qa/reviews", json=body, headers=supervisor)
    assert second.status_code == 201, second.text
    assert second.json()["calibration"] is True
    listed = await client.get("/api/v1/qa/reviews", params={"call_id": ids["r-1"]}, headers=qa)
    assert [r["reviewer_id"] for r in listed.json()["items"]] == ["S1", "Q1"]


async def test_every_problem_is_listed_and_nothing_stored(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    qa = auth(await make_staff("Q1", Role.qa))
    ids = await offer(
        app,
        client,
        [
            CallSpec("open", "H1", at_uk("2022-07-02"), ended=False),
            CallSpec("done", "H1", at_uk("2022-07-03")),
        ],
    )
    body = {
        "call_id": ids["open"],
        "answers": {
            "vulnerability": "brilliant",
            "prevention": "good",
            "repeat_victim_check": "yes",
            "grading": "good",
        },
        "feedback": {"tone": "kind"},
    }
    response = await client.post("/api/v1/qa/reviews", json=body, headers=qa)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "review_invalid"
    problems = {(d["field"], d["reason"]) for d in error["details"]}
    fields = sorted(field for field, _ in problems)
    assert fields == sorted(
        [
            "answers.grading",  # unknown standard
            "answers.vulnerability",  # not on its scale
            "answers.preservation",  # missing
            "feedback.tone",  # feedback for an unknown standard
            "call_id",  # not ended
        ]
    ), problems
    reasons = " ".join(reason for _, reason in problems)
    assert "unknown standard 'grading'" in reasons and "not on its scale" in reasons
    assert "missing" in reasons and "has not ended" in reasons
    assert "brilliant" not in response.text  # the submitted value is never echoed

    # A call not in the sample named; an unknown call.
    other_sample = await client.post(
        "/api/v1/qa/samples", json={"month": "2022-07", "seed": 1}, headers=qa
    )
    assert other_sample.status_code == 201
    wrong = await client.post(
        "/api/v1/qa/reviews",
        json={"call_id": ids["done"], "answers": answers(), "sample_id": 999},
        headers=qa,
    )
    assert wrong.status_code == 422
    assert wrong.json()["error"]["details"] == [
        {"field": "sample_id", "reason": "the call is not in sample 999 (or no such sample)"}
    ]
    unknown = await client.post(
        "/api/v1/qa/reviews", json={"call_id": 10**12, "answers": answers()}, headers=qa
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "call_not_found"
    for bad_body in (
        {"call_id": 2**63, "answers": answers()},
        {"call_id": ids["done"], "answers": answers(), "feedback": {"vulnerability": "a\u0000"}},
        {"call_id": ids["done"], "answers": answers(), "feedback": {"vulnerability": "x" * 4001}},
        {"call_id": ids["done"], "answers": "good"},
    ):
        bad = await client.post("/api/v1/qa/reviews", json=bad_body, headers=qa)
        assert bad.status_code == 422, (bad_body, bad.text)
    assert await count_rows(app, QaReview) == 0
    assert await count_rows(app, QaAnswer) == 0


async def test_not_applicable_where_the_form_forbids_it(
    settings: Settings, tmp_path: Path, make_staff: MakeStaff
) -> None:
    (tmp_path / "qa").mkdir()
    forbidding = SHIPPED_FORM.read_text().replace(
        "    not_applicable: true\n    training_module: hidden_harm_vulnerability",
        "    not_applicable: false\n    training_module: hidden_harm_vulnerability",
    )
    (tmp_path / "qa" / "force.yaml").write_text(forbidding)
    app = create_app(settings.model_copy(update={"rules_dir": tmp_path}))
    qa = auth(await make_staff("Q1", Role.qa))
    async with LifespanManager(app) as manager:
        app.state.asgi = manager.app
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            ids = await offer(app, client, [CallSpec("c", "H1", at_uk("2022-07-02"))])
            form = (await client.get("/api/v1/qa/form", headers=qa)).json()
            assert form["origin"] == "force"
            assert form["standards"][0]["not_applicable_allowed"] is False
            response = await client.post(
                "/api/v1/qa/reviews",
                json={"call_id": ids["c"], "answers": answers(vulnerability="not_applicable")},
                headers=qa,
            )
    assert response.status_code == 422
    assert response.json()["error"]["details"] == [
        {
            "field": "answers.vulnerability",
            "reason": "vulnerability: the form does not allow not_applicable here",
        }
    ]


async def test_handlers_see_their_own_reviews_only(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    qa = auth(await make_staff("Q1", Role.qa))
    h1 = auth(await make_staff("H1", Role.handler))
    h2 = auth(await make_staff("H2", Role.handler))
    ids = await offer(
        app,
        client,
        [CallSpec("a", "H1", at_uk("2022-07-02")), CallSpec("b", "H2", at_uk("2022-07-03"))],
    )
    for external in ("a", "b"):
        feedback = {"vulnerability": f"feedback for {external}"}
        body = {"call_id": ids[external], "answers": answers(), "feedback": feedback}
        assert (await client.post("/api/v1/qa/reviews", json=body, headers=qa)).status_code == 201

    mine = await client.get("/api/v1/qa/reviews", headers=h1)
    assert mine.status_code == 200
    assert [r["call_id"] for r in mine.json()["items"]] == [ids["a"]]
    assert mine.json()["items"][0]["answers"][0]["feedback"] == "feedback for a"
    by_month = await client.get("/api/v1/qa/reviews", params={"month": "2022-07"}, headers=h2)
    assert [r["call_id"] for r in by_month.json()["items"]] == [ids["b"]]
    # Another handler's call or name: nothing, or 403.
    theirs = await client.get("/api/v1/qa/reviews", params={"call_id": ids["b"]}, headers=h1)
    assert theirs.json()["items"] == []
    named = await client.get("/api/v1/qa/reviews", params={"handler": "H2"}, headers=h1)
    assert named.status_code == 403
    everyone = await client.get("/api/v1/qa/reviews", headers=qa)
    assert len(everyone.json()["items"]) == 2
    # Reading reviews is audited (feedback can quote the call).
    async with app.state.resources.sessions() as session:
        reads = (
            await session.scalars(
                select(AuditLog).where(
                    AuditLog.subject_type == "qa_review", AuditLog.action == "consultation"
                )
            )
        ).all()
    assert {r.actor for r in reads} == {"staff:H1", "staff:H2", "staff:Q1"}


async def test_opening_a_call_for_review_is_audited(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    qa = auth(await make_staff("Q1", Role.qa))
    ids = await offer(app, client, [CallSpec("o", "H1", at_uk("2022-07-02"))])
    response = await client.get(f"/api/v1/qa/calls/{ids['o']}", headers=qa)
    assert response.status_code == 200, response.text
    record = response.json()
    assert record["call"]["id"] == ids["o"] and record["call"]["month"] == "2022-07"
    assert [e["type"] for e in record["events"]] == ["offered", "ringing", "answered", "ended"]
    assert record["assessment"] is None and record["reviews"] == []
    async with app.state.resources.sessions() as session:
        audit = await session.scalar(
            select(AuditLog).where(AuditLog.subject_type == "call", AuditLog.actor == "staff:Q1")
        )
    assert audit is not None
    assert (audit.action, audit.call_id, audit.justification) == (
        "consultation",
        str(ids["o"]),
        "QA review",
    )
    assert len(audit.records["events"]) == 4
    missing = await client.get("/api/v1/qa/calls/999999", headers=qa)
    assert missing.status_code == 404


async def test_hostile_query_strings_get_422(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    qa = auth(await make_staff("Q1", Role.qa))
    admin = auth(await make_staff("A1", Role.admin))
    for url, params, token in (
        ("/api/v1/qa/reviews", {"handler": "H\u00001"}, qa),
        ("/api/v1/qa/reviews?handler=%ED%A0%80", {}, qa),  # a lone surrogate, as UTF-8 bytes
        ("/api/v1/qa/reviews", {"call_id": str(2**63)}, qa),
        ("/api/v1/qa/reviews", {"month": "2022-0\u0000"}, qa),
        ("/api/v1/qa/report", {"from": "2022\u000006", "to": "2022-07"}, qa),
        ("/api/v1/qa/samples", {"month": "\u00002022-0"}, qa),
        ("/api/v1/qa/samples/9223372036854775808", {}, qa),
        ("/api/v1/qa/calls/-1", {}, qa),
        ("/api/v1/training/records", {"module": "a\u0000"}, admin),
        ("/api/v1/training/records", {"staff_id": "\u00e9\u0000"}, admin),
        ("/api/v1/training/summary", {"on": "yesterday"}, admin),
    ):
        response = await client.get(url, params=params or None, headers=token)
        assert response.status_code == 422, (url, params, response.text)
        assert response.json()["error"]["code"] in ("validation_error", "bad_month")


async def test_repeat_victim_check_applies_to_every_call_with_a_victim(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """Issue 13 point 8: the check is measured on every call with a victim, alert or not;
    `not_applicable` fits only a call whose assessment records none."""
    qa = auth(await make_staff("Q1", Role.qa))
    ids = await offer(
        app,
        client,
        [CallSpec("v-1", "H1", at_uk("2022-07-01")), CallSpec("v-2", "H1", at_uk("2022-07-02"))],
    )
    async with app.state.resources.sessions() as session, session.begin():
        for external, victim in (("v-1", True), ("v-2", False)):
            session.add(
                Assessment(
                    call_id=ids[external], version=1, submitted_by="H1", submitted_at=utcnow(),
                    incident_type="theft", grade="scheduled", elements={}, advice_given={},
                    prompts_answered=[], repeat_victim_check="yes" if victim else "not_applicable",
                    victim=victim, domestic_abuse=False, alert_kinds=[],
                )
            )  # fmt: skip

    def review(external: str) -> dict[str, object]:
        return {"call_id": ids[external], "answers": answers(repeat_victim_check="not_applicable")}

    refused = await client.post("/api/v1/qa/reviews", json=review("v-1"), headers=qa)
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["code"] == "review_invalid"
    [problem] = refused.json()["error"]["details"]
    assert problem["field"] == "answers.repeat_victim_check"
    assert "records a victim" in problem["reason"]
    assert await count_rows(app, QaReview) == 0
    # No victim recorded: not applicable is a fair answer.
    accepted = await client.post("/api/v1/qa/reviews", json=review("v-2"), headers=qa)
    assert accepted.status_code == 201, accepted.text
