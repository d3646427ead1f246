"""Helpers for QA tests: calls offered through the signed batch webhook (as a platform sends
them), staff, and review bodies."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from fastapi import FastAPI

from tests.telephony.support import EVENTS_URL, event, post_signed

BATCH_URL = EVENTS_URL + "/batch"
BATCH_SIZE = 500
_numbers = itertools.count(1)


@dataclass
class CallSpec:
    """One call's lifecycle: offered at `at` (UTC), answered by `handler` unless
    `answered=False`, ended unless `ended=False`, talking `talk` seconds."""

    external: str
    handler: str
    at: datetime
    queue: str = "emergency"
    answered: bool = True
    ended: bool = True
    talk: float = 60.0
    number: str | None = None


def events_of(spec: CallSpec) -> list[dict[str, Any]]:
    number = spec.number or f"07700 9{next(_numbers) % 100000:05d}"
    caller = {"number": number, "presentation": "allowed"}
    at = spec.at
    found = [
        event(spec.external, "offered", at, caller=caller, called="999", queue=spec.queue),
        event(spec.external, "ringing", at + timedelta(seconds=2), handler_id=spec.handler),
    ]
    if spec.answered:
        found.append(
            event(spec.external, "answered", at + timedelta(seconds=5), handler_id=spec.handler)
        )
    if spec.ended:
        end = at + timedelta(seconds=5 + spec.talk if spec.answered else 20)
        found.append(event(spec.external, "ended", end, cause="normal_clearing"))
    return found


async def offer(app: FastAPI, client: httpx.AsyncClient, specs: list[CallSpec]) -> dict[str, int]:
    """Post every call's events through the signed batch webhook; returns external id ->
    the service's call id once every event has been processed."""
    events = [e for spec in specs for e in events_of(spec)]
    ids: dict[str, int] = {}
    for start in range(0, len(events), BATCH_SIZE):
        chunk = events[start : start + BATCH_SIZE]
        response = await post_signed(client, json.dumps(chunk).encode(), url=BATCH_URL)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["accepted"] == len(chunk), body
        for sent, result in zip(chunk, body["results"], strict=True):
            ids[sent["call_id"]] = int(result["call_id"])
    return ids


def at_uk(day: str, hour: int = 12) -> datetime:
    """Noon (or `hour`) UK time on a summer 2022 day, in UTC (BST is UTC+1)."""
    local = datetime.fromisoformat(f"{day}T{hour:02d}:00:00+01:00")
    return local.astimezone(UTC)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def answers(**overrides: str) -> dict[str, str]:
    body = {
        "vulnerability": "good",
        "prevention": "good",
        "preservation": "good",
        "repeat_victim_check": "yes",
    }
    body.update(overrides)
    return body
