"""Helpers of the QA screens' browser tests: a month of calls offered through the signed
batch webhook of a real `firstcontact serve`, the THRIVE+ record of one of them, training
records, logins to pages that have no live socket."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from playwright.async_api import BrowserContext, Page, expect

from app.auth.models import Role
from app.config import Settings
from app.qa import months
from app.rules.loader import load_configured
from app.thrive.schemas import Element
from tests.conftest import MakeStaff
from tests.qa.support import BATCH_URL, CallSpec, auth, events_of
from tests.telephony.support import post_signed
from tests.web.axe import assert_accessible as assert_accessible  # where QA tests found it
from tests.web.support import REPEAT_VICTIM, seed_repeat_victim

HANDLERS = {"H1": "Pat Handler", "H2": "Lee Handler", "H3": "Sam Newstarter"}
CALLS_PER_HANDLER = {"H1": 3, "H2": 3, "H3": 1}


@dataclass
class QaWorld:
    """What was seeded: tokens, the sampled month and the calls (external id -> call id)."""

    base_url: str
    tokens: dict[str, str]
    month: str
    earlier_month: str
    calls: dict[str, int] = field(default_factory=dict)
    handler_of: dict[int, str] = field(default_factory=dict)
    rich_call: int = 0

    def bearer(self, staff_id: str) -> dict[str, str]:
        return auth(self.tokens[staff_id])


async def _offer(http: httpx.AsyncClient, specs: list[CallSpec]) -> dict[str, int]:
    events = [e for spec in specs for e in events_of(spec)]
    response = await post_signed(http, json.dumps(events).encode(), url=BATCH_URL)
    assert response.status_code == 200, response.text
    ids: dict[str, int] = {}
    for sent, result in zip(events, response.json()["results"], strict=True):
        ids[sent["call_id"]] = int(result["call_id"])
    return ids


async def seed_qa_world(settings: Settings, base_url: str, make_staff: MakeStaff) -> QaWorld:
    """Staff (Q1 qa, S1 supervisor, H1-H3 handlers), calls this month (3, 3 and 1 per
    handler: H3 is a shortfall) and one call a month earlier for H1, all answered and ended;
    H1's first call is from a repeat victim and has its THRIVE+ record (incident type,
    narrative, advice, assessment)."""
    await seed_repeat_victim(settings)
    tokens = {"Q1": await make_staff("Q1", Role.qa, name="Quinn Reviewer")}
    tokens["S1"] = await make_staff("S1", Role.supervisor, name="Sam Supervisor")
    for staff_id, name in HANDLERS.items():
        tokens[staff_id] = await make_staff(staff_id, Role.handler, name=name)
    # Ten minutes ago: every call's events are in the past, all in one UK month.
    now = datetime.now(UTC) - timedelta(minutes=10)
    earlier = now - timedelta(days=35)
    world = QaWorld(base_url, tokens, months.of(now), months.of(earlier))
    specs: list[CallSpec] = []
    for staff_id, count in CALLS_PER_HANDLER.items():
        for n in range(count):
            specs.append(
                CallSpec(
                    f"qa-{staff_id}-{n}",
                    staff_id,
                    now + timedelta(seconds=n),
                    queue="emergency" if n % 2 == 0 else "non-emergency",
                    talk=90 + 30 * n,
                    number=REPEAT_VICTIM if (staff_id, n) == ("H1", 0) else None,
                )
            )
    specs.append(CallSpec("qa-H1-earlier", "H1", earlier, talk=200))
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as http:
        world.calls = await _offer(http, specs)
        world.handler_of = {world.calls[s.external]: s.handler for s in specs}
        world.rich_call = world.calls["qa-H1-0"]
        await _thrive_record(http, world, settings.rules_dir)
    return world


async def _thrive_record(http: httpx.AsyncClient, world: QaWorld, rules_dir: Any) -> None:
    call = world.rich_call
    h1 = world.bearer("H1")
    rules = load_configured(rules_dir)
    preservation = [a.id for a in rules.advice["burglary"] if a.kind == "preservation"][:2]
    steps: list[tuple[str, str, dict[str, Any]]] = [
        ("PUT", f"/api/v1/calls/{call}/incident-type", {"incident_type": "burglary"}),
        (
            "POST",
            f"/api/v1/calls/{call}/narrative",
            {"text": "Back door forced overnight. Her kids were asleep upstairs."},
        ),
        ("POST", f"/api/v1/calls/{call}/advice/given", {"ids": preservation}),
    ]
    for method, path, body in steps:
        response = await http.request(method, path, json=body, headers=h1)
        assert response.status_code == 200, (path, response.text)
    # The call has high alerts: threat, harm, risk and vulnerability must be assessed.
    assessed = ("threat", "harm", "risk", "vulnerability")
    elements = {
        e.value: {"risk": "medium", "text": f"{e.value} discussed with the caller"}
        if e.value in assessed
        else {"risk": "not_applicable"}
        for e in Element
    }
    assessment = {
        "grade": "priority",
        "elements": elements,
        "repeat_victim_check": "yes",
        "victim": True,
    }
    response = await http.post(f"/api/v1/calls/{call}/assessment", json=assessment, headers=h1)
    assert response.status_code == 201, response.text


async def record_training(base_url: str, supervisor_token: str) -> None:
    """H1 trained in THRIVE+, H2's repeat-victims training expired, H3 untrained."""
    today = date.today()
    records = [
        {"staff_id": "H1", "module": "thrive_plus", "completed_on": "2024-01-10"},
        {"staff_id": "H1", "module": "repeat_victims", "completed_on": "2024-01-11"},
        {
            "staff_id": "H2",
            "module": "repeat_victims",
            "completed_on": "2023-01-01",
            "expires_on": "2024-01-01",
        },
        {"staff_id": "H2", "module": "thrive_plus", "completed_on": str(today)},
    ]
    async with httpx.AsyncClient(base_url=base_url) as http:
        for body in records:
            response = await http.post(
                "/api/v1/training/records", json=body, headers=auth(supervisor_token)
            )
            assert response.status_code == 201, response.text


async def open_page(context: BrowserContext, base_url: str, token: str, path: str) -> Page:
    """Open `path`, get sent to the login page, log in with `token`, land on `path` (a page
    without a live socket: ready when its script says so in `data-state`)."""
    page = await context.new_page()
    await page.goto(base_url + path)
    await expect(page).to_have_url(f"{base_url}/login?next={quote(path, safe='/')}")
    await page.fill("#token", token)
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page).to_have_url(base_url + path)
    return page
