"""Hypothesis strategies: realistic call lifecycles as canonical event bodies, in time order."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import strategies as st

BASE = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
NUMBERS = ["07700 900123", "+44 20 7946 0018", "anonymous", "", "999", "+266696687", "garbage"]
HANDLERS = ["H1001", "H1002", "H1003", "H1004"]


@st.composite
def call_events(draw: st.DrawFn, call_id: str) -> list[dict[str, Any]]:
    """One call's events in the order they happened (times non-decreasing, seq increasing)."""
    t = BASE + timedelta(seconds=draw(st.integers(0, 86_400)))
    seq = 0
    events: list[dict[str, Any]] = []

    def add(type_: str, **fields: Any) -> None:
        nonlocal t, seq
        # Zero steps make equal timestamps: seq (and then rank) must break the tie.
        t += timedelta(milliseconds=draw(st.sampled_from([0, 1, 500, 2000, 30_000])))
        seq += 1
        body = {
            "event_id": f"{call_id}-{seq}",
            "call_id": call_id,
            "type": type_,
            "occurred_at": t.isoformat().replace("+00:00", "Z"),
            "seq": seq if draw(st.booleans()) else None,
            **fields,
        }
        if body["seq"] is None:
            del body["seq"]
        events.append(body)

    presentation = draw(st.sampled_from(["allowed", "allowed", "withheld", "unavailable"]))
    add(
        "offered",
        caller={"number": draw(st.sampled_from(NUMBERS)), "presentation": presentation},
        called=draw(st.sampled_from(["999", "101", "01632 960000"])),
        queue="q-" + draw(st.sampled_from(["emergency", "non-emergency"])),
    )
    answered = False
    for _ in range(draw(st.integers(0, 2))):  # hunting: rings at one or more handlers
        add("ringing", handler_id=draw(st.sampled_from(HANDLERS)))
    if draw(st.booleans()) or draw(st.booleans()):
        add("answered", handler_id=draw(st.sampled_from(HANDLERS)))
        answered = True
        for _ in range(draw(st.integers(0, 3))):
            add(
                "transferred",
                handler_id=draw(st.sampled_from(HANDLERS)),
                queue="q-" + draw(st.sampled_from(["dv-unit", "crime-desk", "emergency"])),
            )
    if draw(st.integers(0, 4)) > 0:  # most calls end; some are still going
        add("ended", cause="normal_clearing" if answered else "abandoned")
    return events


@st.composite
def scenarios(draw: st.DrawFn, prefix: str = "c", max_calls: int = 8) -> list[list[dict[str, Any]]]:
    n = draw(st.integers(1, max_calls))
    return [draw(call_events(f"{prefix}{i}")) for i in range(n)]


@st.composite
def arrivals(draw: st.DrawFn, calls: list[list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Every event at least once, some several times, all interleaved in any order."""
    everything = [e for call in calls for e in call]
    dupes = draw(st.lists(st.sampled_from(everything), max_size=len(everything)))
    return draw(st.permutations(everything + dupes))
