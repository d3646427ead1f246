"""The monthly report's counting rules (acceptance 3): not applicable leaves the denominator,
rounding half up at .x5, several reviews of a call count once (calibration does not count),
UK-local months, breakdowns, calibration agreement with a hand-computed kappa, and the
repeat-victim-check rate with and without the alerts (acceptance 8)."""

from __future__ import annotations

import io

import httpx
import pytest
from fastapi import FastAPI
from openpyxl import load_workbook
from sqlalchemy import select

from app.auth.models import Role
from app.history.models import Alert
from app.qa.models import QaAnswer, QaMonthTally, QaReview
from app.qa.report import agreement, percent
from tests.conftest import MakeStaff
from tests.qa.support import CallSpec, answers, at_uk, auth, offer
from tests.thrive.support import raise_alerts


@pytest.mark.parametrize(
    ("met", "applicable", "expected"),
    [
        (981, 2000, 49.1),  # 49.05: half up, not to even
        (1, 80, 1.3),  # 1.25 (round() would give 1.2)
        (1, 16, 6.3),  # 6.25
        (3, 40, 7.5),
        (169, 344, 49.1),  # the June example
        (169, 345, 49.0),  # ... and why not applicable matters
        (1, 3, 33.3),
        (2, 3, 66.7),
        (0, 5, 0.0),
        (5, 5, 100.0),
        (0, 0, None),  # nothing applied
    ],
)
def test_percent_rounds_half_up_to_one_decimal(
    met: int, applicable: int, expected: float | None
) -> None:
    assert percent(met, applicable) == expected


def test_kappa_matches_a_hand_computed_example() -> None:
    # Two raters, ten calls. Agree on 7: po = 0.7. Rater A said yes 7 times, B 6 times:
    # pe = 0.7 x 0.6 + 0.3 x 0.4 = 0.54; kappa = (0.7 - 0.54) / (1 - 0.54) = 0.3478...
    a = "yes yes yes no no yes yes no yes yes".split()
    b = "yes no yes no yes yes yes no yes no".split()
    result = agreement(list(zip(a, b, strict=True)))
    assert (result.pairs, result.agreed, result.percent_agreement) == (10, 7, 70.0)
    assert result.kappa == 0.348
    perfect = agreement([("good", "good"), ("inadequate", "inadequate")])
    assert perfect.kappa == 1.0
    assert agreement([("good", "good")] * 3).kappa is None  # chance agreement is 1
    assert agreement([]).pairs == 0


async def review(
    client: httpx.AsyncClient, token: dict[str, str], call_id: int, **answered: str
) -> None:
    body = {"call_id": call_id, "answers": answers(**answered)}
    response = await client.post("/api/v1/qa/reviews", json=body, headers=token)
    assert response.status_code == 201, response.text


async def test_counting_rules_breakdowns_and_practice(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    q1 = auth(await make_staff("Q1", Role.qa))
    q2 = auth(await make_staff("Q2", Role.qa))
    supervisor = auth(await make_staff("S1", Role.supervisor))
    admin = auth(await make_staff("A1", Role.admin))
    h1 = auth(await make_staff("H1", Role.handler))
    await make_staff("H2", Role.handler)
    ids = await offer(
        app,
        client,
        [
            CallSpec("c1", "H1", at_uk("2022-07-04")),
            CallSpec("c2", "H1", at_uk("2022-07-05")),
            CallSpec("c3", "H2", at_uk("2022-07-06"), queue="101"),
            CallSpec("c4", "H2", at_uk("2022-06-30", 23)),  # June in the UK (22:00 UTC)
            CallSpec("c5", "H2", at_uk("2022-08-01", 0)),  # August in the UK (31 July UTC)
        ],
    )
    await review(client, q1, ids["c1"], prevention="not_applicable", preservation="inadequate")
    # A second reviewer's disagreeing grades are calibration: they change nothing below.
    await review(
        client, q2, ids["c1"], vulnerability="inadequate", preservation="good",
        repeat_victim_check="no",
    )  # fmt: skip
    await review(
        client, q1, ids["c2"], vulnerability="outstanding", preservation="not_applicable",
        repeat_victim_check="no",
    )  # fmt: skip
    await review(
        client, q1, ids["c3"], vulnerability="requires_improvement", prevention="not_applicable",
        preservation="not_applicable", repeat_victim_check="not_applicable",
    )  # fmt: skip
    await review(client, q1, ids["c4"])
    await review(
        client, q1, ids["c5"], prevention="not_applicable", preservation="not_applicable",
        repeat_victim_check="not_applicable",
    )  # fmt: skip

    params = {"from": "2022-06", "to": "2022-08"}
    response = await client.get("/api/v1/qa/report", params=params, headers=q1)
    assert response.status_code == 200, response.text
    report = response.json()
    assert (report["from"], report["to"]) == ("2022-06", "2022-08")

    def row(month: dict[str, object]) -> list[object]:
        standards = month["standards"]
        assert isinstance(standards, dict)
        return [month["calls_assessed"]] + [
            (s["met"], s["applicable"], s["not_applicable"], s["percent"])
            for s in standards.values()
        ]

    assert [m["month"] for m in report["months"]] == ["2022-06", "2022-07", "2022-08"]
    assert row(report["months"][0]) == [
        1, (1, 1, 0, 100.0), (1, 1, 0, 100.0), (1, 1, 0, 100.0), (1, 1, 0, 100.0)
    ]  # fmt: skip
    assert row(report["months"][1]) == [
        3,
        (2, 3, 0, 66.7),  # good, outstanding, requires improvement
        (1, 1, 2, 100.0),  # two not applicable leave the denominator
        (0, 1, 2, 0.0),
        (1, 2, 1, 50.0),
    ]
    assert row(report["months"][2]) == [
        1, (1, 1, 0, 100.0), (0, 0, 1, None), (0, 0, 1, None), (0, 0, 1, None)
    ]  # fmt: skip
    assert [m["label"] for m in report["measures"]] == [
        "Calls assessed",
        "Good/outstanding vulnerability assessment (%)",
        "Good/outstanding prevention (%)",
        "Good/outstanding preservation (%)",
        "Repeat victim check (%)",
    ]
    calibration = report["calibration"]
    # One pair, yes against no: po = pe = 0, kappa 0.
    assert calibration["repeat_victim_check"] == {
        "pairs": 1, "agreed": 0, "percent_agreement": 0.0, "kappa": 0.0
    }  # fmt: skip
    assert calibration["prevention"]["agreed"] == 0 and calibration["vulnerability"]["pairs"] == 1

    csv_text = (
        await client.get("/api/v1/qa/report", params={**params, "format": "csv"}, headers=q1)
    ).text
    assert csv_text.splitlines() == [
        "Measure,Jun 2022,Jul 2022,Aug 2022",
        "Calls assessed,1,3,1",
        "Good/outstanding vulnerability assessment (%),100.0,66.7,100.0",
        "Good/outstanding prevention (%),100.0,100.0,",
        "Good/outstanding preservation (%),100.0,0.0,",
        "Repeat victim check (%),100.0,50.0,",
    ]
    xlsx = await client.get("/api/v1/qa/report", params={**params, "format": "xlsx"}, headers=q1)
    sheet = load_workbook(io.BytesIO(xlsx.content)).active
    assert sheet is not None
    cells = [[c.value for c in r] for r in sheet.iter_rows()]
    assert cells[1] == ["Calls assessed", 1, 3, 1]
    assert cells[2] == ["Good/outstanding vulnerability assessment (%)", 100.0, 66.7, 100.0]
    assert cells[3] == ["Good/outstanding prevention (%)", 100.0, 100.0, None]

    # By handler (supervisors and QA; not admins), by queue.
    july = {"from": "2022-07", "to": "2022-07"}
    assert (
        await client.get("/api/v1/qa/report", params={**july, "by": "handler"}, headers=admin)
    ).status_code == 403
    by_handler = (
        await client.get("/api/v1/qa/report", params={**july, "by": "handler"}, headers=supervisor)
    ).json()
    groups = {g["key"]: g["months"][0] for g in by_handler["groups"]}
    assert groups["H1"]["calls_assessed"] == 2 and groups["H2"]["calls_assessed"] == 1
    assert groups["H1"]["standards"]["vulnerability"]["percent"] == 100.0
    assert groups["H2"]["standards"]["vulnerability"]["percent"] == 0.0
    by_queue = (
        await client.get("/api/v1/qa/report", params={**july, "by": "queue"}, headers=admin)
    ).json()
    queues = {g["key"]: g["months"][0]["calls_assessed"] for g in by_queue["groups"]}
    assert queues == {"101": 1, "emergency": 2}

    # By training status in each standard's module on the day of the call.
    for body in (
        {"staff_id": "H1", "module": "hidden_harm_vulnerability", "completed_on": "2022-01-10"},
        {"staff_id": "H2", "module": "hidden_harm_vulnerability", "completed_on": "2021-01-10",
         "expires_on": "2022-01-10"},
    ):  # fmt: skip
        stored = await client.post("/api/v1/training/records", json=body, headers=admin)
        assert stored.status_code == 201, stored.text
    by_training = (
        await client.get("/api/v1/qa/report", params={**july, "by": "training"}, headers=q1)
    ).json()
    status = {g["key"]: g["months"][0]["standards"] for g in by_training["groups"]}
    assert status["trained"]["vulnerability"]["applicable"] == 2
    assert status["expired"]["vulnerability"]["applicable"] == 1
    assert status["untrained"]["vulnerability"]["applicable"] == 0
    assert status["untrained"]["repeat_victim_check"]["percent"] == 50.0  # nobody has the module

    # Did the alerts change practice: c1 carried a repeat-victim alert its handler acknowledged,
    # c2 a household-risk alert left unacknowledged; the others carried neither.
    await raise_alerts(app, ids["c1"], ("repeat_victim", "high"))
    await raise_alerts(app, ids["c2"], ("household_risk", "high"), ("withheld_number", "low"))
    async with app.state.resources.sessions() as session:
        alert_id = await session.scalar(select(Alert.id).where(Alert.call_id == ids["c1"]))
    ack = await client.post(f"/api/v1/alerts/{alert_id}/ack", headers=h1)
    assert ack.status_code == 200, ack.text
    practice = (await client.get("/api/v1/qa/report", params=params, headers=q1)).json()["practice"]
    assert practice["standard"] == "repeat_victim_check"
    summary = {k: (v["met"], v["applicable"], v["percent"]) for k, v in practice["groups"].items()}
    assert summary == {
        "alerted": (1, 2, 50.0),
        "not_alerted": (1, 1, 100.0),  # c4 yes; c3 and c5 not applicable
        "acknowledged": (1, 1, 100.0),
        "not_acknowledged": (0, 1, 0.0),
    }


async def test_calibration_kappa_through_the_api(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    q1 = auth(await make_staff("Q1", Role.qa))
    q2 = auth(await make_staff("Q2", Role.supervisor))
    ids = await offer(
        app, client, [CallSpec(f"k{n}", f"H{n}", at_uk(f"2022-09-{n + 1:02d}")) for n in range(10)]
    )
    first = "yes yes yes no no yes yes no yes yes".split()
    second = "yes no yes no yes yes yes no yes no".split()
    for n in range(10):
        await review(client, q1, ids[f"k{n}"], repeat_victim_check=first[n])
        await review(client, q2, ids[f"k{n}"], repeat_victim_check=second[n])
    report = (
        await client.get(
            "/api/v1/qa/report", params={"from": "2022-09", "to": "2022-09"}, headers=q1
        )
    ).json()
    assert report["calibration"]["repeat_victim_check"] == {
        "pairs": 10, "agreed": 7, "percent_agreement": 70.0, "kappa": 0.348
    }  # fmt: skip
    # Everyone answered "good": full agreement, kappa undefined (chance agreement is 1).
    assert report["calibration"]["vulnerability"] == {
        "pairs": 10, "agreed": 10, "percent_agreement": 100.0, "kappa": None
    }  # fmt: skip
    # The first reviews alone are counted: 7 yes of 10.
    assert report["months"][0]["calls_assessed"] == 10
    assert report["months"][0]["standards"]["repeat_victim_check"]["percent"] == 70.0


BAD = [
    ({"from": "2022-09", "to": "2022-06"}, "bad_month"),  # reversed
    ({"from": "2022-6", "to": "2022-09"}, "bad_month"),
    ({"from": "2022-06", "to": "2022-13"}, "bad_month"),
    ({"from": "June", "to": "2022-09"}, "bad_month"),
    ({"from": "2000-01", "to": "2022-09"}, "bad_month"),  # over 120 months
    ({"to": "2022-09"}, "validation_error"),
    ({"from": "2022-06", "to": "2022-09", "format": "pdf"}, "validation_error"),
    ({"from": "2022-06", "to": "2022-09", "by": "colour"}, "validation_error"),
]


async def test_bad_report_requests(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    q1 = auth(await make_staff("Q1", Role.qa))
    for params, code in BAD:
        response = await client.get("/api/v1/qa/report", params=params, headers=q1)
        assert response.status_code == 422, (params, response.text)
        assert response.json()["error"]["code"] == code, (params, response.text)
    # Months without any review: a table of zeros and nulls, not an error.
    empty = await client.get(
        "/api/v1/qa/report", params={"from": "2030-01", "to": "2030-02"}, headers=q1
    )
    assert empty.status_code == 200
    assert [m["calls_assessed"] for m in empty.json()["months"]] == [0, 0]
    assert empty.json()["months"][0]["standards"]["vulnerability"]["percent"] is None


async def test_several_alerts_and_three_reviewers_count_as_the_rules_say(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """The report's queries join alerts and pair reviews in the database (bench/qa): a call
    with two practice alerts is one alerted call (acknowledged if its handler acknowledged
    either), and a call graded by three reviewers gives three pairs (1-2, 1-3, 2-3)."""
    reviewers = [auth(await make_staff(f"Q{n}", Role.qa)) for n in range(3)]
    h1 = auth(await make_staff("H1", Role.handler))
    ids = await offer(
        app,
        client,
        [
            CallSpec("two-acked", "H1", at_uk("2022-07-04")),
            CallSpec("two-open", "H1", at_uk("2022-07-05")),
            CallSpec("none", "H1", at_uk("2022-07-06")),
        ],
    )
    await raise_alerts(app, ids["two-acked"], ("repeat_victim", "high"), ("household_risk", "high"))
    await raise_alerts(app, ids["two-open"], ("repeat_victim", "high"), ("household_risk", "high"))
    async with app.state.resources.sessions() as session:
        first_alert = await session.scalar(
            select(Alert.id).where(Alert.call_id == ids["two-acked"]).order_by(Alert.id)
        )
    acked = await client.post(f"/api/v1/alerts/{first_alert}/ack", headers=h1)
    assert acked.status_code == 200, acked.text
    # Three reviewers on "none": vulnerability good / good / inadequate -> pairs 1-2 agree,
    # 1-3 and 2-3 disagree.
    for reviewer, grade in zip(reviewers, ("good", "good", "inadequate"), strict=True):
        await review(client, reviewer, ids["none"], vulnerability=grade)
    await review(client, reviewers[0], ids["two-acked"], repeat_victim_check="yes")
    await review(client, reviewers[0], ids["two-open"], repeat_victim_check="no")
    report = (
        await client.get(
            "/api/v1/qa/report", params={"from": "2022-07", "to": "2022-07"}, headers=reviewers[0]
        )
    ).json()
    assert report["months"][0]["calls_assessed"] == 3
    practice = {k: (v["met"], v["applicable"]) for k, v in report["practice"]["groups"].items()}
    assert practice == {
        "alerted": (1, 2),
        "not_alerted": (1, 1),
        "acknowledged": (1, 1),
        "not_acknowledged": (0, 1),
    }
    vulnerability = report["calibration"]["vulnerability"]
    assert (vulnerability["pairs"], vulnerability["agreed"]) == (3, 1)
    assert report["calibration"]["prevention"]["pairs"] == 3


async def test_the_tables_running_sums_are_the_first_reviews_answers(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    """`qa_month_tally` (what the table is read from) equals a fresh count over the stored
    first reviews' answers: calibration reviews add nothing, months are kept apart."""
    q1, q2 = auth(await make_staff("Q1", Role.qa)), auth(await make_staff("Q2", Role.supervisor))
    ids = await offer(
        app,
        client,
        [CallSpec(f"t{n}", f"H{n % 3}", at_uk(f"2022-0{6 + n % 2}-1{n}")) for n in range(6)],
    )
    grades = ("good", "not_applicable", "inadequate")
    for n in range(6):
        await review(client, q1, ids[f"t{n}"], prevention=grades[n % 3])
    await review(client, q2, ids["t0"], prevention="inadequate", vulnerability="inadequate")
    async with app.state.resources.sessions() as session:
        tallied = {
            (r.call_month, r.standard): (r.answered, r.met, r.applicable)
            for r in (await session.scalars(select(QaMonthTally))).all()
        }
        counted = (
            await session.execute(
                select(QaReview.call_month, QaAnswer.standard, QaAnswer.met, QaAnswer.applicable)
                .join(QaReview, QaReview.id == QaAnswer.review_id)
                .where(QaReview.ordinal == 1)
            )
        ).all()
    fresh: dict[tuple[str, str], list[int]] = {}
    for month, standard, met, applicable in counted:
        cell = fresh.setdefault((month, standard), [0, 0, 0])
        cell[0] += 1
        cell[1] += int(met)
        cell[2] += int(applicable)
    assert tallied == {key: tuple(cell) for key, cell in fresh.items()}
    assert tallied[("2022-06", "prevention")] == (3, 1, 2)  # t0 good, t2 inadequate, t4 n/a
