"""Issue 16 point 6: the OpenAPI document lists the statuses each route answers, query times
are RFC 3339 only, and OPTIONS (and every 405) lists the methods of all of a path's routes.
The fuzzer (tests/test_fuzz.py) checks the statuses against real answers."""

from __future__ import annotations

import httpx
import pytest
from fastapi import FastAPI

from app.auth.models import Role
from tests.conftest import MakeStaff


@pytest.mark.parametrize(
    "value", ["0.5", "1732957200", "2026-11-30T09:00:00", "2026-11-30", "30/11/2026 09:00"]
)
async def test_query_times_are_rfc3339_only(
    client: httpx.AsyncClient, make_staff: MakeStaff, value: str
) -> None:
    token = await make_staff("S1", Role.supervisor)
    headers = {"Authorization": f"Bearer {token}"}
    response = await client.get("/api/v1/calls", params={"until": value}, headers=headers)
    assert response.status_code == 422, response.text
    [problem] = response.json()["error"]["details"]
    assert problem["loc"][-1] == "until" and "RFC 3339" in problem["msg"]
    assert value not in response.text  # the reason, never the value


@pytest.mark.parametrize(
    "value", ["2026-11-30T09:00:00Z", "2026-11-30T09:00:00.123+01:00", "2026-11-30t09:00:00z"]
)
async def test_rfc3339_times_are_accepted(
    client: httpx.AsyncClient, make_staff: MakeStaff, value: str
) -> None:
    admin = await make_staff("A1", Role.admin)
    headers = {"Authorization": f"Bearer {admin}"}
    assert (await client.get("/api/v1/calls", params={"since": value}, headers=headers)).is_success
    audit = await client.get("/api/v1/audit", params={"until": value}, headers=headers)
    assert audit.is_success, audit.text


@pytest.mark.parametrize(
    ("path", "methods"),
    [
        ("/api/v1/calls/1/draft", "GET, OPTIONS, PUT"),
        ("/api/v1/calls/1/assessment", "GET, OPTIONS, POST, PUT"),
        ("/api/v1/staff", "GET, OPTIONS, POST"),
        ("/healthz", "GET, OPTIONS"),
    ],
)
async def test_options_and_405_list_every_route_of_the_path(
    client: httpx.AsyncClient, path: str, methods: str
) -> None:
    options = await client.options(path)
    assert options.status_code == 204 and options.headers["allow"] == methods
    wrong = await client.delete(path)
    assert wrong.status_code == 405 and wrong.headers["allow"] == methods
    assert (await client.options("/no/such/path")).status_code == 404


async def test_every_operation_lists_the_statuses_it_can_answer(app: FastAPI) -> None:
    document = app.openapi()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            listed = set(operation["responses"])
            label = f"{method.upper()} {path}"
            assert {"400", "422", "503"} <= listed, label
            if "{" in path:
                assert "404" in listed, label
            if method in ("post", "put") and not path.startswith("/api/v1/telephony/"):
                assert "413" in listed, label
            for status in listed - {"200", "201", "202", "204"}:
                assert "description" in operation["responses"][status], (label, status)
    staff = document["paths"]["/api/v1/staff"]["get"]["responses"]
    assert {"401", "403"} <= set(staff)
    draft = document["paths"]["/api/v1/calls/{call_id}/draft"]["put"]["responses"]
    assert "409" in draft
    assert "ErrorBody" in document["components"]["schemas"]
