"""Acceptance 4: every QA and training route against every role (handler: own reviews only;
qa; supervisor; admin; integration: nothing), and no route without a row here."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from app.auth.models import Role
from tests.conftest import MakeStaff
from tests.qa.support import CallSpec, answers, at_uk, auth, offer

H, S, Q, A, M = Role.handler, Role.supervisor, Role.qa, Role.admin, Role.integration
ROLES = (H, S, Q, A, M)  # M: machines (integration clients) may use none of these

# (method, route path, who may) for every route the QA and training routers declare.
MATRIX: list[tuple[str, str, set[Role]]] = [
    ("GET", "/api/v1/qa/form", {H, S, Q, A}),
    ("POST", "/api/v1/qa/samples", {S, Q, A}),
    ("GET", "/api/v1/qa/samples", {S, Q, A}),
    ("GET", "/api/v1/qa/samples/{sample_id}", {S, Q, A}),
    ("GET", "/api/v1/qa/calls/{call_id}", {S, Q}),
    ("POST", "/api/v1/qa/reviews", {S, Q}),
    ("GET", "/api/v1/qa/reviews", {H, S, Q}),
    ("GET", "/api/v1/qa/report", {S, Q, A}),
    ("GET", "/api/v1/qa/report.svg", {S, Q, A}),
    ("POST", "/api/v1/training/records", {S, A}),
    ("GET", "/api/v1/training/records", {S, A}),
    ("GET", "/api/v1/training/summary", {S, Q, A}),
]


def test_matrix_covers_every_route(app: FastAPI) -> None:
    declared = {
        (method.upper(), path)
        for path, operations in app.openapi()["paths"].items()
        if path.startswith(("/api/v1/qa", "/api/v1/training"))
        for method in operations
    }
    assert declared == {(method, path) for method, path, _ in MATRIX}


async def test_every_route_for_every_role(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    tokens = {role: auth(await make_staff(f"{role.value[0].upper()}1", role)) for role in ROLES}
    handler_id = "H1"
    calls = [CallSpec(f"m{n}", handler_id, at_uk(f"2022-07-{n + 1:02d}")) for n in range(12)]
    ids = await offer(app, client, calls)
    sample = await client.post(
        "/api/v1/qa/samples", json={"month": "2022-07", "seed": 1}, headers=tokens[Q]
    )
    assert sample.status_code == 201
    review = await client.post(
        "/api/v1/qa/reviews", json={"call_id": ids["m0"], "answers": answers()}, headers=tokens[Q]
    )
    assert review.status_code == 201
    # A fresh call for each review request (a reviewer reviews a call once).
    next_call = iter([ids[f"m{n}"] for n in range(1, 12)])

    def request(method: str, path: str) -> tuple[str, dict[str, Any]]:
        """The URL and keyword arguments of a valid request on `path`."""
        if path == "/api/v1/qa/samples" and method == "POST":
            return path, {"json": {"month": "2022-07", "seed": 7}}
        if path == "/api/v1/qa/reviews" and method == "POST":
            return path, {"json": {"call_id": next(next_call), "answers": answers()}}
        if path in ("/api/v1/qa/report", "/api/v1/qa/report.svg"):
            return path, {"params": {"from": "2022-07", "to": "2022-07"}}
        if path == "/api/v1/training/records" and method == "POST":
            return path, {
                "json": {
                    "staff_id": handler_id,
                    "module": "thrive_plus",
                    "completed_on": "2022-01-01",
                }
            }
        filled = path.replace("{sample_id}", str(sample.json()["id"])).replace(
            "{call_id}", str(ids["m0"])
        )
        return filled, {}

    for method, path, allowed in MATRIX:
        for role in ROLES:
            url, kwargs = request(method, path)
            response = await client.request(method, url, headers=tokens[role], **kwargs)
            if role in allowed:
                assert response.status_code in (200, 201), (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.text)
                assert response.json()["error"]["code"] == "forbidden"
        url, kwargs = request(method, path)
        anonymous = await client.request(method, url, **kwargs)
        assert anonymous.status_code == 401, (method, path)

    # Handlers: their own reviews only. Results by handler: supervisors and QA, not admins.
    own = await client.get("/api/v1/qa/reviews", headers=tokens[H])
    assert {r["handler_id"] for r in own.json()["items"]} == {handler_id}
    other = await client.get("/api/v1/qa/reviews", params={"handler": "H9"}, headers=tokens[H])
    assert other.status_code == 403
    by_handler = {"from": "2022-07", "to": "2022-07", "by": "handler"}
    for role, status in ((S, 200), (Q, 200), (A, 403)):
        response = await client.get("/api/v1/qa/report", params=by_handler, headers=tokens[role])
        assert response.status_code == status, role
