"""`/metrics` of a running service while a backlog forms and drains (issue 18, acceptance 3).

Events are stored unprocessed with a lease, as a worker killed between storing and processing
leaves them: the backlog gauges rise; once the lease runs out the service's sweeper takes them
and the backlog drains to 0, while the processed count (summed over the workers' files, with
two workers on PostgreSQL + Redis) grows by as many. Every figure is read through scrapes.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx

from app.calls import service as calls
from app.config import Settings
from app.db import in_transaction
from app.telephony import canonical
from tests.metrics.test_metrics import sample
from tests.support.servers import ServiceProcess, eventually
from tests.telephony.support import event

TOKEN = "backlog-scrape-token-0123456789"
WAITING = 5
LEASE_SECONDS = 2.0


async def _scrape(service: ServiceProcess) -> str:
    async with httpx.AsyncClient(base_url=service.url, timeout=5) as http:
        response = await http.get("/metrics", headers={"Authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 200, response.text
    return response.text


async def test_the_backlog_rises_and_drains_on_the_scrapes(
    settings: Settings, live_service: Callable[..., ServiceProcess]
) -> None:
    workers = 2 if settings.redis_url else 1  # SQLite: one process
    service = live_service(workers=workers, METRICS_TOKEN=TOKEN)
    before = await _scrape(service)
    assert sample(before, "firstcontact_pipeline_backlog") == 0

    async def store_unprocessed(session: object) -> None:
        for n in range(WAITING):
            body = event(f"backlog-{n}", "offered")
            await calls.ingest(
                session,  # type: ignore[arg-type]
                source=canonical.SOURCE,
                event=canonical.parse(json.dumps(body).encode()),
                raw=json.dumps(body).encode(),
                region="GB",
                lease_seconds=LEASE_SECONDS,
            )

    await in_transaction(settings, store_unprocessed)
    risen = await _scrape(service)
    assert sample(risen, "firstcontact_pipeline_backlog") == WAITING
    assert sample(risen, "firstcontact_pipeline_oldest_unprocessed_age_seconds") >= 0

    drained = ""

    async def empty() -> bool:
        nonlocal drained
        drained = await _scrape(service)
        processed = sample(drained, "firstcontact_pipeline_processed_total") - sample(
            before, "firstcontact_pipeline_processed_total"
        )
        return sample(drained, "firstcontact_pipeline_backlog") == 0 and processed == WAITING

    await eventually(empty, within=20, what="the backlog drained and counted", interval=0.3)
    assert sample(drained, "firstcontact_pipeline_oldest_unprocessed_age_seconds") == 0
