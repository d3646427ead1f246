"""The whole access matrix (issue 17, point 3): every route of the app and the socket, for every
kind of principal, on both backends (the `settings` fixture marks these tests `storage`).

One table, `ROWS`: a route (method + the path the app declares), how the row authenticates
(bearer token for the API, the session cookie for the pages), and the status each principal
gets. The principals are the call's current handler, an earlier handler of the same call (it
was transferred from them), another handler, a supervisor, a QA reviewer, an admin, an
integration token and no credentials at all. A route the app serves that the table does not
list fails `test_the_table_lists_every_route`: a new route must say who may use it.

The socket has its own table (`SOCKET`): which principals may connect (else the close code)
and which calls' frames they get. Who may do what is decided in `app.auth.policy`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed

from app.auth.models import Role
from app.config import Settings
from app.history.models import Alert, Person
from app.main import create_app
from tests.conftest import MakeStaff
from tests.realtime.support import frame, message, open_socket, ring, until
from tests.support.servers import ServiceProcess
from tests.telephony.support import event, post_signed
from tests.thrive.support import answered_call, full_assessment, raise_alerts, transfer

ORIGIN = "http://testserver"
METRICS_TOKEN = "matrix-metrics-token-0123456789"
SCRAPE = {"Authorization": f"Bearer {METRICS_TOKEN}"}
# The calls are offered now: the QA month they count in (UK local time).
MONTH = datetime.now(ZoneInfo("Europe/London")).strftime("%Y-%m")

# The columns of the matrix, in the order each row is tried.
PRINCIPALS = (
    "handler",  # the call is at their desk now
    "earlier",  # the call was with them and was transferred away
    "other",  # a handler who never had the call
    "supervisor",
    "qa",
    "admin",
    "integration",  # a machine token (CTI connector)
    "anonymous",  # no credentials
)
STAFF: Mapping[str, tuple[str, Role]] = {
    "handler": ("AH1", Role.handler),
    "earlier": ("AH3", Role.handler),
    "other": ("AH2", Role.handler),
    "supervisor": ("AS1", Role.supervisor),
    "qa": ("AQ1", Role.qa),
    "admin": ("AA1", Role.admin),
    "integration": ("AI1", Role.integration),
}
HANDLERS = frozenset({"handler", "earlier", "other"})
ON_THE_CALL = frozenset({"handler", "earlier"})
SUPERVISING = frozenset({"supervisor", "admin"})
QA_STAFF = frozenset({"supervisor", "qa", "admin"})
STAFF_ALL = HANDLERS | {"supervisor", "qa", "admin"}
EVERYONE = frozenset(PRINCIPALS)

Expected = int | tuple[int, ...]


def grant(
    ok: Expected,
    who: Iterable[str],
    *,
    denied: int = 403,
    anonymous: int = 401,
    **special: Expected,
) -> dict[str, Expected]:
    """`ok` for the principals in `who`, `denied` for the others, `anonymous` without
    credentials; `special` overrides single cells."""
    allowed = frozenset(who)
    out: dict[str, Expected] = {p: (ok if p in allowed else denied) for p in PRINCIPALS}
    if "anonymous" not in allowed:
        out["anonymous"] = anonymous
    out.update(special)
    return out


def page(ok: Expected, who: Iterable[str], **special: Expected) -> dict[str, Expected]:
    """A browser page: no session (integration tokens cannot open one) -> 303 to /login."""
    cells: dict[str, Expected] = {"integration": 303, "anonymous": 303, **special}
    out = grant(ok, who)
    out.update(cells)
    return out


@dataclass(frozen=True)
class Row:
    method: str
    route: str  # as the app declares it
    expect: Mapping[str, Expected]
    # The URL tried, formatted with the scenario's ids; the route itself when None.
    url: str | None = None
    json: Any = None
    form: Mapping[str, str] | None = None
    # bearer: the API (and /web/api); cookie: the pages (an integration token rides as a
    # bearer header there, which pages ignore); none: nobody sends credentials.
    auth: str = "bearer"
    # Log in afresh for this row (it ends the session it is given).
    fresh_session: bool = False
    headers: Mapping[str, str] = field(default_factory=dict)


def rows(ids: Mapping[str, Any]) -> list[Row]:
    c = ids["call"]
    return [
        # ---- health and the API's own documents: public ---------------------------------
        Row("GET", "/healthz", grant(200, EVERYONE), auth="none"),
        Row("GET", "/readyz", grant(200, EVERYONE), auth="none"),
        # Prometheus: its own bearer token (METRICS_TOKEN), never a staff credential.
        Row("GET", "/metrics", grant(401, (), denied=401)),
        Row("GET", "/metrics", grant(200, EVERYONE), auth="none", headers=SCRAPE),
        # The API's documents: staff only, integration tokens refused (issue 16); Swagger
        # UI's files from our own host (no outside CDN); no ReDoc.
        Row("GET", "/openapi.json", grant(200, STAFF_ALL)),
        Row("GET", "/docs", page(200, STAFF_ALL), auth="cookie"),
        Row(
            "GET",
            "/docs/assets",
            grant(200, EVERYONE),
            url="/docs/assets/swagger-ui-bundle.js",
            auth="none",
        ),
        Row("GET", "/static", grant(200, EVERYONE), url="/static/api.js", auth="none"),
        # ---- staff, audit, rules ------------------------------------------------------------
        # Integration tokens are refused on every route for people (issue 16).
        Row("GET", "/api/v1/me", grant(200, STAFF_ALL)),
        Row("GET", "/api/v1/staff", grant(200, {"admin"})),
        Row(
            "POST",
            "/api/v1/staff",
            grant(201, {"admin"}),
            json={"id": "AN1", "name": "New Starter", "role": "handler"},
        ),
        Row(
            "POST",
            "/api/v1/staff/{staff_id}/revoke",
            grant(200, {"admin"}),
            url="/api/v1/staff/AX1/revoke",
        ),
        Row("GET", "/api/v1/audit", grant(200, {"admin"})),
        Row("GET", "/api/v1/rules", grant(200, STAFF_ALL)),
        Row("POST", "/api/v1/rules/reload", grant(200, {"admin"})),
        # ---- telephony: webhooks are signed, a bearer token (any role) does not get in -----
        Row("POST", "/api/v1/telephony/events", grant(401, EVERYONE), json={"event_id": "x"}),
        Row("POST", "/api/v1/telephony/events/batch", grant(401, EVERYONE), json=[]),
        Row(
            "POST",
            "/api/v1/telephony/twilio",
            grant(401, EVERYONE),
            form={"CallSid": "CA1", "CallStatus": "ringing"},
        ),
        Row(
            "POST",
            "/api/v1/telephony/cti",
            grant(202, {"integration"}),
            json={
                "event": "newCall",
                "callId": "matrix-cti",
                "from": "07700 900123",
                "to": "999",
                "direction": "inbound",
                "queue": "emergency",
            },  # fmt: skip
        ),
        # ---- calls: read by their handlers (now or earlier), supervisors, QA, admins --------
        Row("GET", "/api/v1/calls", grant(200, STAFF_ALL)),
        Row(
            "GET",
            "/api/v1/calls",
            grant(200, {"handler"} | QA_STAFF),
            url="/api/v1/calls?handler=AH1",  # another handler's list: refused
        ),
        Row(
            "GET",
            "/api/v1/calls/{call_id}",
            grant(200, ON_THE_CALL | QA_STAFF),
            url=f"/api/v1/calls/{c}",
        ),
        Row(
            "GET",
            "/api/v1/calls/{call_id}/thrive",
            grant(200, ON_THE_CALL | QA_STAFF),
            url=f"/api/v1/calls/{c}/thrive",
        ),
        Row(
            "GET",
            "/api/v1/calls/{call_id}/assessment",
            grant(200, ON_THE_CALL | QA_STAFF),
            url=f"/api/v1/calls/{c}/assessment",
        ),
        # ---- acting on a call: its current handler only ------------------------------------
        Row(
            "PUT",
            "/api/v1/calls/{call_id}/incident-type",
            grant(200, {"handler"}),
            url=f"/api/v1/calls/{c}/incident-type",
            json={"incident_type": "burglary"},
        ),
        Row(
            "POST",
            "/api/v1/calls/{call_id}/narrative",
            grant(200, {"handler"}),
            url=f"/api/v1/calls/{c}/narrative",
            json={"text": "the caller came home to a broken window"},
        ),
        Row(
            "POST",
            "/api/v1/calls/{call_id}/prompts/answered",
            grant(200, {"handler"}),
            url=f"/api/v1/calls/{c}/prompts/answered",
            json={"ids": [ids["prompt"]]},
        ),
        Row(
            "POST",
            "/api/v1/calls/{call_id}/advice/given",
            grant(200, {"handler"}),
            url=f"/api/v1/calls/{c}/advice/given",
            json={"ids": [ids["advice"]]},
        ),
        Row(
            "POST",
            "/api/v1/calls/{call_id}/assessment",
            grant(201, {"handler"}),
            url=f"/api/v1/calls/{c}/assessment",
            json=full_assessment(),
        ),
        Row(
            "PUT",
            "/api/v1/calls/{call_id}/assessment",
            grant(201, {"handler"}),
            url=f"/api/v1/calls/{c}/assessment",
            json=full_assessment(),
        ),
        Row(
            "PUT",
            "/api/v1/calls/{call_id}/draft",
            grant(200, {"handler"}),
            url=f"/api/v1/calls/{c}/draft",
            json={"revision": 0, "victim": True},
        ),
        # A draft: its handlers' own (now or earlier), supervisors and admins (not QA).
        Row(
            "GET",
            "/api/v1/calls/{call_id}/draft",
            grant(200, ON_THE_CALL | SUPERVISING),
            url=f"/api/v1/calls/{c}/draft",
        ),
        Row(
            "GET",
            "/api/v1/calls/{call_id}/draft",
            grant(200, {"handler"} | SUPERVISING),
            url=f"/api/v1/calls/{c}/draft?handler=AH1",  # someone else's draft: refused
        ),
        Row(
            "POST",
            "/api/v1/alerts/{alert_id}/ack",
            grant(200, {"handler"} | SUPERVISING),
            url=f"/api/v1/alerts/{ids['alert']}/ack",
        ),
        # ---- alert feedback (issue 15): the call's handlers rate; supervisors read ------
        Row(
            "POST",
            "/api/v1/alerts/{alert_id}/feedback",
            grant(200, ON_THE_CALL),
            url=f"/api/v1/alerts/{ids['alert']}/feedback",
            json={"verdict": "helpful"},
        ),
        Row("GET", "/api/v1/alerts/precision", grant(200, SUPERVISING)),
        Row("GET", "/api/v1/alerts/precision.csv", grant(200, SUPERVISING)),
        # ---- the caller's history for a call: its handlers, supervisors, admins -----------
        Row(
            "GET",
            "/api/v1/history/households",
            # a search of the register, like /history/search: the live call's current
            # handler or a supervisor (issue 16 point 3)
            grant(200, {"handler", "supervisor"}),
            url=f"/api/v1/history/households?call_id={ids['live']}&uprn=100000000001",
        ),
        Row(
            "GET",
            "/api/v1/history/calls/{call_id}",
            grant(200, ON_THE_CALL | SUPERVISING),
            url=f"/api/v1/history/calls/{c}",
        ),
        # Qualifiers: the call's current handler and supervisors.
        Row(
            "PUT",
            "/api/v1/calls/{call_id}/qualifiers",
            grant(200, {"handler", "supervisor"}),
            url=f"/api/v1/calls/{c}/qualifiers",
            json={"qualifiers": ["domestic_abuse"]},
        ),
        # The force's records system keeps the history current: integration tokens only.
        Row(
            "POST",
            "/api/v1/history/records",
            grant(200, {"integration"}),
            json={"records": [{"type": "person", "person_id": "MXR1", "name": "Matrix Record"}]},
        ),
        # ---- search the force's records and link who is found: a live (or wrap-up) call's
        # current handler and supervisors (the scenario's `live` call has no assessment yet)
        Row(
            "GET",
            "/api/v1/history/search",
            grant(200, {"handler", "supervisor"}),
            url=f"/api/v1/history/search?call_id={ids['live']}&q=Matrix%20Person",
        ),
        Row(
            "POST",
            "/api/v1/calls/{call_id}/subjects",
            # 201 for the first link, 200 for the same link again (idempotent)
            grant((200, 201), {"handler", "supervisor"}),
            url=f"/api/v1/calls/{ids['live']}/subjects",
            json={"person_id": "MXP1", "role": "victim"},
        ),
        Row(
            "GET",
            "/api/v1/assessments.csv",
            grant(200, QA_STAFF),
            url="/api/v1/assessments.csv?from=2020-01-01&to=2100-01-01",
        ),
        # ---- QA and training ---------------------------------------------------------------
        Row("GET", "/api/v1/qa/form", grant(200, STAFF_ALL)),
        Row(
            "POST",
            "/api/v1/qa/samples",
            grant(201, QA_STAFF),
            json={"month": MONTH, "per_handler": 1, "seed": 7},
        ),
        Row("GET", "/api/v1/qa/samples", grant(200, QA_STAFF)),
        Row(
            "GET",
            "/api/v1/qa/samples/{sample_id}",
            grant(200, QA_STAFF),
            url=f"/api/v1/qa/samples/{ids['sample']}",
        ),
        Row(
            "GET",
            "/api/v1/qa/calls/{call_id}",
            grant(200, {"supervisor", "qa"}),
            url=f"/api/v1/qa/calls/{c}",
        ),
        # Reviewers get past the door; the call is still open, so the review is refused.
        Row(
            "POST",
            "/api/v1/qa/reviews",
            grant(422, {"supervisor", "qa"}),
            json={"call_id": c, "answers": {"vulnerability": "good"}},
        ),
        Row("GET", "/api/v1/qa/reviews", grant(200, HANDLERS | {"supervisor", "qa"})),
        Row(
            "GET",
            "/api/v1/qa/reviews",
            grant(200, {"handler", "supervisor", "qa"}),
            url="/api/v1/qa/reviews?handler=AH1",  # another handler's reviews: refused
        ),
        Row(
            "GET",
            "/api/v1/qa/report",
            grant(200, QA_STAFF),
            url="/api/v1/qa/report?from=2026-01&to=2026-02",
        ),
        Row(
            "GET",
            "/api/v1/qa/report",
            grant(200, {"supervisor", "qa"}),
            url="/api/v1/qa/report?from=2026-01&to=2026-02&by=handler",
        ),
        Row(
            "GET",
            "/api/v1/qa/report.svg",
            grant(200, QA_STAFF),
            url="/api/v1/qa/report.svg?from=2026-01&to=2026-02",
        ),
        Row(
            "POST",
            "/api/v1/training/records",
            grant((200, 201), SUPERVISING),
            json={"staff_id": "AH1", "module": "thrive_plus", "completed_on": "2026-01-05"},
        ),
        Row("GET", "/api/v1/training/records", grant(200, SUPERVISING)),
        Row("GET", "/api/v1/training/summary", grant(200, QA_STAFF)),
        # ---- the pages' data (bearer or cookie) --------------------------------------------
        Row("GET", "/web/api/handler/calls", grant(200, HANDLERS)),
        Row(
            "GET",
            "/web/api/calls/{call_id}/screen",
            grant(200, ON_THE_CALL | SUPERVISING),
            url=f"/web/api/calls/{c}/screen",
        ),
        Row("GET", "/web/api/board", grant(200, SUPERVISING)),
        # ---- the pages (session cookie) ----------------------------------------------------
        Row("GET", "/", page(303, STAFF_ALL), auth="cookie"),
        Row("GET", "/login", page(303, STAFF_ALL, integration=200, anonymous=200), auth="cookie"),
        Row(
            "POST",
            "/login",
            grant(303, STAFF_ALL, integration=403),
            auth="none",  # the token is in the form
            headers={"Origin": ORIGIN},
        ),
        # Single sign-on is not configured in this table's app: both answer 404 (issue 16;
        # tests/web/test_sso.py runs them against a real provider).
        Row("GET", "/login/oidc", grant(404, EVERYONE), auth="none"),
        Row("GET", "/login/oidc/callback", grant(404, EVERYONE), auth="none"),
        Row(
            "POST",
            "/logout",
            grant(303, EVERYONE),
            auth="cookie",
            fresh_session=True,
            headers={"Origin": ORIGIN},
        ),
        Row("GET", "/handler", page(200, HANDLERS), auth="cookie"),
        Row(
            "GET",
            "/handler/calls/{call_id}",
            page(200, ON_THE_CALL, supervisor=303, admin=303),  # to the supervisor's view
            url=f"/handler/calls/{c}",
            auth="cookie",
        ),
        Row("GET", "/handler/reviews", page(200, HANDLERS), auth="cookie"),
        Row("GET", "/supervisor", page(200, SUPERVISING), auth="cookie"),
        Row(
            "GET",
            "/supervisor/calls/{call_id}",
            page(200, SUPERVISING),
            url=f"/supervisor/calls/{c}",
            auth="cookie",
        ),
        Row("GET", "/qa", page(200, {"supervisor", "qa"}), auth="cookie"),
        Row("GET", "/qa/report", page(200, QA_STAFF), auth="cookie"),
    ]


# ---- the app's routes --------------------------------------------------------------------


def _walk(routes: Iterable[Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    """(method, path) of every route, through included routers (FastAPI keeps each included
    router behind a wrapper holding the original and the prefix it was included with)."""
    for route in routes:
        original = getattr(route, "original_router", None)
        if original is not None:
            context = getattr(route, "include_context", None)
            yield from _walk(original.routes, prefix + (getattr(context, "prefix", "") or ""))
            continue
        path = prefix + route.path
        methods = getattr(route, "methods", None)
        if type(route).__name__ == "Mount":
            yield "GET", path
        elif methods is None:  # a WebSocket route
            yield "WS", path
        else:
            # Starlette answers HEAD wherever it answers GET: not a route of its own.
            for method in set(methods) - ({"HEAD"} if "GET" in methods else set()):
                yield method, path


def served_routes(app: FastAPI) -> set[tuple[str, str]]:
    found = set(_walk(app.routes))
    # The walk must see at least what the OpenAPI document lists, else it is broken.
    for path, operations in app.openapi()["paths"].items():
        for method in operations:
            assert (method.upper(), path) in found, f"route walk missed {method} {path}"
    assert ("WS", "/ws") in found and ("GET", "/handler") in found
    return found


# ---- the scenario ------------------------------------------------------------------------


async def _scenario(app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff) -> Any:
    tokens = {who: await make_staff(sid, role) for who, (sid, role) in STAFF.items()}
    await make_staff("AX1", Role.handler)  # revoked by the admin's row
    bearer = {"Authorization": f"Bearer {tokens['handler']}"}
    # A call answered by AH3, then transferred to AH1: AH3 is its earlier handler.
    external = "matrix-call"
    call_id = await answered_call(client, handler="AH3", external=external)
    await transfer(client, external, "AH1")
    await raise_alerts(app, call_id, ("withheld_number", "low"))
    async with app.state.resources.sessions() as session:
        alert_id = await session.scalar(select(Alert.id).where(Alert.call_id == call_id))
    put = await client.put(
        f"/api/v1/calls/{call_id}/incident-type", json={"incident_type": "burglary"}, headers=bearer
    )
    assert put.status_code == 200, put.text
    state = put.json()
    submitted = await client.post(
        f"/api/v1/calls/{call_id}/assessment", json=full_assessment(), headers=bearer
    )
    assert submitted.status_code == 201, submitted.text
    # A second call, the same way round, still live: search and link need one.
    live_id = await answered_call(client, handler="AH3", external="matrix-live")
    await transfer(client, "matrix-live", "AH1")
    async with app.state.resources.sessions() as session, session.begin():
        session.add(Person(id="MXP1", name="Matrix Person"))
    # A call answered and ended elsewhere, so that a QA sample can be drawn this month.
    await answered_call(client, handler="AH2", external="matrix-ended")
    ended = await post_signed(client, event("matrix-ended", "ended", cause="normal_clearing"))
    assert ended.status_code == 202, ended.text
    sample = await client.post(
        "/api/v1/qa/samples",
        json={"month": MONTH, "per_handler": 1, "seed": 1},
        headers={"Authorization": f"Bearer {tokens['qa']}"},
    )
    assert sample.status_code == 201, sample.text
    ids = {
        "call": call_id,
        "live": live_id,
        "alert": alert_id,
        "prompt": state["prompts"][0]["id"],
        "advice": state["advice"][0]["id"],
        "sample": sample.json()["id"],
    }
    return tokens, ids


async def _cookie(client: httpx.AsyncClient, token: str) -> str:
    response = await client.post("/login", data={"token": token}, headers={"Origin": ORIGIN})
    assert response.status_code == 303, response.text
    value = response.cookies["fc_session"]
    client.cookies.clear()
    return f"fc_session={value}"


async def _try(
    client: httpx.AsyncClient,
    row: Row,
    who: str,
    tokens: Mapping[str, str],
    cookies: Mapping[str, str],
) -> httpx.Response:
    headers = dict(row.headers)
    token = tokens.get(who)
    if row.auth == "bearer" and token:
        headers["Authorization"] = f"Bearer {token}"
    elif row.auth == "cookie" and token:
        if who in cookies:
            headers["Cookie"] = await _cookie(client, token) if row.fresh_session else cookies[who]
        else:  # no browser session for this role: its token is all it has
            headers["Authorization"] = f"Bearer {token}"
    form = row.form
    if row.method == "POST" and row.route == "/login":
        form = {"token": token} if token else {}
    client.cookies.clear()
    return await client.request(
        row.method, row.url or row.route, headers=headers, json=row.json, data=form
    )


# ---- the tests ---------------------------------------------------------------------------


@pytest.fixture
async def app(settings: Settings) -> AsyncIterator[FastAPI]:
    """The app with every adapter configured (Twilio too), so each route answers for real."""
    configured = settings.model_copy(
        update={
            "twilio_auth_token": SecretStr("matrix-twilio"),
            "public_base_url": "https://cc.example.police.uk",
            "metrics_token": SecretStr(METRICS_TOKEN),
        }
    )
    application = create_app(configured)
    async with LifespanManager(application) as manager:
        application.state.asgi = manager.app
        yield application


async def test_the_table_lists_every_route(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    _tokens, ids = await _scenario(app, client, make_staff)
    listed = {(r.method, r.route) for r in rows(ids)} | {("WS", "/ws")}
    served = served_routes(app)
    assert served - listed == set(), "routes with no row in the access matrix"
    assert listed - served == set(), "rows for routes the app does not serve"


async def test_access_matrix(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    tokens, ids = await _scenario(app, client, make_staff)
    cookies = {who: await _cookie(client, tokens[who]) for who in STAFF if who != "integration"}
    table = rows(ids)
    for row in table:
        assert set(row.expect) == set(PRINCIPALS), f"{row.method} {row.route}: a column missing"
    wrong = []
    for row in table:
        for who in PRINCIPALS:
            response = await _try(client, row, who, tokens, cookies)
            want = row.expect[who]
            wanted = want if isinstance(want, tuple) else (want,)
            if response.status_code not in wanted:
                wrong.append(
                    f"{row.method} {row.url or row.route} as {who}: "
                    f"{response.status_code} (expected {want}) {response.text[:120]!r}"
                )
    assert wrong == [], "\n".join(wrong)


# ---- the socket --------------------------------------------------------------------------

# Who may open /ws (else the close code), and whose calls' frames they get: `own` (calls at
# their desk), `every` (every call), None (refused).
SOCKET: Mapping[str, tuple[int | None, str | None]] = {
    "handler": (None, "own"),
    "earlier": (None, "own"),
    "other": (None, "own"),
    "supervisor": (None, "every"),
    "admin": (None, "every"),
    "qa": (4003, None),  # no live channel for QA reviewers
    "integration": (4003, None),
    "anonymous": (4001, None),
}


async def _close_code(ws: Any) -> int | None:
    try:
        while True:
            await asyncio.wait_for(ws.recv(), 10)
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else None


async def test_socket_matrix(
    live_service: Callable[..., ServiceProcess], make_staff: MakeStaff
) -> None:
    assert set(SOCKET) == set(PRINCIPALS)
    service = live_service()
    tokens = {who: await make_staff(sid, role) for who, (sid, role) in STAFF.items()}
    for who, (code, _) in SOCKET.items():
        if code is not None:
            async with open_socket(service, tokens.get(who)) as ws:
                assert await _close_code(ws) == code, who

    admitted = [who for who, (code, _) in SOCKET.items() if code is None]
    sockets = {who: open_socket(service, tokens[who]) for who in admitted}
    opened = {who: await cm.__aenter__() for who, cm in sockets.items()}
    try:
        for ws in opened.values():
            assert (await frame(ws))["type"] == "hello"
        call_id = await ring(service, "matrix-ws-1", "AH1")
        ringing = await until(opened["handler"], "call.ringing", call_id)
        alert_id = ringing["data"]["alerts"][0]["alert_id"]
        for who in admitted:
            if SOCKET[who][1] == "every":
                got = await message(opened[who])
                assert (got["type"], got["call_id"]) == ("call.offered", call_id), who
        # The other handlers' channels carry nothing of AH1's call: the first message each
        # gets is its own call's ringing.
        for n, who in enumerate(("earlier", "other")):
            handler_id = STAFF[who][0]
            own = await ring(service, f"matrix-ws-{n + 2}", handler_id)
            got = await message(opened[who])
            assert (got["type"], got["call_id"]) == ("call.ringing", own), who
            # ...and they cannot acknowledge its alerts over the socket either.
            await opened[who].send(json.dumps({"type": "ack", "alert_id": alert_id}))
            error = await until(opened[who], "error")
            assert error["data"]["code"] == "forbidden", who
        # The call's handler can.
        await opened["handler"].send(json.dumps({"type": "ack", "alert_id": alert_id}))
        acked = await until(opened["handler"], "alert.acknowledged", call_id)
        assert acked["data"]["acknowledged_by"] == "AH1"
    finally:
        for cm in sockets.values():
            await cm.__aexit__(None, None, None)
