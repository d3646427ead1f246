"""Tokens: created by the CLI, stored hashed, and the 401/403 cases over HTTP."""

from __future__ import annotations

import subprocess
import sys

import httpx
from sqlalchemy import select

from app.auth.models import ApiToken, Role
from app.auth.service import hash_token
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from tests.conftest import MakeStaff, service_env


def run_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=service_env(settings),
        capture_output=True,
        text=True,
        timeout=60,
    )


async def stored_hashes(settings: Settings) -> list[str]:
    engine = create_engine(settings)
    async with create_sessionmaker(engine)() as session:
        rows = (await session.scalars(select(ApiToken.token_hash))).all()
    await engine.dispose()
    return list(rows)


async def test_cli_token_is_printed_last_and_stored_hashed(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    done = run_cli(
        settings, "staff", "create", "--id", "H1042", "--name", "Pat Doe", "--role", "handler"
    )
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip().splitlines()[-1]
    assert token.startswith("fct_") and " " not in token

    hashes = await stored_hashes(settings)
    assert hashes == [hash_token(token)]
    assert token not in hashes

    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.status_code == 200
    assert me.json()["id"] == "H1042" and me.json()["role"] == "handler"


async def test_cli_refuses_duplicate_and_bad_role(settings: Settings) -> None:
    first = run_cli(
        settings, "staff", "create", "--id", "S1", "--name", "Sam", "--role", "supervisor"
    )
    assert first.returncode == 0, first.stderr
    again = run_cli(
        settings, "staff", "create", "--id", "S1", "--name", "Sam", "--role", "supervisor"
    )
    assert again.returncode == 1
    assert "already exists" in again.stderr
    bad = run_cli(settings, "staff", "create", "--id", "X1", "--name", "X", "--role", "chief")
    assert bad.returncode == 2


async def test_missing_unknown_and_malformed_tokens_get_401(client: httpx.AsyncClient) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer fct_not-a-real-token"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer "},
    ):
        response = await client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.json()["error"]["code"] == "not_authenticated"
        assert response.headers["www-authenticate"] == "Bearer"


async def test_revoked_token_gets_401(
    settings: Settings, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("H7", Role.handler)
    auth = {"Authorization": f"Bearer {token}"}
    assert (await client.get("/api/v1/me", headers=auth)).status_code == 200

    done = run_cli(settings, "staff", "revoke", "--id", "H7")
    assert done.returncode == 0, done.stderr
    response = await client.get("/api/v1/me", headers=auth)
    assert response.status_code == 401
    assert response.json()["error"]["message"] == "unknown or revoked token"


async def test_deactivated_staff_gets_401(client: httpx.AsyncClient, make_staff: MakeStaff) -> None:
    admin = {"Authorization": f"Bearer {await make_staff('A1', Role.admin)}"}
    token = await make_staff("H8", Role.handler)
    revoked = await client.post("/api/v1/staff/H8/revoke?deactivate=true", headers=admin)
    assert revoked.status_code == 200 and revoked.json()["active"] is False
    fresh = await make_staff("H8", Role.handler)  # a new token for an inactive account
    for t in (token, fresh):
        response = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {t}"})
        assert response.status_code == 401


async def test_wrong_role_gets_403(client: httpx.AsyncClient, make_staff: MakeStaff) -> None:
    handler = {"Authorization": f"Bearer {await make_staff('H1', Role.handler)}"}
    admin = {"Authorization": f"Bearer {await make_staff('A1', Role.admin)}"}
    for path in ("/api/v1/staff", "/api/v1/audit"):
        denied = await client.get(path, headers=handler)
        assert denied.status_code == 403
        assert denied.json()["error"]["code"] == "forbidden"
        assert (await client.get(path, headers=admin)).status_code == 200


async def test_admin_creates_staff_over_http_and_it_is_audited(
    client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    admin = {"Authorization": f"Bearer {await make_staff('A1', Role.admin)}"}
    created = await client.post(
        "/api/v1/staff", json={"id": "Q5", "name": "Quinn", "role": "qa"}, headers=admin
    )
    assert created.status_code == 201
    token = created.json()["token"]
    me = await client.get("/api/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert me.json()["role"] == "qa"

    duplicate = await client.post(
        "/api/v1/staff", json={"id": "Q5", "name": "Quinn", "role": "qa"}, headers=admin
    )
    assert duplicate.status_code == 409

    log = (await client.get("/api/v1/audit?subject_id=Q5", headers=admin)).json()["items"]
    assert {entry["actor"] for entry in log} == {"staff:A1"}
    assert {entry["action"] for entry in log} == {"collection", "alteration"}
