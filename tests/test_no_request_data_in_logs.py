"""Issue 11, acceptance 6 and point 7: request data never reaches a log line.

A narrative with NUL on PostgreSQL used to give a 500 whose log line quoted the statement's
parameters, narrative included. Now: the engine hides parameters, exceptions are logged by
type and place only, and the bad input is refused before it reaches the store.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Callable, Iterator

import httpx
import pytest
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import create_async_engine

from app.auth.models import Role, Staff
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.logs import QUIET_LOGGERS, JsonFormatter
from tests.conftest import MakeStaff
from tests.realtime.support import event, frame, open_socket, post, ring
from tests.support.servers import ServiceProcess
from tests.thrive.support import full_assessment

# Words no log line has any reason to hold, in every piece of text the tests send.
WORDS = ("Quillon", "Brackwater", "Vossberg", "pregnant", "knife")
NARRATIVE = "Quillon Brackwater is pregnant and Vossberg has a knife"


@pytest.fixture
def captured_logs() -> Iterator[io.StringIO]:
    """Every log line of the test at DEBUG, rendered and filtered as the service does (JSON
    lines; the drivers' statement logs held at WARNING, as `configure_logging` holds them)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    levels = {name: logging.getLogger(name).level for name in ("", *QUIET_LOGGERS)}
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def _duplicate_staff(settings: Settings, engine_factory: Callable[[], object]) -> str:
    """Insert the same staff id twice; the second insert's IntegrityError, as a string.

    `name` is a statement parameter only: the driver's own message names the key (the id),
    so it is the parameters section alone that could quote the name."""
    engine = engine_factory()
    sessions = create_sessionmaker(engine)  # type: ignore[arg-type]
    try:
        async with sessions() as session, session.begin():
            session.add(Staff(id="ZQ1", name="Ottoline", role="qa"))
        with pytest.raises(IntegrityError) as raised:
            async with sessions() as session, session.begin():
                session.add(Staff(id="ZQ1", name="Marchbanks Quillon", role="qa"))
        return str(raised.value)
    finally:
        await engine.dispose()  # type: ignore[attr-defined]


async def test_engine_hides_statement_parameters(settings: Settings) -> None:
    text = await _duplicate_staff(settings, lambda: create_engine(settings))
    assert "Marchbanks" not in text and "Quillon" not in text
    assert "hide_parameters=True" in text
    # What the setting prevents: the same error from a default engine quotes the name.
    async with create_sessionmaker(create_engine(settings))() as session, session.begin():
        await session.delete(await session.get(Staff, "ZQ1"))
    plain = await _duplicate_staff(settings, lambda: create_async_engine(settings.database_url))
    assert "Marchbanks Quillon" in plain


async def test_unhandled_database_error_is_logged_by_type_and_place(
    app: FastAPI, captured_logs: io.StringIO
) -> None:
    """A real DB error through a route: a 500 envelope, and a log line with the exception's
    type and where it was raised; neither the driver's message (which names the key) nor
    the statement's parameters."""

    async def duplicate(request: Request) -> JSONResponse:
        sessions = request.app.state.resources.sessions
        for name in ("Ottoline", "Marchbanks Quillon"):
            async with sessions() as session, session.begin():
                session.add(Staff(id="ZQ2", name=name, role="qa"))
        return JSONResponse({})

    app.add_api_route("/test-only/duplicate", duplicate, methods=["POST"])
    transport = httpx.ASGITransport(app=app.state.asgi, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        response = await http.post("/test-only/duplicate")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    lines = [json.loads(line) for line in captured_logs.getvalue().splitlines()]
    unhandled = [line for line in lines if line["msg"].startswith("unhandled error")]
    assert len(unhandled) == 1, lines
    assert unhandled[0]["error"] == "IntegrityError"
    assert unhandled[0]["where"].startswith("tests/test_no_request_data_in_logs.py:duplicate:")
    assert "IntegrityError (message withheld)" in unhandled[0]["exc"]
    logged = captured_logs.getvalue()
    for secret in ("ZQ2", "Marchbanks", "Quillon", "Ottoline"):
        assert secret not in logged


Live = Callable[..., ServiceProcess]


async def test_narrative_with_nul_leaves_no_trace_in_the_service_logs(
    settings: Settings, live_service: Live, make_staff: MakeStaff
) -> None:
    """Acceptance 6: a real service at DEBUG on the run's backend (PostgreSQL on the
    production run), the handler's socket open; every line the service wrote (stdout and
    stderr) is searched for the words sent, and for the handler's token."""
    service = live_service(LOG_LEVEL="DEBUG")
    token = await make_staff("H1", Role.handler)
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    threat = full_assessment()["elements"] | {"threat": {"risk": "high", "text": NARRATIVE}}
    refused = [
        ("narrative", "POST", {"text": NARRATIVE + "\u0000", "mode": "replace"}),
        ("narrative", "POST", {"text": "\u0000" + NARRATIVE, "mode": "append"}),
        ("narrative", "POST", {"text": NARRATIVE + "\ud800", "mode": "replace"}),
        ("assessment", "PUT", full_assessment(elements=threat, grade_reason="\u0000")),
        ("assessment", "PUT", full_assessment(grade_reason=NARRATIVE + "\u0000")),
    ]
    async with (
        open_socket(service, token) as ws,
        httpx.AsyncClient(base_url=service.url, timeout=10) as http,
    ):
        await frame(ws)
        call_id = await ring(service, "logs-nul", "H1")
        await post(service, event("logs-nul", "answered", handler_id="H1"))
        for tail, method, body in refused:
            response = await http.request(
                method,
                f"/api/v1/calls/{call_id}/{tail}",
                content=json.dumps(body).encode(),  # the escapes exactly as a client sends
                headers=headers,
            )
            assert response.status_code == 422, response.text
        search = await http.get(
            f"/api/v1/history/households?call_id={call_id}&address=Brackwater%00Lane",
            headers=headers,
        )
        assert search.status_code == 422, search.text
        # And the good path at DEBUG: stored, its cues pushed on the socket, searched.
        stored = await http.post(
            f"/api/v1/calls/{call_id}/narrative",
            json={"text": NARRATIVE, "mode": "replace"},
            headers=headers,
        )
        assert stored.status_code == 200, stored.text
        found = await http.get(
            f"/api/v1/history/households?call_id={call_id}&address=Brackwater%20Lane",
            headers=headers,
        )
        assert found.status_code == 200, found.text
        kinds = []
        while "cue.detected" not in kinds:
            kinds.append((await frame(ws))["type"])
    service.stop()
    assert service.log_path is not None
    lines = service.log_path.read_text(errors="replace").splitlines()
    # The run's requests are in the log (so it was written, and read here)...
    narrative_lines = [line for line in lines if f"/api/v1/calls/{call_id}/narrative" in line]
    assert len(narrative_lines) == 4, narrative_lines
    assert any("/api/v1/history/households HTTP/1.1" in line for line in lines)
    # ...but not one word of what was sent, nor the credential it was sent with.
    hits = [line for line in lines for word in WORDS if word.lower() in line.lower()]
    assert hits == []
    assert not [line for line in lines if token in line]
