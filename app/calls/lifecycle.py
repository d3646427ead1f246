"""The call lifecycle as a pure state machine: offered -> ringing -> answered ->
(transferred)* -> ended.

Platforms retry, duplicate and reorder. So `apply(state, event)` is a *merge*: commutative,
associative and idempotent. Whatever order the events of a call arrive in, and however often,
the result equals applying them once in time order:

- the state only moves forward (an `ended` that arrives before `answered` is not reopened by it);
- each time is the earliest event of its kind (`offered_at` the earliest event of any kind);
- each field taken from one event remembers that event's order key (time, seq, rank, event id)
  in `marks`: first-wins fields (caller, called, end cause) keep the smallest key, last-wins
  fields (queue, current handler) the largest. Timestamps decide; `seq` breaks ties within a
  timestamp; then the lifecycle rank; then the event id, so the result is total and unique.

No I/O here: the repository loads and stores `CallState`, this module only computes it.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from app.telephony.events import EventType, Presentation

RANK = {
    EventType.offered: 0,
    EventType.ringing: 1,
    EventType.answered: 2,
    EventType.transferred: 3,
    EventType.ended: 4,
}
STATES = tuple(t.value for t in RANK)

# A JSON-friendly, totally ordered key: [ISO time (fixed width, UTC), seq or -1, rank, event id]
Key = tuple[str, int, int, str]


@dataclass(frozen=True)
class Fact:
    """What one event contributes to its call (already normalised by the adapter/service)."""

    event_id: str
    type: EventType
    occurred_at: datetime
    seq: int | None = None
    has_caller: bool = False  # False: this event says nothing about the caller
    caller_e164: str | None = None
    presentation: Presentation = Presentation.unavailable
    called: str | None = None
    queue: str | None = None
    handler_id: str | None = None
    cause: str | None = None

    @property
    def key(self) -> Key:
        at = self.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        return (at, -1 if self.seq is None else self.seq, RANK[self.type], self.event_id)


@dataclass(frozen=True)
class CallState:
    state: str | None = None  # None: no event yet
    caller_e164: str | None = None
    presentation: str = Presentation.unavailable.value
    called: str | None = None
    queue: str | None = None
    handler_id: str | None = None
    handlers: tuple[str, ...] = ()
    offered_at: datetime | None = None
    ringing_at: datetime | None = None
    answered_at: datetime | None = None
    ended_at: datetime | None = None
    end_cause: str | None = None
    # Merge keys (JSON-able): "caller", "called", "queue", "end" -> key; "handlers" -> a sorted
    # list of [*key, handler_id] (one per event that named a handler).
    marks: dict[str, Any] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        return self.state is not None and self.state != EventType.ended.value


def _key(value: Any) -> Key | None:
    if value is None:
        return None
    at, seq, rank, event_id = value
    return (str(at), int(seq), int(rank), str(event_id))


def _earliest(current: datetime | None, candidate: datetime) -> datetime:
    return candidate if current is None or candidate < current else current


def apply(state: CallState, fact: Fact) -> CallState:
    """Merge one event into the call. Pure; any order and any repetition give the same result."""
    key = fact.key
    marks = dict(state.marks)
    changes: dict[str, Any] = {}  # dataclasses.replace(**changes): a field each, typed per field

    rank = RANK[fact.type]
    if state.state is None or rank > STATES.index(state.state):
        changes["state"] = fact.type.value

    changes["offered_at"] = _earliest(state.offered_at, fact.occurred_at)
    if fact.type is EventType.ringing:
        changes["ringing_at"] = _earliest(state.ringing_at, fact.occurred_at)
    elif fact.type is EventType.answered:
        changes["answered_at"] = _earliest(state.answered_at, fact.occurred_at)
    elif fact.type is EventType.ended:
        changes["ended_at"] = _earliest(state.ended_at, fact.occurred_at)
        end = _key(marks.get("end"))
        if end is None or key < end:
            marks["end"] = list(key)
            changes["end_cause"] = fact.cause

    if fact.has_caller:
        mark = _key(marks.get("caller"))
        if mark is None or key < mark:
            marks["caller"] = list(key)
            changes["caller_e164"] = fact.caller_e164
            changes["presentation"] = fact.presentation.value
    if fact.called is not None:
        mark = _key(marks.get("called"))
        if mark is None or key < mark:
            marks["called"] = list(key)
            changes["called"] = fact.called
    if fact.queue is not None:
        mark = _key(marks.get("queue"))
        if mark is None or key > mark:
            marks["queue"] = list(key)
            changes["queue"] = fact.queue

    if fact.handler_id is not None:
        entries = [tuple(e) for e in marks.get("handlers", [])]
        entry = (*key, fact.handler_id)
        if entry not in entries:
            entries.append(entry)
            entries.sort()
        marks["handlers"] = [list(e) for e in entries]
        changes["handler_id"] = str(entries[-1][4])
        seen: list[str] = []
        for e in entries:
            if e[4] not in seen:
                seen.append(str(e[4]))
        changes["handlers"] = tuple(seen)

    changes["marks"] = marks
    return replace(state, **changes)


def fold(facts: list[Fact], state: CallState | None = None) -> CallState:
    """Apply `facts` in the given order (the reference: sorted by `Fact.key`)."""
    current = state or CallState()
    for fact in facts:
        current = apply(current, fact)
    return current
