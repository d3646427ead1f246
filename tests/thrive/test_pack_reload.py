"""A force's edited prompt pack changes what the incident-type call returns and pushes, after
an admin reload, without a restart (the API side of acceptance 6)."""

from __future__ import annotations

from pathlib import Path

import httpx
from asgi_lifespan import LifespanManager

from app.auth.models import Role
from app.config import Settings
from app.main import create_app
from app.rules.loader import SHIPPED_DIR
from tests.conftest import MakeStaff
from tests.thrive.support import answered_call, auth

EXTRA = """
  - id: burglary.doorbell_camera
    element: investigation
    incident_types: [burglary]
    text: "Ask whether a neighbour's doorbell camera faces the street."
"""


async def test_reloaded_pack_changes_prompts(
    settings: Settings, tmp_path: Path, make_staff: MakeStaff
) -> None:
    force_dir = tmp_path / "rules"
    force_dir.mkdir()
    app = create_app(settings.model_copy(update={"rules_dir": force_dir}))
    handler = await make_staff("H1", Role.handler)
    admin = await make_staff("A1", Role.admin)
    async with LifespanManager(app) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            call_id = await answered_call(client, "H1")
            url = f"/api/v1/calls/{call_id}/incident-type"
            body = {"incident_type": "burglary"}

            before = await client.put(url, json=body, headers=auth(handler))
            assert before.status_code == 200
            ids = {p["id"] for p in before.json()["prompts"]}
            assert "burglary.doorbell_camera" not in ids

            shipped = (SHIPPED_DIR / "thrive.yaml").read_text()
            edited = shipped.replace('version: "', 'version: "force-', 1) + EXTRA
            (force_dir / "thrive.yaml").write_text(edited)
            reload = await client.post("/api/v1/rules/reload", headers=auth(admin))
            assert reload.status_code == 200, reload.text

            after = await client.put(url, json=body, headers=auth(handler))
            assert after.status_code == 200
            prompts = {p["id"]: p for p in after.json()["prompts"]}
            assert "@force-" in prompts["burglary.doorbell_camera"]["rule"]
            assert ids <= set(prompts)
