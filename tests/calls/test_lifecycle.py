"""Acceptance 2 (pure): any arrival order, with duplicates, ends in the in-order final state."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from app.calls import lifecycle
from app.calls.service import fact_of
from app.telephony.events import CallEvent
from tests.calls.strategies import arrivals, scenarios


def facts(bodies: list[dict[str, Any]]) -> list[lifecycle.Fact]:
    return [fact_of(CallEvent.model_validate(b), "GB") for b in bodies]


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_shuffled_and_duplicated_events_end_in_the_in_order_state(data: st.DataObject) -> None:
    calls = data.draw(scenarios())
    in_order = {call[0]["call_id"]: lifecycle.fold(facts(call)) for call in calls}
    states: dict[str, lifecycle.CallState] = {}
    for body in data.draw(arrivals(calls)):
        cid = body["call_id"]
        states[cid] = lifecycle.apply(states.get(cid, lifecycle.CallState()), facts([body])[0])
    assert states == in_order


def test_in_order_fold_gives_the_expected_call() -> None:
    t = datetime(2026, 11, 25, 20, 0, tzinfo=UTC)

    def ev(i: int, type_: str, seconds: int, **f: Any) -> dict[str, Any]:
        at = (t + timedelta(seconds=seconds)).isoformat()
        return {"event_id": f"e{i}", "call_id": "c", "type": type_, "occurred_at": at, **f}

    bodies = [
        ev(1, "offered", 0, caller={"number": "07700 900123"}, called="999", queue="emergency"),
        ev(2, "ringing", 2, handler_id="H1"),
        ev(3, "answered", 4, handler_id="H1"),
        ev(4, "transferred", 30, handler_id="H2", queue="dv-unit"),
        ev(5, "ended", 90, cause="normal_clearing"),
    ]
    state = lifecycle.fold(facts(bodies))
    assert state.state == "ended"
    assert (state.caller_e164, state.presentation, state.called) == (
        "+447700900123",
        "allowed",
        "999",
    )
    assert (state.handler_id, state.handlers, state.queue) == ("H2", ("H1", "H2"), "dv-unit")
    assert state.offered_at == t and state.answered_at == t + timedelta(seconds=4)
    assert state.ended_at == t + timedelta(seconds=90) and state.end_cause == "normal_clearing"
    # ended arriving first is not reopened by a late answered; times still recorded
    late = lifecycle.fold(facts([bodies[4], bodies[0], bodies[2]]))
    assert late.state == "ended" and late.answered_at == t + timedelta(seconds=4)
    assert not late.active
    # a later duplicate with another cause does not change the first end
    dup = dict(
        bodies[4], event_id="e6", occurred_at=(t + timedelta(seconds=95)).isoformat(), cause="x"
    )
    assert lifecycle.fold(facts([*bodies, dup])).end_cause == "normal_clearing"
