"""link -> screen (issue 13 acceptance 2): `POST /api/v1/calls/{id}/subjects` sent -> the
last `alert.raised` frame it causes received on the handler's socket. PostgreSQL + Redis (or
the embedded default), a real uvicorn process, a real socket.

    .venv/bin/python -m bench.link [--links 50] [--warmup 5] [--embedded]

Each round: a withheld call offered, ringing and answered at the handler's desk; the clock
starts as the link of the victim (found by name and date of birth) is sent and stops when the
socket has received every alert the link raised; then the call ends. Goal: p99 <= 100 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import connect

from app import migrate
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.telephony.signature import signed_headers
from bench.realtime_env import SECRET, bench_backend, make_handlers, start_service
from tests.history.identify_support import seed_with


async def _post_event(http: httpx.AsyncClient, body: dict[str, Any]) -> int:
    raw = json.dumps(body).encode()
    response = await http.post(
        "/api/v1/telephony/events",
        content=raw,
        headers=signed_headers(SECRET.encode(), raw, int(time.time())),
    )
    assert response.status_code in (200, 202), response.text
    return int(response.json()["call_id"])


def _event(call: str, type_: str, **fields: Any) -> dict[str, Any]:
    from datetime import UTC, datetime

    return {
        "event_id": f"bl-{call}-{type_}",
        "call_id": call,
        "type": type_,
        "occurred_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        **fields,
    }


async def _until(ws: Any, type_: str, call_id: int) -> dict[str, Any]:
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message["type"] == "ping":
            await ws.send(json.dumps({"type": "pong"}))
        elif message["type"] == type_ and message.get("call_id") == call_id:
            return message


async def run(settings: Settings, links: int, warmup: int) -> dict[str, Any]:
    engine = create_engine(settings)
    try:
        await seed_with(create_sessionmaker(engine))
    finally:
        await engine.dispose()
    token = (await make_handlers(settings, ["H1"]))["H1"]
    auth = {"Authorization": f"Bearer {token}"}
    service = start_service(settings)
    timings: list[float] = []
    answers: list[float] = []
    searches: list[float] = []  # the search request, for comparison (a read, no push)
    try:
        async with (
            httpx.AsyncClient(base_url=service.url, timeout=10) as http,
            connect(service.ws_url + "/ws", additional_headers=auth) as ws,
        ):
            for n in range(warmup + links):
                call = f"bench-link-{n}"
                withheld = {"number": "", "presentation": "withheld"}
                await _post_event(http, _event(call, "offered", caller=withheld, called="999"))
                await _post_event(http, _event(call, "ringing", handler_id="H1"))
                call_id = await _post_event(http, _event(call, "answered", handler_id="H1"))
                await _until(ws, "call.answered", call_id)
                searched = time.perf_counter()
                found = await http.get(
                    "/api/v1/history/search",
                    params={"call_id": call_id, "q": "Jo Demo 1985-03-02"},
                    headers=auth,
                )
                person = found.json()["persons"][0]["id"]
                search_ms = (time.perf_counter() - searched) * 1000
                started = time.perf_counter()
                response = await http.post(
                    f"/api/v1/calls/{call_id}/subjects",
                    json={"person_id": person, "role": "victim"},
                    headers=auth,
                )
                answered = time.perf_counter()
                assert response.status_code == 201, response.text
                expected = {a["alert_id"] for a in response.json()["alerts"]}
                seen: set[int] = set()
                while seen != expected:
                    seen.add((await _until(ws, "alert.raised", call_id))["data"]["alert_id"])
                done = time.perf_counter()
                if n >= warmup:
                    timings.append((done - started) * 1000)
                    answers.append((answered - started) * 1000)
                    searches.append(search_ms)
                await _post_event(http, _event(call, "ended", cause="normal"))
    finally:
        service.stop()
    q = statistics.quantiles(timings, n=100)
    return {
        "links": links,
        "link_to_frames_ms": {"p50": round(q[49], 2), "p99": round(q[98], 2)},
        "link_response_ms": {"p50": round(statistics.median(answers), 2)},
        "search_response_ms": {"p50": round(statistics.median(searches), 2)},
        "goal_p99_ms": 100,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="bench.link")
    parser.add_argument("--links", type=int, default=50)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--embedded", action="store_true")
    args = parser.parse_args()
    with ExitStack() as stack:
        if args.embedded:
            folder = Path(stack.enter_context(tempfile.TemporaryDirectory()))
            settings = Settings(
                env="test",
                database_url=f"sqlite+aiosqlite:///{folder / 'bench.db'}",
                telephony_secret=SECRET,
                session_secret="bench-session-secret-0123456789",
            )
            migrate.upgrade(settings)
        else:
            settings = stack.enter_context(bench_backend())
        result = asyncio.run(run(settings, args.links, args.warmup))
    result["backend"] = "embedded" if args.embedded else "production"
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
