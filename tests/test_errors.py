"""Bad input answers 4xx in the one envelope, never 500, and never echoes what was sent."""

from __future__ import annotations

import httpx
import pytest

from app.auth.models import Role
from tests.conftest import MakeStaff


@pytest.fixture
async def admin(make_staff: MakeStaff) -> dict[str, str]:
    return {"Authorization": f"Bearer {await make_staff('A1', Role.admin)}"}


def assert_envelope(response: httpx.Response, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]


async def test_malformed_json(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/api/v1/staff",
        content=b'{"id": "07700900123", "name": ',
        headers={**admin, "content-type": "application/json"},
    )
    assert_envelope(response, 400, "malformed_json")
    assert "07700900123" not in response.text


async def test_wrong_types_do_not_echo_input(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    response = await client.post(
        "/api/v1/staff",
        json={"id": "H9", "name": ["Jane Secretname"], "role": "wizard", "extra": "07700900123"},
        headers=admin,
    )
    assert_envelope(response, 422, "validation_error")
    fields = {tuple(d["loc"]) for d in response.json()["error"]["details"]}
    assert ("body", "name") in fields and ("body", "role") in fields
    assert "Secretname" not in response.text and "07700900123" not in response.text


async def test_bad_staff_id_is_422(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    response = await client.post(
        "/api/v1/staff", json={"id": "no spaces please", "name": "N", "role": "qa"}, headers=admin
    )
    assert_envelope(response, 422, "invalid_staff")


async def test_oversized_bodies(client: httpx.AsyncClient, admin: dict[str, str]) -> None:
    big = b"{" + b" " * (2 * 1024 * 1024) + b"}"
    response = await client.post(
        "/api/v1/staff", content=big, headers={**admin, "content-type": "application/json"}
    )
    assert_envelope(response, 413, "payload_too_large")
    # The telephony path has its own, tighter ceiling (64 KiB by default).
    response = await client.post(
        "/api/v1/telephony/events",
        content=b"x" * (65 * 1024),
        headers={"content-type": "application/json"},
    )
    assert_envelope(response, 413, "payload_too_large")


async def test_oversized_chunked_body_is_refused_while_streaming(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b" " * 65536

    response = await client.post(
        "/api/v1/staff", content=chunks(), headers={**admin, "content-type": "application/json"}
    )
    assert_envelope(response, 413, "payload_too_large")


async def test_unknown_route_and_method(client: httpx.AsyncClient) -> None:
    assert_envelope(await client.get("/api/v1/nothing-here"), 404, "not_found")
    assert_envelope(await client.delete("/healthz"), 405, "method_not_allowed")
