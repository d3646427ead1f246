"""Rule packs in the running service: catalogue, reload, refusal at start, `rules check`."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest
import redis
from asgi_lifespan import LifespanManager

from app.auth.models import Role
from app.config import Settings
from app.main import create_app
from app.rules.loader import SHIPPED_DIR, PackLoadError
from tests.conftest import TEST_REDIS_URL, MakeStaff, service_env
from tests.rules.support import ALERTS_VERSION, VERSION, shipped_text, write
from tests.support.servers import ROOT, ServiceProcess, eventually, free_port


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings)
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


async def test_catalogue_needs_staff(client: httpx.AsyncClient, make_staff: MakeStaff) -> None:
    anonymous = await client.get("/api/v1/rules")
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["code"] == "not_authenticated"
    bad = await client.get("/api/v1/rules", headers=bearer("fct_not-a-token"))
    assert bad.status_code == 401

    handler = await make_staff("H1", Role.handler)
    listed = await client.get("/api/v1/rules", headers=bearer(handler))
    assert listed.status_code == 200
    body = listed.json()
    assert {(p["pack"], p["kind"], p["origin"]) for p in body["packs"]} == {
        ("core-alerts", "alerts", "shipped"),
        ("thrive-plus", "prompts", "shipped"),
        ("advice", "advice", "shipped"),
        ("cues", "cues", "shipped"),
    }
    rules = {r["id"]: r for r in body["alert_rules"]}
    assert rules["repeat_victim"]["rule"] == f"repeat_victim@{ALERTS_VERSION}"
    assert rules["repeat_victim"]["when"] == {
        "kind": "count", "fact": "victim_contacts", "per": ["person", "number_if_no_person"],
        "within_days": 365, "op": ">=", "value": 1, "incident_types": [],
        "categories": ["crime", "asb", "unknown"], "half_life_days": 90.0,
    }  # fmt: skip
    assert set(body["operators"]) == {">=", ">", "==", "!=", "<=", "<"}
    assert "victim_contacts" in body["facts"]
    assert body["markers"]["da_high_risk"] == "domestic abuse high-risk"
    assert body["marker_categories"]["firearms"] == "officer_safety"
    assert set(body["categories"]) == {
        "officer_safety", "safeguarding", "orders", "needs", "history",
    }  # fmt: skip
    burglary = next(t for t in body["incident_types"] if t["id"] == "burglary")
    assert "burglary.dont_touch_entry" in [a["id"] for a in burglary["advice"]]
    qualifiers = {q["id"]: q for q in body["qualifiers"]}
    assert qualifiers["domestic_abuse"]["advice_of"] == ["domestic_abuse"]
    assert "race" in qualifiers["hate_crime"]["strands"]
    assert "qualifier.weapon_leave" in [a["id"] for a in qualifiers["weapons"]["advice"]]
    suspect = next(p for p in body["prompts"] if p["id"] == "da.suspect_present")
    assert suspect["qualifiers"] == ["domestic_abuse"]
    strands = {s["id"]: s for s in body["strands"]}
    assert "children_present" in strands
    assert strands["weapons"]["severity"] == "high"
    assert strands["children_present"]["severity"] == "medium"
    assert [e["id"] for e in body["elements"]][:2] == ["threat", "harm"]
    assert body["horizon_days"] == 365
    assert all("/" not in p["file"] for p in body["packs"])  # no server paths


async def test_reload_needs_an_admin(client: httpx.AsyncClient, make_staff: MakeStaff) -> None:
    assert (await client.post("/api/v1/rules/reload")).status_code == 401
    for staff_id, role in (("H1", Role.handler), ("S1", Role.supervisor), ("Q1", Role.qa)):
        token = await make_staff(staff_id, role)
        refused = await client.post("/api/v1/rules/reload", headers=bearer(token))
        assert refused.status_code == 403, role
        assert refused.json()["error"]["code"] == "forbidden"
    admin = await make_staff("A1", Role.admin)
    done = await client.post("/api/v1/rules/reload", headers=bearer(admin))
    assert done.status_code == 200
    assert {p["pack"] for p in done.json()} == {"core-alerts", "thrive-plus", "advice", "cues"}


async def test_reload_applies_an_edited_pack_and_keeps_the_old_one_when_invalid(
    settings: Settings, make_staff: MakeStaff, tmp_path: Path
) -> None:
    force = tmp_path / "force-packs"
    force.mkdir()
    write(force, "thrive.yaml", shipped_text("thrive.yaml"))
    admin = bearer(await make_staff("A1", Role.admin))
    handler = bearer(await make_staff("H1", Role.handler))

    def repeat_prompt(body: dict) -> dict:  # type: ignore[type-arg]
        return next(p for p in body["prompts"] if p["id"] == "alert.repeat_victim")

    async with serving(settings.model_copy(update={"rules_dir": force})) as http:
        before = (await http.get("/api/v1/rules", headers=handler)).json()
        assert repeat_prompt(before)["text"].startswith("Confirm the repeat-victim check")
        origins = {p["pack"]: p["origin"] for p in before["packs"]}
        assert origins["thrive-plus"] == "force" and origins["advice"] == "shipped"

        # An edit with a mistake: refused with file, line and reason; the old packs stay.
        broken = shipped_text("thrive.yaml").replace(
            "    alerts: [repeat_victim]\n", "    alerts: [repeat_victim]\n    colour: red\n"
        )
        bad_line = broken.splitlines().index("    colour: red") + 1
        write(force, "thrive.yaml", broken)
        refused = await http.post("/api/v1/rules/reload", headers=admin)
        assert refused.status_code == 422
        error = refused.json()["error"]
        assert error["code"] == "invalid_rule_pack"
        assert error["details"] == [
            {"file": str(force / "thrive.yaml"), "line": bad_line, "reason": "unknown key 'colour'"}
        ]
        still = (await http.get("/api/v1/rules", headers=handler)).json()
        assert still["loaded_at"] == before["loaded_at"]
        assert repeat_prompt(still) == repeat_prompt(before)

        # The corrected edit: new prompt text and version after reload.
        edited = (
            shipped_text("thrive.yaml")
            .replace(
                "Confirm the repeat-victim check with the caller",
                "Repeat victim: confirm with caller",
            )
            .replace(f'version: "{VERSION}"', 'version: "2026.12.0"')
        )
        write(force, "thrive.yaml", edited)
        reloaded = await http.post("/api/v1/rules/reload", headers=admin)
        assert reloaded.status_code == 200
        after = (await http.get("/api/v1/rules", headers=handler)).json()
        assert repeat_prompt(after)["text"].startswith("Repeat victim: confirm with caller")
        assert repeat_prompt(after)["rule"] == "alert.repeat_victim@2026.12.0"
        assert after["loaded_at"] != before["loaded_at"]


async def test_invalid_pack_refuses_the_in_process_start(
    settings: Settings, tmp_path: Path
) -> None:
    write(tmp_path, "alerts.yaml", "pack: core-alerts\nversion: '9'\nkind: alerts\nrulez: []\n")
    application = create_app(settings.model_copy(update={"rules_dir": tmp_path}))
    with pytest.raises(PackLoadError) as caught:
        async with LifespanManager(application):
            pass
    assert [str(p) for p in caught.value.problems] == [
        f"{tmp_path / 'alerts.yaml'}:4: unknown key 'rulez'"
    ]


def test_invalid_pack_refuses_a_real_service_start(settings: Settings, tmp_path: Path) -> None:
    write(
        tmp_path,
        "alerts.yaml",
        shipped_text("alerts.yaml").replace("      fact: contacts\n", "      fact: calls\n"),
    )
    line = (tmp_path / "alerts.yaml").read_text().splitlines().index("      fact: calls") + 1
    # `firstcontact serve` as an operator runs it; it must exit by itself, not serve.
    done = subprocess.run(
        [sys.executable, "-m", "app.cli", "serve", "--port", str(free_port())],
        cwd=ROOT, env=service_env(settings, RULES_DIR=str(tmp_path)),
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode != 0
    output = done.stdout + done.stderr
    assert f"{tmp_path / 'alerts.yaml'}:{line}: fact: unknown value" in output
    assert "rule packs refused, not starting" in output


def test_a_valid_rules_dir_starts_a_real_service(
    live_service: Callable[..., ServiceProcess], tmp_path: Path
) -> None:
    write(tmp_path, "extra.yaml", "pack: force-extra\nversion: 'f1'\nkind: alerts\nrules: []\n")
    service = live_service(RULES_DIR=str(tmp_path))
    assert httpx.get(service.url + "/healthz", timeout=5).status_code == 200
    assert service.log_path is not None
    assert "force-extra@f1" in service.log_path.read_text()


def rules_check(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "rules", "check", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_rules_check_cli(tmp_path: Path) -> None:
    ok = rules_check(SHIPPED_DIR)
    assert ok.returncode == 0, ok.stderr
    assert "core-alerts@" in ok.stdout and "cues@" in ok.stdout

    write(tmp_path, "good.yaml", "pack: force-extra\nversion: '1'\nkind: alerts\nrules: []\n")
    assert rules_check(tmp_path / "good.yaml").returncode == 0

    write(
        tmp_path,
        "bad.yaml",
        "pack: force-extra2\nversion: '1'\nkind: alerts\nrules:\n"
        "  - {id: r, alert: a, severity: severe, title: t,\n"
        "     when: {kind: presentation, any_of: [withheld]}}\n",
    )
    bad = rules_check(tmp_path / "bad.yaml")
    assert bad.returncode == 1
    first = bad.stderr.splitlines()[0]
    assert first.startswith(f"{tmp_path / 'bad.yaml'}:5: severity: unknown value")
    assert "1 problem(s)" in bad.stderr
    # a folder with the bad file in it is refused too
    assert rules_check(tmp_path).returncode == 1
    assert rules_check(tmp_path / "missing").returncode == 1


async def test_a_reload_reaches_every_worker(
    settings: Settings, make_staff: MakeStaff, tmp_path: Path
) -> None:
    """Two service instances sharing Redis (as two workers do): a reload sent to one is
    followed by the other. Redis is used on both backends: it is what carries the news."""
    force = tmp_path / "packs"
    force.mkdir()
    write(force, "thrive.yaml", shipped_text("thrive.yaml"))
    prefix = f"fcrules:{uuid.uuid4().hex[:8]}:"
    shared = settings.model_copy(
        update={
            "redis_url": TEST_REDIS_URL,
            "redis_prefix": prefix,
            "rules_dir": force,
            "rules_poll_seconds": 0.05,
        }
    )
    admin = bearer(await make_staff("A1", Role.admin))
    handler = bearer(await make_staff("H1", Role.handler))

    async def repeat_text(http: httpx.AsyncClient) -> str:
        body = (await http.get("/api/v1/rules", headers=handler)).json()
        return str(next(p["text"] for p in body["prompts"] if p["id"] == "alert.repeat_victim"))

    try:
        async with serving(shared) as one, serving(shared) as two:
            assert (await repeat_text(two)).startswith("Confirm the repeat-victim check")
            write(
                force,
                "thrive.yaml",
                shipped_text("thrive.yaml").replace(
                    "Confirm the repeat-victim check", "Worker-wide: confirm the check"
                ),
            )
            assert (await one.post("/api/v1/rules/reload", headers=admin)).status_code == 200
            assert (await repeat_text(one)).startswith("Worker-wide")

            # The other instance follows (its watcher runs on this loop).
            async def followed() -> bool:
                return (await repeat_text(two)).startswith("Worker-wide")

            await eventually(followed, 10, what="the second instance to pick up the reload")
    finally:
        client = redis.Redis.from_url(TEST_REDIS_URL)
        keys = list(client.scan_iter(match=prefix + "*"))
        if keys:
            client.delete(*keys)
        client.close()
