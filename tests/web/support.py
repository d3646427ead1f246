"""Helpers of the browser tests: history to ring from, signed telephony events, logins."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Page, expect

from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.history import versions
from app.history.models import Contact, Household, Marker, Person, PersonHousehold, Phone
from app.telephony.signature import signed_headers
from tests.conftest import TELEPHONY_SECRET
from tests.support.servers import ROOT

SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"
VIEWPORT = {"width": 1366, "height": 768}

# Numbers in Ofcom's drama ranges: no real subscriber.
REPEAT_VICTIM = "+441134961101"
QUIET_NUMBER = "+441134961999"
MOVED_IN = date(2020, 1, 1)


@dataclass(frozen=True)
class Seeded:
    number: str
    contact_ids: list[str]
    contact_dates: list[datetime]


async def seed_repeat_victim(
    settings: Settings, number: str = REPEAT_VICTIM, *, officer_safety: bool = False
) -> Seeded:
    """A caller with three victim contacts in the last year, living with a partner who has
    an active DA high-risk marker: enough for repeat-victim and household alerts. With
    `officer_safety`, the address carries a weapons marker too (the officer-safety alert)."""
    now = datetime.now(UTC)
    days = (20, 95, 240)
    kinds = ("burglary", "assault", "harassment")
    ids = [f"WC{i}" for i in range(len(days))]
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            session.add_all(
                [
                    Person(id="WP1", name="Avery Webtest", date_of_birth=date(1984, 3, 2)),
                    Person(id="WP2", name="Drew Webtest", date_of_birth=date(1982, 7, 9)),
                    Household(id="WH1", uprn="100000009901", address="9 Test Terrace, Demotown"),
                ]
            )
            await session.flush()
            session.add_all(
                [
                    Phone(e164=number, person_id="WP1"),
                    PersonHousehold(person_id="WP1", household_id="WH1", from_date=MOVED_IN),
                    PersonHousehold(
                        person_id="WP2", household_id="WH1", from_date=MOVED_IN,
                        relationship="partner",
                    ),
                    Marker(
                        id="WM1", subject_type="person", subject_id="WP2", kind="da_high_risk",
                        set_by="test", set_at=now - timedelta(days=30), expires_at=None,
                    ),
                    *[
                        Contact(
                            id=cid, occurred_at=now - timedelta(days=d), number=number,
                            person_id="WP1", household_id="WH1", incident_type=kind, victim=True,
                            domestic_abuse=False, outcome="advice_given",
                        )
                        for cid, d, kind in zip(ids, days, kinds, strict=True)
                    ],
                ]
            )  # fmt: skip
            if officer_safety:
                session.add(
                    Marker(
                        id="WM2", subject_type="household", subject_id="WH1", kind="weapons",
                        set_by="test", set_at=now - timedelta(days=60), expires_at=None,
                    )
                )  # fmt: skip
            await versions.bump(session, ["*"])
    finally:
        await engine.dispose()
    return Seeded(number, ids, [now - timedelta(days=d) for d in days])


class Telephony:
    """Posts canonical events the way a platform does: signed, one per request."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.AsyncClient(base_url=base_url, timeout=10)

    async def close(self) -> None:
        await self.http.aclose()

    async def post(self, external_id: str, type_: str, **fields: Any) -> dict[str, Any]:
        event: dict[str, Any] = {
            "event_id": uuid.uuid4().hex,
            "call_id": external_id,
            "type": type_,
            "occurred_at": datetime.now(UTC).isoformat(),
        }
        event.update(fields)
        body = json.dumps(event).encode()
        headers = signed_headers(TELEPHONY_SECRET.encode(), body)
        response = await self.http.post("/api/v1/telephony/events", content=body, headers=headers)
        assert response.status_code in (200, 202), response.text
        result: dict[str, Any] = response.json()
        return result

    async def ring(
        self,
        external_id: str,
        handler_id: str,
        number: str | None = REPEAT_VICTIM,
        *,
        called: str = "999",
        queue: str = "emergency",
    ) -> int:
        """offered then ringing at `handler_id`; returns the service's call id."""
        caller = (
            {"number": number, "presentation": "allowed"}
            if number
            else {"number": None, "presentation": "withheld"}
        )
        common = {"caller": caller, "called": called, "queue": queue}
        await self.post(external_id, "offered", **common)
        result = await self.post(external_id, "ringing", handler_id=handler_id, **common)
        return int(result["call_id"])


async def login(context: BrowserContext, base_url: str, token: str, path: str) -> Page:
    """Open `path`, get sent to the login page, log in with `token`, land on `path` live."""
    page = await context.new_page()
    await page.goto(base_url + path)
    await expect(page).to_have_url(f"{base_url}/login?next={path}")
    await page.fill("#token", token)
    await page.click("form[action='/login'] button[type=submit]")
    await expect(page).to_have_url(base_url + path)
    await expect(page.locator("#conn")).to_have_attribute("data-state", "live")
    return page


def screenshot_path(name: str) -> Path:
    """test-artifacts/screenshots/ (the test command runs each browser test in one pass
    only, so the two passes never write the same file)."""
    folder = SCREENSHOTS
    folder.mkdir(parents=True, exist_ok=True)
    return folder / name
