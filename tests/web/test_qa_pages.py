"""The QA pages' doors (issue 12): the qa role logs in to its screen, each page opens for the
roles whose API it reads (a 403 page otherwise, the login for nobody), with the pages' own
headers, our own scripts only, and the top bar's links for the role. In-process (ASGI)."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI

from app.auth.models import Role
from tests.conftest import MakeStaff

ORIGIN = "http://testserver"
PAGES = {
    "/qa": {Role.qa, Role.supervisor},
    "/qa/report": {Role.qa, Role.supervisor, Role.admin},
    "/handler/reviews": {Role.handler},
}
NAV = {
    Role.handler: ["/handler", "/handler/reviews"],
    Role.supervisor: ["/supervisor", "/qa", "/qa/report"],
    Role.admin: ["/supervisor", "/qa/report"],
    Role.qa: ["/qa", "/qa/report"],
}


async def _browser(app: FastAPI, token: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app.state.asgi), base_url=ORIGIN)
    response = await http.post("/login", data={"token": token}, headers={"Origin": ORIGIN})
    assert response.status_code == 303, response.text
    return http


async def test_qa_role_logs_in_to_the_qa_screen(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    token = await make_staff("Q1", Role.qa)
    response = await client.post("/login", data={"token": token}, headers={"Origin": ORIGIN})
    assert response.status_code == 303 and response.headers["location"] == "/qa"
    assert (await client.get("/")).headers["location"] == "/qa"
    assert (await client.get("/login")).headers["location"] == "/qa"
    # Machines still get no browser session, and are told who the screens are for.
    machine = await make_staff("T1", Role.integration)
    http = httpx.AsyncClient(transport=httpx.ASGITransport(app=app.state.asgi), base_url=ORIGIN)
    async with http:
        refused = await http.post("/login", data={"token": machine}, headers={"Origin": ORIGIN})
    assert refused.status_code == 403 and "set-cookie" not in refused.headers
    assert "handlers, supervisors and QA reviewers" in refused.text


async def test_each_qa_page_opens_for_its_roles_only(
    app: FastAPI, client: httpx.AsyncClient, make_staff: MakeStaff
) -> None:
    for path in PAGES:
        anonymous = await client.get(path + "?month=2026-11")
        assert anonymous.status_code == 303
        assert anonymous.headers["location"] == f"/login?next={path}%3Fmonth%3D2026-11"
    for role in (Role.handler, Role.supervisor, Role.qa, Role.admin):
        token = await make_staff(f"{role.value[0].upper()}1", role)
        http = await _browser(app, token)
        try:
            for path, allowed in PAGES.items():
                page = await http.get(path)
                if role not in allowed:
                    assert page.status_code == 403, (role, path)
                    assert "403 Forbidden" in page.text
                    continue
                assert page.status_code == 200, (role, path)
                assert page.headers["cache-control"] == "no-store"
                assert "script-src" not in page.headers["content-security-policy"]
                assert "default-src 'self'" in page.headers["content-security-policy"]
                # Our own modules and the JSON data block only: no inline code, no CDN.
                for tag in re.findall(r"<script[^>]*>", page.text):
                    assert re.fullmatch(
                        r'<script (type="module" src="/static/[a-z_]+\.js\?v=\d+"|'
                        r'type="application/json" id="labels")>',
                        tag,
                    ), tag
                # The top bar links the role's screens, this one marked current.
                links = re.findall(r'<nav class="screens".*?</nav>', page.text, re.S)[0]
                assert re.findall(r'href="([^"]+)"', links) == NAV[role]
                assert f'href="{path}" aria-current="page"' in links
        finally:
            await http.aclose()
