"""The consultation audit: one record per person and household shown to someone, and the
handler's mid-call household lookup, which shows (and so logs) what it finds."""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit import service as audit
from app.db import utcnow
from app.history import alerts as alert_store
from app.history.context import build_context, shown_records
from app.resources import Resources
from app.rules.facts import CallerFacts


def log_consultation(
    session: AsyncSession,
    context: dict[str, Any],
    *,
    actor: str,
    call_id: int | None,
    justification: str | None = None,
) -> None:
    """One audit record per person and household shown, naming the records shown."""
    audit.add_rows(
        session, consultations(context, actor=actor, call_id=call_id, justification=justification)
    )


def consultations(
    context: dict[str, Any],
    *,
    actor: str,
    call_id: int | None,
    justification: str | None = None,
) -> list[dict[str, Any]]:
    """The audit records (`audit.row`) of showing `context`: one per person and household
    shown, naming the records shown; the number's own history when it names nobody known."""
    shown = shown_records(context)
    subjects = [("person", p) for p in context["persons"]] + [
        ("household", h) for h in context["households"]
    ]
    call = str(call_id) if call_id is not None else None
    records = [
        audit.row(
            actor=actor,
            action="consultation",
            subject_type=subject_type,
            subject_id=item["id"],
            call_id=call,
            justification=justification,
            records={
                "contacts": [c["id"] for c in item["contacts"]],
                "markers": [m["id"] for m in item["markers"]],
            },
        )
        for subject_type, item in subjects
    ]
    if shown["contacts"] and not subjects:
        # Contacts from the number that name nobody known: still a consultation.
        records.append(
            audit.row(
                actor=actor,
                action="consultation",
                subject_type="number_history",
                call_id=call,
                justification=justification,
                records={"contacts": shown["contacts"]},
            )
        )
    return records


async def log_calls_shown(
    session: AsyncSession, call_ids: list[int], *, actor: str, justification: str
) -> None:
    """A list, the board or a call's THRIVE+ view showed these calls (the caller's number,
    alerts naming people): one audit row per person and household each call's stored context
    identifies, else one row for the call itself."""
    from app.history.stored_context import stored_contexts

    contexts = await stored_contexts(session, call_ids)
    rows: list[dict[str, Any]] = []
    for call_id in call_ids:
        stored = contexts.get(call_id)
        rows.extend(subjects_shown(stored[0] if stored else None, actor, call_id, justification))
    audit.add_rows(session, rows)


def subjects_shown(
    context: dict[str, Any] | None, actor: str, call_id: int, justification: str
) -> list[dict[str, Any]]:
    """The audit rows of showing a call whose caller context is `context`: a row per person
    and household it identifies (no content, only which), else one for the call."""
    subjects = [("person", p["id"]) for p in (context or {}).get("persons", [])] + [
        ("household", h["id"]) for h in (context or {}).get("households", [])
    ]
    call = str(call_id)
    return [
        audit.row(
            actor=actor,
            action="consultation",
            subject_type=subject_type,
            subject_id=subject_id,
            call_id=call,
            justification=justification,
        )
        for subject_type, subject_id in subjects or [("call", call)]
    ]


async def lookup_households_for_handler(
    session: AsyncSession,
    resources: Resources,
    *,
    call_id: int,
    actor: str,
    justification: str,
    household_id: str | None,
    uprn: str | None,
    address: str | None,
) -> list[dict[str, Any]]:
    """The households a handler typed during a call or its wrap-up (id, UPRN or address), as
    screen contexts; every one shown is logged as consulted for that call, with
    `justification` saying which of the two it was."""
    from app.history.lookup import household_summary
    from app.history.store_links import find_households

    settings = resources.settings
    now = utcnow()
    ids = await find_households(session, household_id=household_id, uprn=uprn, address=address)
    contexts = []
    for hid in ids:
        summary, _ = await household_summary(
            session,
            resources.cache,
            hid,
            now=now,
            horizon_days=alert_store.horizon_days(resources),
            ttl_seconds=settings.history_cache_ttl_seconds,
        )
        facts = CallerFacts(
            now=now,
            presentation="allowed",
            persons=summary.persons,
            households=summary.households,
            horizon_days=alert_store.horizon_days(resources),
        )
        context = build_context(facts)
        log_consultation(
            session, context, actor=actor, call_id=call_id, justification=justification
        )
        contexts.append(context)
    return contexts
