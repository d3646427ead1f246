"""The canonical webhook is served by a plain route matched before every other (issue 19:
FastAPI's nested routers cost ~0.2 ms a match), with the same contract: the tests of
test_canonical_webhook.py go through it; here, that it is the one taken, that the other
methods still get the API's 405, and that its accepted requests leave no access line."""

from __future__ import annotations

import logging

import httpx
from fastapi import FastAPI
from starlette.routing import Route

from app.api.telephony import canonical_event_plain
from app.logs import QuietWebhookAccess
from tests.telephony.support import EVENTS_URL, event, post_signed


def test_the_webhook_is_the_first_route_matched(app: FastAPI) -> None:
    first = app.router.routes[0]
    assert isinstance(first, Route)
    assert (first.path, first.endpoint, first.methods) == (
        EVENTS_URL, canonical_event_plain, {"POST"}
    )  # fmt: skip
    # The OpenAPI document still describes it (from the FastAPI route behind it).
    assert "post" in app.openapi()["paths"][EVENTS_URL]


async def test_accepted_through_the_plain_route_and_other_methods_refused(
    client: httpx.AsyncClient,
) -> None:
    response = await post_signed(client, event("hot-1", "offered", called="999"))
    assert response.status_code == 202, response.text
    assert response.json()["state"] == "offered"
    unsigned = await client.post(EVENTS_URL, json=event("hot-2", "offered"))
    assert unsigned.status_code == 401
    assert unsigned.json()["error"]["code"] == "bad_signature"
    wrong = await client.get(EVENTS_URL)
    assert wrong.status_code == 405
    assert "POST" in wrong.headers["allow"]


def _access(method: str, path: str, status: int) -> logging.LogRecord:
    return logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", method, path, "1.1", status), None,
    )  # fmt: skip


def test_accepted_webhooks_leave_no_access_line_refusals_do() -> None:
    quiet = QuietWebhookAccess()
    assert not quiet.filter(_access("POST", EVENTS_URL, 202))
    assert not quiet.filter(_access("POST", "/api/v1/telephony/twilio", 200))
    assert quiet.filter(_access("POST", EVENTS_URL, 401))
    assert quiet.filter(_access("POST", EVENTS_URL, 503))
    assert quiet.filter(_access("GET", "/api/v1/calls", 200))
