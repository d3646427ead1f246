"""The browser pages: login/logout, the handler's screen, the supervisor's board, the QA
screens (samples and reviews, the monthly report) and a handler's own QA reviews.

Pages are server-rendered shells (Jinja2); the live parts are small ES modules under
/static that read `/web/api/*` once and then follow the WebSocket. Pages and their data are
personal data: never cached (`Cache-Control: no-store`, see `app.web.install`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TypedDict
from urllib.parse import quote

from fastapi import APIRouter, Request
from fastapi.encoders import jsonable_encoder
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from app.api.deps import BoardWatcher, CurrentStaff, ResourcesDep, SessionDep
from app.auth import cookie as browser_session
from app.auth import policy
from app.auth.policy import Capability
from app.auth.service import Principal
from app.calls.service import CallNotFound
from app.realtime.envelope import now_iso
from app.resources import Resources
from app.thrive.schemas import Element, Grade
from app.thrive.validation import GRADE_ORDER, SUGGESTED_GRADE_BY_SEVERITY
from app.web import board as supervisor_board
from app.web import screens

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
STATIC_DIR = HERE / "static"
templates = Jinja2Templates(directory=str(HERE / "templates"))

router = APIRouter(include_in_schema=False)
api = APIRouter(prefix="/web/api", tags=["web"])


def _static_version() -> str:
    # Changes whenever a static file does: the pages name a new URL after an upgrade (the
    # modules they import are revalidated, see app.web.NoStore).
    stamps = [int(p.stat().st_mtime) for p in STATIC_DIR.iterdir() if p.is_file()]
    return str(max(stamps, default=0))


_VERSION = _static_version()
templates.env.globals["static"] = lambda name: f"/static/{name}?v={_VERSION}"

# Our pages load only our own scripts, styles and socket; no frames, no inline script.
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; connect-src 'self'; img-src 'self' data:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'; object-src 'none'"
    ),
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}


def home_for(principal: Principal) -> str:
    return policy.home_of(principal) or "/login"


def _safe_next(value: str | None) -> str | None:
    """A local path to return to after login; anything else (another site) is dropped."""
    if not value or not value.startswith("/") or value.startswith(("//", "/\\")):
        return None
    if any(ch in value for ch in "\r\n\\"):
        return None
    return value


def _page(
    request: Request,
    template: str,
    viewer: Principal | None,
    status: int = 200,
    **context: object,
) -> HTMLResponse:
    response = templates.TemplateResponse(
        request, template, {"viewer": viewer, "status": status, **context}, status_code=status
    )
    response.headers.update(PAGE_HEADERS)
    return response


def _error_page(
    request: Request, viewer: Principal | None, status: int, heading: str, message: str
) -> HTMLResponse:
    home = home_for(viewer) if viewer else "/login"
    return _page(
        request,
        "error.html",
        viewer,
        status=status,
        heading=heading,
        message=message,
        home=home,
    )


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path
    if request.url.query:
        target += "?" + request.url.query
    return RedirectResponse("/login?next=" + quote(target, safe="/"), status_code=303)


async def _viewer(request: Request, session: SessionDep) -> Principal | None:
    return await browser_session.principal_from_cookie(
        session, request.state.settings, request.cookies
    )


# ---- login / logout ------------------------------------------------------------------------


@router.get("/", response_model=None)
async def root(request: Request, session: SessionDep) -> Response:
    viewer = await _viewer(request, session)
    return RedirectResponse(home_for(viewer) if viewer else "/login", status_code=303)


# ---- pages ---------------------------------------------------------------------------------


class _Strand(TypedDict):
    id: str
    name: str


class _QualifierOption(TypedDict):
    id: str
    name: str
    strands: list[_Strand]


class _Catalogue(TypedDict):
    incident_types: list[dict[str, str]]
    qualifiers: list[_QualifierOption]
    elements: list[dict[str, str]]
    labels: dict[str, object]
    grades: list[dict[str, str]]


def _catalogue(resources: Resources) -> _Catalogue:
    """Incident types and THRIVE+ elements for the forms, from the loaded rule packs."""
    rules = resources.rules
    incident_types = [{"id": t.id, "name": t.name} for t in rules.incident_types.values()]
    names = {e.id: e.name for e in rules.elements}
    # The assessment records exactly the fixed elements (a pack names them; extra pack
    # elements carry prompts only).
    elements = [
        {"id": e.value, "name": names.get(e.value) or e.value.replace("_", " ").title()}
        for e in Element
    ]
    labels: dict[str, object] = {
        "incident_types": {t["id"]: t["name"] for t in incident_types},
        "markers": dict(rules.marker_labels),
        # The service's own suggested-grade rule, for the page to show it from the ring on
        # (the same tables the submission is checked against: no second copy in the page).
        "grading": {
            "by_severity": {k: g.value for k, g in SUGGESTED_GRADE_BY_SEVERITY.items()},
            "order": [g.value for g in GRADE_ORDER],
        },
    }
    return {
        "incident_types": sorted(incident_types, key=lambda t: t["name"]),
        # The qualifier control (app/web/static/qualifiers.js), in pack order.
        "qualifiers": [
            {
                "id": q.id,
                "name": q.name,
                "strands": [{"id": s, "name": n} for s, n in q.strands.items()],
            }
            for q in rules.qualifiers.values()
        ],
        "elements": elements,
        "labels": labels,
        "grades": [{"id": g.value, "name": g.value.replace("_", " ").capitalize()} for g in Grade],
    }


@router.get("/handler", response_model=None)
async def handler_page(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if not policy.allows(viewer, Capability.desk):
        return _error_page(request, viewer, 403, "Forbidden", "This screen is for call handlers.")
    return _page(request, "handler.html", viewer, call_id=None, **_catalogue(resources))


@router.get("/handler/calls/{call_id}", response_model=None)
async def handler_call_page(
    call_id: int, request: Request, session: SessionDep, resources: ResourcesDep
) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if policy.allows(viewer, Capability.watch_board):
        return RedirectResponse(f"/supervisor/calls/{call_id}", status_code=303)
    if not policy.allows(viewer, Capability.desk):
        return _error_page(request, viewer, 403, "Forbidden", "This screen is for call handlers.")
    try:
        await screens.call_for_viewer(session, call_id, viewer)
    except CallNotFound:
        return _error_page(request, viewer, 404, "Not found", "There is no such call.")
    except screens.NotYourCall:
        log.info("call page refused", extra={"staff_id": viewer.id, "call_id": call_id})
        return _error_page(
            request, viewer, 403, "Forbidden", "This call is another handler's: you cannot open it."
        )
    return _page(request, "handler.html", viewer, call_id=call_id, **_catalogue(resources))


def _board_labels(resources: Resources) -> dict[str, object]:
    """Names the board shows for ids (incident types, markers, qualifiers, elements)."""
    rules = resources.rules
    return {
        **_catalogue(resources)["labels"],
        "qualifiers": {q.id: q.name for q in rules.qualifiers.values()},
        "elements": {e.id: e.name for e in rules.elements},
    }


@router.get("/supervisor", response_model=None)
async def supervisor_page(
    request: Request, session: SessionDep, resources: ResourcesDep
) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if not policy.allows(viewer, Capability.watch_board):
        return _error_page(request, viewer, 403, "Forbidden", "This screen is for supervisors.")
    return _page(request, "supervisor.html", viewer, call_id=None, labels=_board_labels(resources))


@router.get("/supervisor/calls/{call_id}", response_model=None)
async def supervisor_call_page(
    call_id: int, request: Request, session: SessionDep, resources: ResourcesDep
) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if not policy.allows(viewer, Capability.watch_board):
        return _error_page(request, viewer, 403, "Forbidden", "This screen is for supervisors.")
    try:
        await screens.call_for_viewer(session, call_id, viewer)
    except CallNotFound:
        return _error_page(request, viewer, 404, "Not found", "There is no such call.")
    return _page(
        request, "supervisor.html", viewer, call_id=call_id, labels=_board_labels(resources)
    )


# ---- data for the pages (bearer or cookie) -----------------------------------------------------


def _json(body: dict[str, object]) -> JSONResponse:
    return JSONResponse(jsonable_encoder(body), headers={"Cache-Control": "no-store"})


@api.get("/handler/calls")
async def my_calls(
    principal: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> JSONResponse:
    """The calls at the caller's desk, each as its screen (handlers only)."""
    if not policy.allows(principal, Capability.desk):
        raise screens.NotYourCall("only handlers have a desk")
    as_of = now_iso()  # before reading: a message published later is newer than this
    calls = await screens.handler_calls(session, resources, principal)
    return _json({"as_of": as_of, "calls": calls})


@api.get("/calls/{call_id}/screen")
async def call_screen(
    call_id: int, principal: CurrentStaff, session: SessionDep, resources: ResourcesDep
) -> JSONResponse:
    """One call's screen: call, context, alerts, THRIVE+ state, latest assessment."""
    as_of = now_iso()
    call = await screens.call_for_viewer(session, call_id, principal)
    if policy.allows(principal, Capability.watch_board):
        detail = await screens.call_detail(session, resources, call, principal)
        return _json({"as_of": as_of, "screen": detail})
    return _json(
        {"as_of": as_of, "screen": await screens.screen(session, resources, call, principal)}
    )


@api.get("/board")
async def board(
    principal: BoardWatcher, session: SessionDep, resources: ResourcesDep
) -> JSONResponse:
    """The supervisor's board: calls not ended with their alerts, the calls of the last hour
    that still need a look, the queue's counters, and the handlers."""
    as_of = now_iso()
    escalate = resources.settings.alert_escalation_seconds
    return _json(
        {"as_of": as_of, **await supervisor_board.board(session, escalate, principal.actor)}
    )


# ---- QA pages (issue 12) -------------------------------------------------------------------
# Shells: qa.js, qa_report.js and reviews.js read the QA API (/api/v1/qa/*) with the cookie.


def _qa_labels(resources: Resources) -> dict[str, object]:
    """Names for the ids a call's record holds (advice, prompts, incident types, THRIVE+
    elements, markers), from the loaded rule packs: the reviewer reads words, not ids."""
    rules = resources.rules
    return {
        "incident_types": {t.id: t.name for t in rules.incident_types.values()},
        "elements": {e.id: e.name for e in rules.elements},
        # `source`: the guidance each item's wording comes from (QA and supervisors read it;
        # the handler's screen does not show it).
        "advice": {
            a.id: {"text": a.text, "kind": a.kind, "source": a.source}
            for a in rules.advice_items.values()
        },
        "prompts": {
            p.id: {"text": p.text, "element": p.element_name, "source": p.source}
            for p, _, _ in rules.prompts
        },
        "markers": dict(rules.marker_labels),
    }


@router.get("/qa", response_model=None)
async def qa_page(request: Request, session: SessionDep, resources: ResourcesDep) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if not policy.allows(viewer, Capability.qa_review):
        return _error_page(
            request, viewer, 403, "Forbidden", "This screen is for QA reviewers and supervisors."
        )
    return _page(request, "qa.html", viewer, labels=_qa_labels(resources))


@router.get("/qa/report", response_model=None)
async def qa_report_page(request: Request, session: SessionDep) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if not policy.allows(viewer, Capability.qa_report):
        return _error_page(
            request,
            viewer,
            403,
            "Forbidden",
            "The QA report is for QA reviewers, supervisors and administrators.",
        )
    return _page(request, "qa_report.html", viewer)


@router.get("/handler/reviews", response_model=None)
async def handler_reviews_page(request: Request, session: SessionDep) -> Response:
    viewer = await _viewer(request, session)
    if viewer is None:
        return _to_login(request)
    if not policy.allows(viewer, Capability.desk):
        return _error_page(
            request, viewer, 403, "Forbidden", "This page shows a call handler their own reviews."
        )
    return _page(request, "handler_reviews.html", viewer)
