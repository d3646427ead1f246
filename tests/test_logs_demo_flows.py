"""Issue 16 acceptance 2: `firstcontact demo` at DEBUG on the run's backend, a fuzz pass and
every flow of the issue (search, household lookup, link, narrative, assessment, lists, board,
THRIVE+ view, sockets with a token in the URL and as a header, login, the purpose and rate
limits, the audit commands); then every line the service and the commands logged (the app's
loggers and uvicorn's, on stderr) is searched for the seeded names, numbers, addresses, the
narrative's words and every token issued: 0 hits."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
import schemathesis
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.config import Settings
from app.history.demo import DEMO_NUMBERS
from app.telephony.signature import signed_headers
from tests import test_fuzz
from tests.conftest import TELEPHONY_SECRET, service_env
from tests.realtime.support import frame
from tests.support.servers import free_port, wait_until
from tests.test_no_request_data_in_logs import NARRATIVE, WORDS
from tests.thrive.support import full_assessment

# What the demo seeds (app.history.demo): names, streets and towns, UPRNs, numbers.
NAMES = (
    "Alex Demo",
    "Sam Demo",
    "Jo Demo",
    "Chris Demo",
    "Morgan Demo",
    "Robin Demo",
    "Jamie Demo",
    "Taylor Demo",
    "Casey Demo",
    "Drew Demo",
    "Kit Demo",
    "Demo Person",
)
PLACES = ("Repeat Row", "Marker Mews", "Escalation End", "Expired Close", "Warning Walk",
          "High Street", "Mill Lane", "Church Road", "Station Road", "Park Avenue", "Demotown",
          "100000000002", "100000000008")  # fmt: skip


def _number_forms() -> list[str]:
    forms = []
    for demo in DEMO_NUMBERS:
        e164 = demo.e164
        forms += [e164, e164[1:], "0" + e164[3:], "0" + e164[3:7] + " " + e164[7:]]
    return forms


def _signed_post(base: str, body: dict[str, Any]) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = signed_headers(TELEPHONY_SECRET.encode(), raw, int(time.time()))
    return httpx.post(base + "/api/v1/telephony/events", content=raw, headers=headers, timeout=10)


def _event(external: str, type_: str, **fields: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "event_id": f"logs-{external}-{type_}-{time.monotonic_ns()}",
        "call_id": external,
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **fields,
    }


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def _sockets(ws_base: str, tokens: dict[str, str], call: int) -> None:
    # A token in the URL is refused (4001), and must not reach a log line either.
    with pytest.raises(ConnectionClosed):
        async with connect(f"{ws_base}/ws?token={tokens['H1001']}&after=0-0") as ws:
            await frame(ws)
    async with connect(
        ws_base + "/ws", additional_headers={"Authorization": f"Bearer {tokens['S2001']}"}
    ) as ws:
        hello = await frame(ws)
        assert hello["type"] == "hello"
        # Resume from the start: the board's frames (alerts naming people) again.
        async with connect(
            ws_base + f"/ws?after={hello['id'] if hello.get('id') else '0-0'}",
            additional_headers={"Authorization": f"Bearer {tokens['S2001']}"},
        ) as again:
            await frame(again)
    assert call


def _flows(base: str, ws_base: str, tokens: dict[str, str], settings_env: dict[str, str]) -> None:
    h = {"Authorization": f"Bearer {tokens['H1001']}"}
    s = {"Authorization": f"Bearer {tokens['S2001']}"}
    a = {"Authorization": f"Bearer {tokens['A4001']}"}
    external = "logs-demo-1"
    number = DEMO_NUMBERS[1].e164  # Sam Demo: Jo Demo, his partner, has a DA marker
    _signed_post(base, _event(external, "offered", caller={"number": number,
                 "presentation": "allowed"}, called="999", queue="emergency"))  # fmt: skip
    _signed_post(base, _event(external, "ringing", handler_id="H1001"))
    answered = _signed_post(base, _event(external, "answered", handler_id="H1001"))
    call = int(answered.json()["call_id"])
    with httpx.Client(base_url=base, timeout=30) as http:
        for q in ("Jo Demo 01/06/1985", "2 Marker Mews", number, "0" + number[3:], "DT1",
                  "100000000002"):  # fmt: skip
            assert http.get("/api/v1/history/search", params={"call_id": call, "q": q},
                            headers=h).status_code == 200  # fmt: skip
        for params in ({"address": "Marker Mews"}, {"uprn": "100000000008"},
                       {"household_id": "DSH2"}):  # fmt: skip
            got = http.get("/api/v1/history/households", params={"call_id": call, **params},
                           headers=h)  # fmt: skip
            assert got.status_code == 200, got.text
        linked = http.post(f"/api/v1/calls/{call}/subjects",
                           json={"person_id": "DSP2B", "role": "victim"}, headers=h)  # fmt: skip
        assert linked.status_code == 201, linked.text
        assert http.post(f"/api/v1/calls/{call}/narrative",
                         json={"text": NARRATIVE, "mode": "replace"},
                         headers=h).status_code == 200  # fmt: skip
        for path in (f"/api/v1/calls/{call}/thrive", f"/api/v1/history/calls/{call}",
                     "/api/v1/calls", f"/api/v1/calls/{call}"):  # fmt: skip
            assert http.get(path, headers=h).status_code == 200, path
            assert http.get(path, headers=s).status_code == 200, path
        assert http.get("/web/api/board", headers=s).status_code == 200
        assert http.get("/api/v1/audit", headers=a).status_code == 200
        # Tokens where they do not belong: in URLs (refused), in a login form (accepted).
        http.get(f"/cti?token={tokens['T9001']}")
        http.get(f"/api/v1/me?token={tokens['A4001']}")
        http.get(f"/api/v1/history/search?call_id={call}&q=Jo%20Demo&token={tokens['H1002']}")
        login = http.post("/login", data={"token": tokens["Q3001"]},
                          headers={"Origin": base})  # fmt: skip
        assert login.status_code in (200, 303), login.text
        # The rate limit (the 31st search in the minute) and the wrap-up window.
        statuses = [
            http.get(
                "/api/v1/history/search", params={"call_id": call, "q": "Sam Demo"}, headers=h
            ).status_code  # fmt: skip
            for _ in range(30)
        ]
        assert 429 in statuses
        _signed_post(base, _event(external, "ended", cause="normal"))
        written = http.put(f"/api/v1/calls/{call}/assessment",
                           json=full_assessment(grade_reason=NARRATIVE), headers=h)  # fmt: skip
        assert written.status_code in (201, 422), written.text
    asyncio.run(_sockets(ws_base, tokens, call))


def _demo(tmp_path: Path, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str, Path]:
    port = free_port()
    err = tmp_path / "demo.stderr"
    out = tmp_path / "demo.stdout"
    with err.open("wb") as e, out.open("wb") as o:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", "--port", str(port)],
            cwd=Path(__file__).resolve().parent.parent, env=env, stdout=o, stderr=e,
            start_new_session=True,
        )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    wait_until(
        lambda: httpx.get(base + "/readyz", timeout=2).status_code == 200,
        120,
        what="the demo: " + err.read_text(errors="replace")[-2000:],
    )
    return proc, base, out


def test_demo_fuzz_and_every_flow_leave_no_personal_data_in_any_log_line(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = service_env(settings, LOG_LEVEL="DEBUG", LOG_JSON="true")
    proc, base, out = _demo(tmp_path, env)
    try:
        tokens = dict(re.findall(r"^\s+\w+\s+(\w+)\s+(fct_\S+)$", out.read_text(), re.M))
        assert {"H1001", "S2001", "A4001", "T9001", "Q3001"} <= set(tokens), out.read_text()
        _flows(base, base.replace("http", "ws", 1), tokens, env)
        # A fuzz pass over every operation as a handler, a supervisor and nobody.
        monkeypatch.setattr(test_fuzz, "EXAMPLES", 2)
        # The document needs a staff login (issue 16).
        schema = schemathesis.openapi.from_url(
            base + "/openapi.json", headers={"Authorization": f"Bearer {tokens['H1001']}"}
        )
        roles: dict[str, str | None] = {"none": None, "handler": tokens["H1001"],
                                        "supervisor": tokens["S2001"]}  # fmt: skip
        report = test_fuzz.fuzz(schema, base, roles, {"call_id": 1, "alert_id": 1})
        assert report.requests > report.operations, report.summary()
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
    verified = _cli(env, "audit", "verify")
    assert verified.returncode == 0, verified.stderr
    subject = _cli(env, "audit", "subject", "--person", "DSP2B")
    assert subject.returncode == 0 and "staff:H1001" in subject.stdout, subject.stderr

    lines = [
        *(tmp_path / "demo.stderr").read_text(errors="replace").splitlines(),
        *verified.stderr.splitlines(),
        *subject.stderr.splitlines(),
    ]
    # The log was written and read: requests, socket lines, uvicorn's and ours.
    text = "\n".join(lines)
    messages = "\n".join(json.loads(line)["msg"] for line in lines if line.startswith("{"))
    assert '"GET /api/v1/history/search HTTP/1.1" 200' in messages
    assert '"GET /api/v1/history/search HTTP/1.1" 429' in messages
    assert '"WebSocket /ws"' in messages and '"logger": "app.' in text
    forbidden = [*NAMES, *PLACES, *WORDS, *_number_forms(), *tokens.values()]
    hits = [(word, line) for line in lines for word in forbidden if word.lower() in line.lower()]
    assert hits == [], hits[:10]
    assert not re.search(r"fct_[A-Za-z0-9_-]{8,}", text)
