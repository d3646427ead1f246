"""Quality assurance: the form, samples, reviews and the monthly report (issue 12).

Who: drawing and listing samples, the report: supervisor, qa, admin (results by handler:
supervisor and qa only). Opening a call for review and reviewing: qa, supervisor. Reading
reviews: qa, supervisor, and a handler for their own calls only. Integration clients: nothing.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Query, Response

from app.api.deps import ResourcesDep, SessionDep, holding
from app.auth.policy import Capability
from app.auth.service import Principal
from app.qa import charts, export, months, record, reviews, sampling, training
from app.qa import report as qa_report
from app.qa.forms import QaForm
from app.qa.schemas import (
    INT64_MAX,
    STAFF_ID_PATTERN,
    FormRead,
    ModuleRead,
    Report,
    ReviewCreate,
    ReviewList,
    ReviewRead,
    SampleCreate,
    SampleList,
    SampleRead,
    StandardRead,
)
from app.resources import Resources

router = APIRouter(prefix="/qa", tags=["qa"])

FormReaders = Annotated[Principal, holding(Capability.qa_form)]
Samplers = Annotated[Principal, holding(Capability.qa_sample)]
Reviewers = Annotated[Principal, holding(Capability.qa_review)]
ReviewReaders = Annotated[Principal, holding(Capability.qa_read_reviews)]
ReportReaders = Annotated[Principal, holding(Capability.qa_report)]
RowIdPath = Annotated[int, Path(ge=1, le=INT64_MAX)]
MonthQuery = Annotated[str | None, Query(min_length=7, max_length=7, examples=["2026-11"])]


def _form(resources: Resources) -> QaForm:
    return resources.qa_form


@router.get("/form", response_model=FormRead)
async def get_form(principal: FormReaders, resources: ResourcesDep) -> FormRead:
    """The evaluation form in use: standards with their scale, met answers, guidance."""
    form = _form(resources)
    return FormRead(
        form=form.ref,
        origin=form.origin,
        standards=[
            StandardRead(
                id=s.id,
                title=s.title,
                report_label=s.report_label,
                guidance=s.guidance,
                answers=list(s.answers),
                met=[a for a in s.answers if a in s.met],
                not_applicable_allowed=s.not_applicable_allowed,
                training_module=s.training_module,
            )
            for s in form.standards
        ],
        practice=None
        if form.practice_standard is None
        else {"standard": form.practice_standard, "alert_kinds": list(form.practice_alert_kinds)},
        training_modules=[ModuleRead(id=m.id, title=m.title) for m in form.modules],
    )


@router.post("/samples", response_model=SampleRead, status_code=201)
async def draw_sample(body: SampleCreate, principal: Samplers, session: SessionDep) -> SampleRead:
    """Draw `per_handler` eligible calls per handler at random (reproducible with `seed`)."""
    return await sampling.create_sample(session, body, principal)


@router.get("/samples", response_model=SampleList)
async def list_samples(
    principal: Samplers,
    session: SessionDep,
    month: MonthQuery = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> SampleList:
    """Samples, newest first, each call with its review status."""
    return SampleList(items=await sampling.list_samples(session, month, limit))


@router.get("/samples/{sample_id}", response_model=SampleRead)
async def get_sample(sample_id: RowIdPath, principal: Samplers, session: SessionDep) -> SampleRead:
    return await sampling.get_sample(session, sample_id)


@router.get("/calls/{call_id}")
async def open_call(
    call_id: RowIdPath, principal: Reviewers, session: SessionDep, resources: ResourcesDep
) -> dict[str, object]:
    """The call's record for review (events, alerts, prompts answered, advice given, the
    THRIVE+ assessment, narrative, reviews so far); audit-logged."""
    return await record.call_record(session, _form(resources), call_id, principal)


@router.post("/reviews", response_model=ReviewRead, status_code=201)
async def create_review(
    body: ReviewCreate, principal: Reviewers, session: SessionDep, resources: ResourcesDep
) -> ReviewRead:
    """Grade a call against the form; 422 `review_invalid` lists every problem."""
    return await reviews.create_review(session, _form(resources), body, principal)


@router.get("/reviews", response_model=ReviewList)
async def list_reviews(
    principal: ReviewReaders,
    session: SessionDep,
    resources: ResourcesDep,
    call_id: Annotated[int | None, Query(ge=1, le=INT64_MAX)] = None,
    handler: Annotated[str | None, Query(pattern=STAFF_ID_PATTERN)] = None,
    month: MonthQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReviewList:
    """Reviews with answers and feedback, newest first; a handler's own only."""
    found = await reviews.list_reviews(
        session,
        _form(resources),
        principal,
        call_id=call_id,
        handler=handler,
        month=month,
        limit=limit,
    )
    return ReviewList(items=found)


@router.get("/report", response_model=Report)
async def get_report(
    principal: ReportReaders,
    session: SessionDep,
    resources: ResourcesDep,
    start: Annotated[str, Query(alias="from", max_length=7, description="first month, YYYY-MM")],
    end: Annotated[str, Query(alias="to", max_length=7, description="last month, YYYY-MM")],
    by: Literal["handler", "queue", "training"] | None = None,
    format: Literal["json", "csv", "xlsx"] = "json",
) -> Report | Response:
    """The monthly table (months inclusive); `format=csv|xlsx`: the force's layout."""
    report = await qa_report.build(session, _form(resources), start, end, principal, by=by)
    if format == "json":
        return report
    name = f"qa-report-{report.from_month}-to-{report.to_month}"
    if format == "csv":
        return Response(
            export.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{name}.csv"'},
        )
    return Response(
        export.to_xlsx(report),
        media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        headers={"Content-Disposition": f'attachment; filename="{name}.xlsx"'},
    )


# An SVG we serve is a document a browser may open on its own: it must never run anything.
SVG_HEADERS = {"Content-Security-Policy": "default-src 'none'", "X-Content-Type-Options": "nosniff"}


@router.get("/report.svg", response_class=Response)
async def report_chart(
    principal: ReportReaders,
    session: SessionDep,
    resources: ResourcesDep,
    start: Annotated[str, Query(alias="from", max_length=7, description="first month, YYYY-MM")],
    end: Annotated[str, Query(alias="to", max_length=7, description="last month, YYYY-MM")],
    chart: Literal["standards", "training"] = "standards",
) -> Response:
    """The report's charts as SVG (shown inline on the QA report page, and a download):
    `standards`: each standard's monthly % met; `training`: handlers trained / expired /
    untrained per module on the last day of `to` (today, if that is still to come)."""
    form = _form(resources)
    if chart == "standards":
        report = await qa_report.build(session, form, start, end, principal)
        svg = charts.standards_chart(report)
        span = (report.from_month, report.to_month)
    else:
        found = months.span(start, end)
        span = (found[0], found[-1])
        last_day = date(*months.following(*months.parse(span[1])), 1) - timedelta(days=1)
        on: date = min(last_day, training.today())
        svg = charts.training_chart(await training.summary(session, form, on, principal))
    name = f"qa-{chart}-{span[0]}-to-{span[1]}.svg"
    return Response(
        svg,
        media_type="image/svg+xml",
        headers={**SVG_HEADERS, "Content-Disposition": f'inline; filename="{name}"'},
    )
