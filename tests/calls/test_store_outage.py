"""Fault drill: the service's PostgreSQL stops and comes back (a private cluster on a free
port, never the shared one). While it is down the webhook answers 503 with Retry-After, not
500, and nothing already accepted is lost; once it is back the platform's retry is accepted."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta

import httpx

from app.telephony.signature import signed_headers
from tests.conftest import TELEPHONY_SECRET, process_env
from tests.support.servers import (
    ROOT,
    ServiceProcess,
    ThrowawayPostgres,
    throwaway_postgres,
    wait_until,
)
from tests.telephony.support import EVENTS_URL, lifecycle


def _post(service: ServiceProcess, body: dict[str, object]) -> httpx.Response:
    raw = json.dumps(body).encode()
    headers = signed_headers(TELEPHONY_SECRET.encode(), raw, int(time.time()))
    return httpx.post(service.url + EVENTS_URL, content=raw, headers=headers, timeout=30)


def test_webhook_answers_503_while_the_store_is_down_and_loses_nothing() -> None:
    with throwaway_postgres() as private_postgres:
        _drill(private_postgres)


def _drill(private_postgres: ThrowawayPostgres) -> None:
    env = process_env(DATABASE_URL=private_postgres.url)
    subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    service = ServiceProcess(env=env).start()
    try:
        offered, ringing, *_ = lifecycle("outage-1", datetime.now(UTC) - timedelta(seconds=30))
        accepted = _post(service, offered)
        assert accepted.status_code == 202, accepted.text

        private_postgres.stop()
        refused = _post(service, ringing)
        assert refused.status_code == 503, refused.text
        assert refused.json()["error"]["code"] == "unavailable"
        assert int(refused.headers["Retry-After"]) > 0
        assert "Traceback" not in service.tail(200)  # a known outage, not a crash
        assert httpx.get(service.url + "/healthz", timeout=5).status_code == 200

        private_postgres.start()
        # The platform retries the same event until it is accepted (the pool's dead
        # connections are dropped on first use).
        retried: list[int] = []

        def accepted_again() -> bool:
            retried.append(_post(service, ringing).status_code)
            return retried[-1] == 202

        wait_until(accepted_again, 30, interval=0.2, what="the retried event accepted")
        assert set(retried) <= {202, 503}, retried
        # The event accepted before the outage is still there, and the call moved on.
        again = _post(service, offered)
        assert again.status_code == 200 and again.headers["Idempotent-Replayed"] == "true"
        assert again.json()["call_id"] == accepted.json()["call_id"]
        assert _post(service, ringing).json()["state"] == "ringing"
    finally:
        service.stop()
