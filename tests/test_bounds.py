"""Issue 11, acceptance 5: every fuzz cause of point 8, sent exactly as the fuzzer sent it,
gets a 4xx with a reason (never a 500), on both backends; what was already stored stays.

Causes: NUL and lone surrogates in the narrative, assessment element text, grade_reason and
the household search; integers >= 2^63 and < -2^63 in every path id and in `before` /
`before_id`; a WebSocket frame of 30,000 nested `[`.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI

from app.auth.models import Role
from app.bounds import INT64_MAX, INT64_MIN, MAX_JSON_DEPTH
from app.config import Settings
from app.main import create_app
from app.thrive.models import CallThrive
from tests.conftest import MakeStaff
from tests.realtime.support import event, frame, open_socket, post, ring
from tests.support.servers import ServiceProcess
from tests.telephony import test_twilio
from tests.telephony.support import count_rows
from tests.thrive.support import answered_call, auth, full_assessment

# The fuzzer's integers: one past each end of int64, and far past.
OUT_OF_RANGE = [INT64_MAX + 1, INT64_MIN - 1, 10**30]
NUL = "She is pregnant\u0000 and he has a knife"
SURROGATE = "She is pregnant\ud800 and he has a knife"
BAD_TEXT = [pytest.param(NUL, id="nul"), pytest.param(SURROGATE, id="lone-surrogate")]

# Every route with an integer in its path: (method, path, who sends it, body).
ID_ROUTES: list[tuple[str, str, Role, dict[str, Any] | None]] = [
    ("GET", "/api/v1/calls/{id}", Role.admin, None),
    ("GET", "/api/v1/calls/{id}/thrive", Role.supervisor, None),
    ("PUT", "/api/v1/calls/{id}/incident-type", Role.handler, {"incident_type": "burglary"}),
    ("POST", "/api/v1/calls/{id}/narrative", Role.handler, {"text": "hello", "mode": "append"}),
    ("POST", "/api/v1/calls/{id}/prompts/answered", Role.handler, {"ids": ["p"]}),
    ("POST", "/api/v1/calls/{id}/advice/given", Role.handler, {"ids": ["a"]}),
    ("GET", "/api/v1/calls/{id}/assessment", Role.qa, None),
    ("PUT", "/api/v1/calls/{id}/assessment", Role.handler, full_assessment()),
    ("POST", "/api/v1/calls/{id}/assessment", Role.handler, full_assessment()),
    ("GET", "/api/v1/history/calls/{id}", Role.supervisor, None),
    ("POST", "/api/v1/alerts/{id}/ack", Role.supervisor, None),
    ("GET", "/web/api/calls/{id}/screen", Role.supervisor, None),
    # The pages: with a session cookie (they look the call up for it).
    ("GET", "/handler/calls/{id}", Role.handler, None),
    ("GET", "/supervisor/calls/{id}", Role.supervisor, None),
]
QUERY_INTS = [
    ("/api/v1/calls?before={n}", Role.admin),
    ("/api/v1/calls?limit={n}", Role.admin),
    ("/api/v1/audit?before_id={n}", Role.admin),
    ("/api/v1/audit?limit={n}", Role.admin),
    ("/api/v1/history/households?call_id={n}&address=High%20Street", Role.supervisor),
]
STAFF = {Role.handler: "H1", Role.supervisor: "S1", Role.qa: "Q1", Role.admin: "A1"}


async def _signed_in(client: httpx.AsyncClient, make_staff: MakeStaff, role: Role) -> None:
    """Bearer token and session cookie both: the API reads one, the pages the other (pages
    are for handlers and supervisors only)."""
    token = await make_staff(STAFF[role], role)
    client.headers["Authorization"] = f"Bearer {token}"
    if role not in (Role.handler, Role.supervisor):
        return
    response = await client.post(
        "/login", data={"token": token}, headers={"Origin": "http://testserver"}
    )
    assert response.status_code == 303, response.text


def _json_bytes(body: Any) -> dict[str, Any]:
    # ensure_ascii (the default): a lone surrogate goes out as the escape `\ud800`, exactly
    # what a fuzzer sends (httpx's own encoder would refuse to encode it).
    return {
        "content": json.dumps(body).encode(),
        "headers": {"Content-Type": "application/json"},
    }


def _assert_refused(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["details"][0]["type"] == kind, error
    assert error["message"]
    # The reason, never the value.
    assert "pregnant" not in response.text and "knife" not in response.text


@pytest.fixture
async def as_role(app: FastAPI, make_staff: MakeStaff) -> Callable[[Role], Any]:
    """A client signed in as a role (one per role; closed after the test)."""
    clients: list[httpx.AsyncClient] = []

    async def open_as(role: Role) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app.state.asgi)
        http = httpx.AsyncClient(transport=transport, base_url="http://testserver")
        clients.append(http)
        await _signed_in(http, make_staff, role)
        return http

    yield open_as
    for http in clients:
        await http.aclose()


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(("method", "path", "role", "body"), ID_ROUTES)
async def test_path_ids_outside_int64_are_422(
    as_role: Callable[[Role], Any],
    method: str,
    path: str,
    role: Role,
    body: dict[str, Any] | None,
    value: int,
) -> None:
    http = await as_role(role)
    response = await http.request(method, path.format(id=value), json=body)
    _assert_refused(response, 422, "int_out_of_range")
    assert response.json()["error"]["details"][0]["loc"] == ["path"]


@pytest.mark.parametrize(("method", "path", "role", "body"), ID_ROUTES)
async def test_path_ids_at_the_ends_of_int64_are_looked_up(
    as_role: Callable[[Role], Any],
    method: str,
    path: str,
    role: Role,
    body: dict[str, Any] | None,
) -> None:
    """The bound is exactly int64: its largest and smallest values reach the store (no such
    call: 404, or 403 for a handler), on SQLite and on PostgreSQL alike."""
    http = await as_role(role)
    for value in (INT64_MAX, INT64_MIN):
        response = await http.request(method, path.format(id=value), json=body)
        assert response.status_code in (403, 404), (value, response.text)


@pytest.mark.parametrize("value", OUT_OF_RANGE)
@pytest.mark.parametrize(("path", "role"), QUERY_INTS)
async def test_query_integers_outside_int64_are_422(
    as_role: Callable[[Role], Any], path: str, role: Role, value: int
) -> None:
    http = await as_role(role)
    response = await http.get(path.format(n=value))
    _assert_refused(response, 422, "int_out_of_range")
    assert response.json()["error"]["details"][0]["loc"][0] == "query"


@pytest.fixture
async def handler_call(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> tuple[int, dict[str, str]]:
    """A call answered by H1 with a narrative already stored, and H1's headers."""
    token = await make_staff("H1", Role.handler)
    call_id = await answered_call(client, "H1")
    stored = await client.post(
        f"/api/v1/calls/{call_id}/narrative",
        json={"text": "Caller is calm.", "mode": "replace"},
        headers=auth(token),
    )
    assert stored.status_code == 200, stored.text
    return call_id, auth(token)


async def _narrative(app: FastAPI, call_id: int) -> str | None:
    async with app.state.resources.sessions() as session:
        row = await session.get(CallThrive, call_id)
    return None if row is None else row.narrative


@pytest.mark.parametrize("text", BAD_TEXT)
@pytest.mark.parametrize("mode", ["replace", "append"])
async def test_bad_text_in_narrative_is_422_and_keeps_what_was_stored(
    app: FastAPI,
    client: httpx.AsyncClient,
    handler_call: tuple[int, dict[str, str]],
    text: str,
    mode: str,
) -> None:
    call_id, headers = handler_call
    url = f"/api/v1/calls/{call_id}/narrative"
    response = await client.post(url, **_merge(_json_bytes({"text": text, "mode": mode}), headers))
    kind = "string_nul" if "\x00" in text else "string_surrogate"
    _assert_refused(response, 422, kind)
    assert response.json()["error"]["details"][0]["loc"] == ["body", "text"]
    assert await _narrative(app, call_id) == "Caller is calm."
    # Work goes on: the next good chunk is stored after it.
    ok = await client.post(url, json={"text": " He left.", "mode": "append"}, headers=headers)
    assert ok.status_code == 200, ok.text
    assert await _narrative(app, call_id) == "Caller is calm. He left."


def _merge(request: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {**request, "headers": {**request["headers"], **headers}}


@pytest.mark.parametrize("text", BAD_TEXT)
@pytest.mark.parametrize(
    ("where", "build"),
    [
        (
            ["body", "elements", "threat", "text"],
            lambda bad: full_assessment(
                elements={
                    **full_assessment()["elements"],
                    "threat": {"risk": "high", "text": bad},
                }
            ),
        ),
        (["body", "grade_reason"], lambda bad: full_assessment(grade_reason=bad)),
    ],
    ids=["element-text", "grade-reason"],
)
@pytest.mark.parametrize("method", ["PUT", "POST"])
async def test_bad_text_in_assessment_is_422_and_stores_nothing(
    app: FastAPI,
    client: httpx.AsyncClient,
    handler_call: tuple[int, dict[str, str]],
    text: str,
    where: list[str],
    build: Callable[[str], dict[str, Any]],
    method: str,
) -> None:
    call_id, headers = handler_call
    url = f"/api/v1/calls/{call_id}/assessment"
    response = await client.request(method, url, **_merge(_json_bytes(build(text)), headers))
    _assert_refused(response, 422, "string_nul" if "\x00" in text else "string_surrogate")
    assert response.json()["error"]["details"][0]["loc"] == where
    assert (await client.get(url, headers=headers)).status_code == 404  # no version stored
    good = await client.request(method, url, json=full_assessment(), headers=headers)
    assert good.status_code == 201, good.text


@pytest.mark.parametrize(
    ("query", "status", "kind"),
    [
        ("address=High%00Street", 422, "string_nul"),
        ("household_id=%00", 422, "string_nul"),
        ("uprn=1%002", 422, "string_nul"),
        # A lone surrogate percent-encoded is invalid UTF-8 (WTF-8): refused as the lone
        # surrogate it is (422, like a text field); other bytes that are not UTF-8: 400.
        ("address=High%ED%A0%80Street", 422, "string_surrogate"),
        ("address=%FF%FE", 400, "string_unicode"),
    ],
)
async def test_bad_text_in_household_search_is_4xx(
    client: httpx.AsyncClient,
    handler_call: tuple[int, dict[str, str]],
    query: str,
    status: int,
    kind: str,
) -> None:
    call_id, headers = handler_call
    url = f"/api/v1/history/households?call_id={call_id}&{query}"
    response = await client.get(url, headers=headers)
    _assert_refused(response, status, kind)
    fine = await client.get(
        f"/api/v1/history/households?call_id={call_id}&address=High%20Street", headers=headers
    )
    assert fine.status_code == 200, fine.text


@pytest.mark.parametrize("text", BAD_TEXT)
async def test_bad_text_in_other_bodies_is_422(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff, text: str
) -> None:
    """The guard is global: staff names, incident types, prompt ids, the login form."""
    admin = auth(await make_staff("A1", Role.admin))
    response = await client.post(
        "/api/v1/staff", **_merge(_json_bytes({"id": "X9", "name": text, "role": "qa"}), admin)
    )
    _assert_refused(response, 422, "string_nul" if "\x00" in text else "string_surrogate")
    assert (await client.get("/api/v1/staff", headers=admin)).json()[0]["id"] == "A1"
    login = await client.post(
        "/login",
        content=b"token=abc%00def",
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Origin": "http://testserver",
        },
    )
    _assert_refused(login, 422, "string_nul")


async def test_deep_json_body_is_422_not_recursion(
    client: httpx.AsyncClient, handler_call: tuple[int, dict[str, str]]
) -> None:
    call_id, headers = handler_call
    url = f"/api/v1/calls/{call_id}/narrative"
    for depth in (MAX_JSON_DEPTH + 1, 30_000):
        body = b"[" * depth + b"]" * depth
        response = await client.post(
            url, content=body, headers={**headers, "Content-Type": "application/json"}
        )
        _assert_refused(response, 422, "json_too_deep")


@pytest.mark.parametrize(
    "path",
    ["/api/v1/calls?handler=H%001", "/api/v1/staff/A%001/revoke", "/api/v1/calls/1%00"],
)
async def test_nul_in_any_query_or_path_is_422(
    client: httpx.AsyncClient, make_staff: MakeStaff, path: str
) -> None:
    admin = auth(await make_staff("A1", Role.admin))
    method = "POST" if path.endswith("revoke") else "GET"
    response = await client.request(method, path, headers=admin)
    _assert_refused(response, 422, "string_nul")


async def test_openapi_states_the_int64_bound(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("B1", Role.handler)
    schema = (
        await client.get("/openapi.json", headers={"Authorization": f"Bearer {token}"})
    ).json()
    ack = schema["paths"]["/api/v1/alerts/{alert_id}/ack"]["post"]["parameters"][0]["schema"]
    assert (ack["minimum"], ack["maximum"]) == (INT64_MIN, INT64_MAX)
    limit = next(
        p["schema"]
        for p in schema["paths"]["/api/v1/calls"]["get"]["parameters"]
        if p["name"] == "limit"
    )
    assert (limit["minimum"], limit["maximum"]) == (1, 200)  # a route's own bounds stay


Live = Callable[..., ServiceProcess]


async def test_websocket_frames_are_bounded_and_the_socket_stays_usable(
    live_service: Live, make_staff: MakeStaff
) -> None:
    service = live_service()
    token = await make_staff("H1", Role.handler)
    async with open_socket(service, token) as ws:
        await frame(ws)
        for bad, reason in [
            ("[" * 30_000, "nested deeper"),
            ("[" * 30_000 + "]" * 30_000, "nested deeper"),
            ('{"type": "resume", "after": "1-1\\u0000"}', "NUL"),
            ('{"type": "ping\\ud800"}', "surrogate"),
            ('{"type\\u0000": "ping"}', "NUL"),
            (json.dumps({"type": "ack", "alert_id": INT64_MAX + 1}), "between"),
            ('{"type": "ack", "alert_id": NaN}', "finite"),
        ]:
            await ws.send(bad)
            reply = await frame(ws)
            assert reply["type"] == "error", (bad[:40], reply)
            assert reply["data"]["code"] == "bad_message"
            assert reason in reply["data"]["message"], reply
        # Still the same socket, still served: a ping is answered, a call is delivered.
        await ws.send(json.dumps({"type": "ping"}))
        assert json.loads(await asyncio.wait_for(ws.recv(), 10))["type"] == "pong"
        call_id = await ring(service, "bounds-ws", "H1")
        assert (await frame(ws))["call_id"] == call_id
        await post(service, event("bounds-ws", "answered", handler_id="H1"))
        assert (await frame(ws))["type"] == "call.answered"


async def test_stored_calls_survive_refusals(
    app: FastAPI, client: httpx.AsyncClient, handler_call: tuple[int, dict[str, str]]
) -> None:
    """Refusing bad input never touches what was accepted before it."""
    from app.calls.models import Call

    call_id, headers = handler_call
    await client.post(
        f"/api/v1/calls/{INT64_MAX + 1}/narrative",
        json={"text": "x", "mode": "append"},
        headers=headers,
    )
    assert await count_rows(app, Call) == 1
    assert await _narrative(app, call_id) == "Caller is calm."


@pytest.mark.parametrize(
    ("field", "value", "status"),
    [
        ("From", "+4477009\u000000123", 422),
        ("To", "+44163296\u00000999", 422),
        ("CallSid", "CA\u00001", 422),
        ("CallStatus", "ringing\u0000", 422),
        ("SequenceNumber", str(INT64_MAX + 1), 422),
        # Read by the adapter but never stored: the event is fine without them.
        ("SequenceNumber", "1\u00002", 202),
        ("Timestamp", "Wed, 25 Nov 2026\u0000", 202),
        ("Direction", "inbound\u0000", 202),
    ],
)
async def test_twilio_form_fields_with_nul_or_huge_numbers_never_500(
    settings: Settings, field: str, value: str, status: int
) -> None:
    """The Twilio adapter's form body, signed as Twilio signs it: the adapter refuses what
    cannot be stored, after the signature check (the guard leaves webhook bodies to it)."""
    from app.calls.models import CallEventRow

    configured = Settings(
        **{
            **settings.model_dump(),
            "twilio_auth_token": test_twilio.AUTH_TOKEN,
            "public_base_url": test_twilio.PUBLIC,
        }
    )
    application = create_app(configured)
    async with LifespanManager(application) as manager:
        application.state.asgi = manager.app
        params = test_twilio.callback("ringing", 1, **{field: value})
        response = await test_twilio.post(application, params)
        assert response.status_code == status, response.text
        assert await count_rows(application, CallEventRow) == (1 if status == 202 else 0)
