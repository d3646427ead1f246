"""The call's narrative: kept as the handler types it, read for cues, each new cue pushed.

Access and publishing as for the rest of THRIVE+ (app.thrive.service)."""

from __future__ import annotations

import logging

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.auth.service import Principal
from app.db import upsert_for, utcnow
from app.errors import PayloadTooLarge
from app.resources import Resources
from app.thrive import catalogue
from app.thrive.models import CallCue, CallThrive
from app.thrive.reads import call_alerts, call_cues, rules_of
from app.thrive.schemas import CueOut, NarrativeIn, NarrativeResult
from app.thrive.service import (
    call_for_writer,
    locked_state,
    publish_prompts,
    publish_to_call,
    view_of,
)

log = logging.getLogger(__name__)


class NarrativeTooLarge(PayloadTooLarge):
    status, code = 413, "narrative_too_large"


async def add_narrative(
    session: AsyncSession,
    resources: Resources,
    call_id: int,
    body: NarrativeIn,
    principal: Principal,
) -> NarrativeResult:
    """Keep the narrative, find its cues, and push each cue the call has not had yet.

    The cue ids pushed are rows of `call_cue` (primary key call + cue): inserting them is
    what decides "new", so two workers reading the same narrative push each cue once.
    """
    call = await call_for_writer(session, call_id, principal)
    limit = resources.settings.narrative_max_chars
    if len(body.text) > limit:
        raise NarrativeTooLarge(f"a narrative is at most {limit} characters")
    state = await locked_state(session, call.id)  # locked: concurrent first posts serialise here
    started = not state.narrative
    if body.mode == "append":
        # One statement: concurrent appends queue on the row and none is lost.
        text = await session.scalar(
            update(CallThrive)
            .where(CallThrive.call_id == call.id)
            .values(
                narrative=func.coalesce(CallThrive.narrative, "") + body.text,
                updated_at=utcnow(),
            )
            .returning(CallThrive.narrative)
        )
        text = text or ""
    else:
        text = body.text
        await session.execute(
            update(CallThrive)
            .where(CallThrive.call_id == call.id)
            .values(narrative=text, updated_at=utcnow())
        )
    if len(text) > limit:
        raise NarrativeTooLarge(
            f"a narrative is at most {limit} characters; this append exceeds it"
        )

    if started and text:
        # s.62 collection: once per call when the incident narrative starts, not per keystroke
        # post (later posts alter the same record, already logged as this call's narrative).
        audit.record(
            session,
            actor=principal.actor,
            action="collection",
            subject_type="narrative",
            subject_id=str(call.id),
            call_id=str(call.id),
            records={"call": call.id},
        )

    found = catalogue.cues(rules_of(resources), text)
    fresh: list[CueOut] = []
    if found:
        now = utcnow()
        inserted = await session.scalars(
            upsert_for(session, CallCue)
            .values(
                [
                    {
                        "call_id": call.id,
                        "cue_id": c.cue_id,
                        "strand": c.strand,
                        "matched": c.matched,
                        "detected_at": now,
                    }
                    for c in found
                ]
            )
            .on_conflict_do_nothing(index_elements=[CallCue.call_id, CallCue.cue_id])
            .returning(CallCue.cue_id)
        )
        new_ids = set(inserted.all())
        fresh = [c for c in found if c.cue_id in new_ids]
    for cue in fresh:
        publish_to_call(session, resources, call, "cue.detected", cue.model_dump())
    if any(c.prompts_added or c.qualifiers_proposed or c.grade_floor for c in fresh):
        # The cues change the call's prompts, suggested grade or proposed qualifiers: push
        # them as they now are (after the cues, on the same ordered channels).
        view = view_of(
            resources,
            call,
            state,
            await call_alerts(session, call.id),
            await call_cues(session, call.id),
        )
        publish_prompts(session, resources, call, view)
    total = await session.scalar(
        select(func.count()).select_from(CallCue).where(CallCue.call_id == call.id)
    )
    # Counts only: the narrative and the matched words are personal data, and so is a cue's
    # id ("pregnancy.pregnant" says what the caller said: a health fact about a person).
    log.info(
        "narrative read",
        extra={"call": call.id, "new_cues": len(fresh), "chars": len(text)},
    )
    return NarrativeResult(call_id=call.id, new_cues=fresh, cues_total=int(total or 0))
