"""Near repeat in the rule engine (issue 13 point 9, acceptance 7), table-driven on the
shipped default (burglary or vehicle crime, 400 m, 28 days): the edges of the radius and the
window, the incident types, the wording, and prevention advice first."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from app.rules import guidance
from app.rules.engine import evaluate
from app.rules.facts import CallerFacts, NearbyIncident
from app.rules.loader import load_paths
from app.rules.problems import PackLoadError
from app.rules.ruleset import NearNeed
from tests.rules.support import NOW, SHIPPED, ago, with_override, write


def near(cid: str, metres: float, days: float, incident: str = "burglary") -> NearbyIncident:
    return NearbyIncident(
        id=cid, occurred_at=ago(days), incident_type=incident, distance_m=metres,
        near_household_id="H1",
    )  # fmt: skip


def facts(*nearby: NearbyIncident) -> CallerFacts:
    return CallerFacts(now=NOW, presentation="allowed", number="+441134960101",
                       nearby=list(nearby))  # fmt: skip


CASES = [
    ("burglary at 400 m exactly", [near("C1", 400.0, 3)], ["C1"]),
    ("burglary at 400.1 m", [near("C1", 400.1, 3)], []),
    ("vehicle crime 10 m away", [near("C1", 10, 1, "vehicle_crime")], ["C1"]),
    ("burglary 28 days ago exactly", [near("C1", 50, 28)], ["C1"]),
    ("burglary 28 days and a second ago", [near("C1", 50, 28 + 1 / 86400)], []),
    ("burglary later than now (clock skew)", [near("C1", 50, -1)], []),
    ("assault nearby is not a near repeat", [near("C1", 50, 1, "assault")], []),
    ("nearest first", [near("C2", 300, 2), near("C1", 20, 20)], ["C1", "C2"]),
]


@pytest.mark.parametrize(("name", "nearby", "evidence"), CASES, ids=[c[0] for c in CASES])
def test_default_near_repeat(name: str, nearby: list[NearbyIncident], evidence: list[str]) -> None:
    alerts = [a for a in evaluate(SHIPPED, facts(*nearby)) if a.kind == "near_repeat"]
    if not evidence:
        assert alerts == []
        return
    (alert,) = alerts
    assert alert.evidence == evidence
    assert alert.severity == "medium" and alert.rule.startswith("near_repeat@")
    assert "prevention_first" in alert.tags


def test_wording_names_type_distance_and_age_without_ids() -> None:
    (alert,) = [
        a
        for a in evaluate(SHIPPED, facts(near("C9", 123.4, 3), near("C8", 50, 0, "vehicle_crime")))
        if a.kind == "near_repeat"
    ]
    assert alert.title == (
        "Near repeat: 2 burglary or vehicle crime within 400 m in the last 28 days"
    )
    assert alert.reasons == [
        "a vehicle crime 50 m away, today",
        "a burglary 123 m away, 3 days ago",
    ]
    assert not any("C9" in r or "C8" in r or "H1" in r for r in [alert.title, *alert.reasons])


def test_the_packs_say_what_the_lookup_must_fetch() -> None:
    assert SHIPPED.near == NearNeed(400, 28, frozenset({"burglary", "vehicle_crime"}))


def test_prevention_advice_first_with_a_near_repeat() -> None:
    plain = guidance.advice_for(SHIPPED, "burglary")
    assert plain[0].kind == "preservation"
    alerts = [a for a in evaluate(SHIPPED, facts(near("C1", 10, 1))) if a.kind == "near_repeat"]
    first = guidance.advice_for(SHIPPED, "burglary", alerts=alerts)
    kinds = [a.kind for a in first]
    assert kinds == sorted(kinds, key=lambda k: k != "prevention") and kinds[0] == "prevention"
    # Pack order kept within each kind.
    assert [a.id for a in first if a.kind == "prevention"] == [
        a.id for a in plain if a.kind == "prevention"
    ]
    assert sorted(a.id for a in first) == sorted(a.id for a in plain)


def test_window_is_measured_from_the_call() -> None:
    incident = NearbyIncident(
        id="C1", occurred_at=NOW - timedelta(days=28), incident_type="burglary", distance_m=1,
        near_household_id="H1",
    )  # fmt: skip
    exactly = CallerFacts(now=NOW, presentation="allowed", nearby=[incident])
    assert "near_repeat" in [a.kind for a in evaluate(SHIPPED, exactly)]


def test_a_force_sets_its_own_radius_and_window_and_unknown_types_are_refused(
    tmp_path: Path,
) -> None:
    pack = """\
        pack: force-near
        version: "1"
        kind: alerts
        rules:
          - id: near_repeat_wide
            alert: near_repeat
            severity: low
            title: "Near repeat within {within_metres} m"
            when: {kind: near_repeat, incident_types: [burglary], within_metres: 800,
                   within_days: 42}
        """
    rules = with_override(tmp_path, "near.yaml", pack)
    assert rules.near == NearNeed(800, 42, frozenset({"burglary", "vehicle_crime"}))
    far = facts(near("C1", 700, 40))
    assert [a.rule for a in evaluate(rules, far) if a.kind == "near_repeat"] == [
        "near_repeat_wide@1"
    ]
    write(tmp_path, "near.yaml", pack.replace("[burglary]", "[burglary, bicycle_theft]"))
    with pytest.raises(PackLoadError) as refused:
        load_paths([tmp_path])
    assert [p.reason for p in refused.value.problems] == ["unknown incident type 'bicycle_theft'"]
