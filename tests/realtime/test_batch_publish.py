"""A batch's messages leave after its commit in one go (one broker call), each channel in
order, with the context and alerts a handler's screen needs, as single events give them; the
history step reuses what the batch's `offered` built for its `ringing` and `ended`. On both
backends (in-process broker; Redis on the production run)."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from app.calls.models import Call
from app.config import Settings
from app.history.models import CallContext, Contact
from app.realtime.broker import Broker, Subscription
from tests.calls.test_pipeline import running
from tests.telephony.support import lifecycle, post_signed

BATCH_URL = "/api/v1/telephony/events/batch"


async def _drain(sub: Subscription, n: int) -> list[dict[str, Any]]:
    return [json.loads((await asyncio.wait_for(sub.queue.get(), 10)).text) for _ in range(n)]


async def test_batch_publishes_every_message_in_order_with_context_and_write_back(
    settings: Settings,
) -> None:
    start = datetime.now(UTC) - timedelta(minutes=5)
    calls = [lifecycle(f"bp-{n}", start + timedelta(seconds=n), "anonymous", "H77") for n in (0, 1)]
    # Phase order, as a platform batching its traffic sends it: both offers, both rings, ...
    batch = [call[phase] for phase in range(4) for call in calls]
    async with running(settings) as (app, http):
        broker: Broker = app.state.resources.broker
        handler = await broker.subscribe("handler:H77", maxsize=100)
        supervisors = await broker.subscribe("supervisors", maxsize=100)
        published: list[int] = []
        original = broker.publish_messages

        async def counting(messages: Any) -> list[int]:
            published.append(sum(len(m.channels) for m in messages))
            return await original(messages)

        broker.publish_messages = counting  # type: ignore[method-assign]
        response = await post_signed(http, json.dumps(batch).encode(), url=BATCH_URL)
        assert response.status_code == 200, response.text
        to_handler = await _drain(handler, 6)
        to_supervisors = await _drain(supervisors, 8)
        assert handler.queue.empty() and supervisors.queue.empty()
        async with app.state.resources.sessions() as session:
            rows = await session.execute(
                select(Call.external_id, Call.id).where(Call.external_id.like("bp-%"))
            )
            ids = {external: call_id for external, call_id in rows}
            contacts = (
                await session.scalars(select(Contact).where(Contact.call_id.in_(ids.values())))
            ).all()
            contexts = (
                await session.scalars(
                    select(CallContext).where(CallContext.call_id.in_(ids.values()))
                )
            ).all()
    assert published == [14]  # 8 supervisor + 6 handler messages, one broker call
    for n in (0, 1):
        call_id = ids[f"bp-{n}"]
        mine = [m for m in to_handler if m["call_id"] == call_id]
        assert [m["type"] for m in mine] == ["call.ringing", "call.answered", "call.ended"]
        # The ringing reaches the desk with the context and the alert built on `offered`.
        assert [a["kind"] for a in mine[0]["data"]["alerts"]] == ["withheld_number"]
        assert mine[0]["data"]["context"] is not None
        seen = [m for m in to_supervisors if m["call_id"] == call_id]
        assert [m["type"] for m in seen] == [
            "call.offered", "call.ringing", "call.answered", "call.ended"
        ]  # fmt: skip
        assert [a["kind"] for a in seen[0]["data"]["alerts"]] == ["withheld_number"]
    # Exactly one context per call (the ringing reused it) and one write-back contact each.
    assert sorted(c.call_id for c in contexts) == sorted(ids.values())
    assert sorted(c.id for c in contacts) == sorted(f"call-{i}" for i in ids.values())
