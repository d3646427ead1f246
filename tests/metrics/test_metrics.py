"""`GET /metrics` (issue 18, item 4): who may scrape, and what a webhook's path counts."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from asgi_lifespan import LifespanManager
from fastapi import FastAPI
from pydantic import SecretStr

from app.config import Settings
from app.correlation import sane_request_id
from app.logs import JsonFormatter
from app.main import create_app
from tests.telephony.support import event, post_signed

TOKEN = "metrics-scrape-token-0123456789"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    application = create_app(settings.model_copy(update={"metrics_token": SecretStr(TOKEN)}))
    async with LifespanManager(application) as manager:
        transport = httpx.ASGITransport(app=manager.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield http


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in exposition text (0 when absent)."""
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        series, _, value = line.rpartition(" ")
        got_name, _, rest = series.partition("{")
        got_labels = ",".join(sorted(rest.rstrip("}").split(","))) if rest else ""
        if got_name == name and got_labels == wanted:
            return float(value)
    return 0.0


async def scrape(client: httpx.AsyncClient) -> str:
    response = await client.get("/metrics", headers=SCRAPE)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return response.text


async def test_a_scrape_needs_the_token_and_is_not_in_the_api_document(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/metrics")).status_code == 401
    wrong = await client.get("/metrics", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json()["error"]["code"] == "not_authenticated"
    text = await scrape(client)
    # Described, and zero with nothing waiting.
    for name in (
        "firstcontact_pipeline_backlog",
        "firstcontact_pipeline_oldest_unprocessed_age_seconds",
        "firstcontact_outbox_backlog",
        "firstcontact_outbox_oldest_age_seconds",
        "firstcontact_ring_to_publish_seconds",
    ):
        assert f"# TYPE {name} " in text, name
    assert sample(text, "firstcontact_pipeline_backlog") == 0.0
    assert sample(text, "firstcontact_outbox_backlog") == 0.0


async def test_metrics_are_off_unless_configured(
    app: FastAPI, client_plain: httpx.AsyncClient
) -> None:
    response = await client_plain.get("/metrics")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "metrics_not_configured"


@pytest.fixture
async def client_plain(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app.state.asgi)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
        yield http


async def test_an_allow_listed_address_scrapes_without_the_token(settings: Settings) -> None:
    configured = settings.model_copy(update={"metrics_allow_ips": "10.9.0.0/16, ::1"})
    application = create_app(configured)
    async with LifespanManager(application) as manager:
        for client_ip, status in (("10.9.3.4", 200), ("10.8.0.1", 403)):
            transport = httpx.ASGITransport(app=manager.app, client=(client_ip, 5000))
            async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
                assert (await http.get("/metrics")).status_code == status, client_ip


@pytest.fixture
def lines() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    # DEBUG: an accepted event's line is at DEBUG since issue 19 (a line per event at INFO
    # cost more than the floor's whole request); the ids are on every line at every level.
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_a_webhook_is_counted_and_its_log_line_names_request_and_call(
    client: httpx.AsyncClient, lines: io.StringIO, backend: str
) -> None:
    before = await scrape(client)
    offered = event("m-1", "offered", caller={"number": "07700 900123", "presentation": "allowed"})
    first = await post_signed(client, offered)
    assert first.status_code == 202, first.text
    ours = first.headers["x-request-id"]
    assert re.fullmatch(r"[0-9a-f]{32}", ours)
    ringing = await post_signed(client, event("m-1", "ringing", handler_id="H1"))
    assert ringing.status_code == 202
    replay = await post_signed(client, offered)
    assert replay.status_code == 200
    unsigned = await client.post("/api/v1/telephony/events", content=b"{}")
    assert unsigned.status_code == 401

    # The platform's own id is kept (a UUID, digits and all) and returned.
    given = "0f8fad5b-d9cb-469f-a165-70867728950e"
    tagged = await post_signed(client, event("m-2", "offered"), headers={"X-Request-ID": given})
    assert tagged.headers["x-request-id"] == given
    call_id = tagged.json()["call_id"]
    accepted = [
        json.loads(line) for line in lines.getvalue().splitlines() if '"event accepted"' in line
    ]
    mine = [line for line in accepted if line.get("request_id") == given]
    assert len(mine) == 1, accepted
    assert mine[0]["call_id"] == call_id
    # uvicorn's access line is written from inside the request too (same context).

    after = await scrape(client)

    def grew(name: str, **labels: str) -> float:
        return sample(after, name, **labels) - sample(before, name, **labels)

    assert grew("firstcontact_events_total", source="canonical", outcome="accepted") == 3
    assert grew("firstcontact_events_total", source="canonical", outcome="replay") == 1
    assert grew("firstcontact_events_total", source="canonical", outcome="rejected") == 1
    assert grew("firstcontact_ring_to_publish_seconds_count") == 1
    # A transaction each, the replay too; on PostgreSQL m-1's offered, its ringing and m-2's
    # offered (no number: an alert, its id taken ahead) went the express way instead
    # (app.calls.express), and the replay (its call exists) tried it first.
    postgres = backend == "production"
    assert grew("firstcontact_group_commit_size_count") == (1 if postgres else 4)
    assert grew("firstcontact_express_events_total") == (3 if postgres else 0)
    assert grew("firstcontact_express_fallbacks_total") == (1 if postgres else 0)
    assert grew("firstcontact_pipeline_processed_total") == 3
    assert grew("firstcontact_http_responses_total", code="202") == 3
    assert grew("firstcontact_http_responses_total", code="401") >= 1


@pytest.mark.parametrize(
    ("given", "kept"),
    [
        ("0f8fad5b-d9cb-469f-a165-70867728950e", True),  # a UUID: digit runs and all
        ("4a5f0c1e9b7d4e2f8a6c3b1d0e9f8a7c", True),  # nginx $request_id
        ("lb-7f3a.req:42", True),
        ("07700900123", False),  # a phone number is not an id
        ("call-from-07700900123", False),
        ("12345678901234567890", False),  # hex without a letter: digits only
        ("has space", False),
        ("x" * 129, False),
        ("", False),
    ],
)
def test_an_incoming_request_id_is_kept_only_when_sane(given: str, kept: bool) -> None:
    assert (sane_request_id(given) == given) is kept
