"""The QA form pack: the shipped contract, a force's form from RULES_DIR/qa/, and every
problem refused with its file, line and reason (the service does not start on a bad form)."""

from __future__ import annotations

from pathlib import Path

import pytest
from asgi_lifespan import LifespanManager

from app.config import Settings
from app.main import create_app
from app.qa import forms
from app.qa.forms import SHIPPED_FORM, QaFormError

SHIPPED = SHIPPED_FORM.read_text(encoding="utf-8")


def test_shipped_form_is_the_contract() -> None:
    form = forms.load(None)
    assert form.origin == "shipped"
    graded = ["outstanding", "good", "requires_improvement", "inadequate", "not_applicable"]
    assert [(s.id, list(s.answers), sorted(s.met)) for s in form.standards] == [
        ("vulnerability", graded, ["good", "outstanding"]),
        ("prevention", graded, ["good", "outstanding"]),
        ("preservation", graded, ["good", "outstanding"]),
        ("repeat_victim_check", ["yes", "no", "not_applicable"], ["yes"]),
    ]
    assert all(s.not_applicable_allowed and s.guidance for s in form.standards)
    assert form.practice_standard == "repeat_victim_check"
    assert form.practice_alert_kinds == ("repeat_victim", "household_risk")
    assert form.module_ids == (
        "thrive_plus",
        "hidden_harm_vulnerability",
        "golden_hour_evidence_preservation",
        "crime_prevention_advice",
        "repeat_victims",
        "domestic_abuse_risk",
        "crime_scene_management",
    )


def test_force_form_replaces_the_shipped_one(tmp_path: Path) -> None:
    (tmp_path / "qa").mkdir()
    extra = """\
  - id: grading_correct
    title: Grading correct
    report_label: Grading correct (%)
    guidance: Was the call graded as the policy says?
    answers: [yes, no]
    met: [yes]
"""
    text = SHIPPED.replace('version: "2026.11.1"', 'version: "force-1"').replace(
        "\n# Did the live alerts", extra + "\n# Did the live alerts"
    )
    (tmp_path / "qa" / "form.yaml").write_text(text)
    form = forms.load(tmp_path)
    assert (form.origin, form.version) == ("force", "force-1")
    added = form.standard("grading_correct")
    assert added is not None
    assert added.answers == ("yes", "no")  # not applicable not allowed: not on the scale
    assert not added.not_applicable_allowed
    # A RULES_DIR without a qa/ folder keeps the shipped form.
    assert forms.load(tmp_path / "elsewhere").origin == "shipped"


# (what is wrong, the edit, the line the problem is reported at, words of the reason)
BAD = [
    ("unknown key", ("    not_applicable: true\n", "    not_applicable: true\n    colour: red\n"),
     28, ["unknown key", "colour"]),
    ("met off the scale", ("    met: [yes]\n", "    met: [yes, maybe]\n"), 56, ["maybe", "scale"]),
    ("not_applicable on the scale",
     ("    answers: [yes, no]\n", "    answers: [yes, no, not_applicable]\n"), 55,
     ["not_applicable: true"]),
    ("unknown module", ("training_module: repeat_victims", "training_module: juggling"), 59,
     ["unknown training module", "juggling"]),
    ("practice names no standard", ("  standard: repeat_victim_check\n", "  standard: grading\n"),
     64, ["unknown standard", "grading"]),
    ("duplicate standard", ("  - id: prevention\n", "  - id: vulnerability\n"), 29,
     ["defined twice"]),
    ("unquoted version", ('version: "2026.11.1"', "version: 2026.11"), 14, ["quote the version"]),
    ("duplicate key", ("    met: [yes]\n", "    met: [yes]\n    met: [no]\n"), 57,
     ["duplicate key"]),
]  # fmt: skip


@pytest.mark.parametrize(("what", "edit", "line", "words"), BAD, ids=[b[0] for b in BAD])
def test_bad_form_is_refused_with_file_and_line(
    tmp_path: Path, what: str, edit: tuple[str, str], line: int, words: list[str]
) -> None:
    assert edit[0] in SHIPPED, what
    (tmp_path / "qa").mkdir()
    path = tmp_path / "qa" / "form.yaml"
    path.write_text(SHIPPED.replace(edit[0], edit[1], 1))
    with pytest.raises(QaFormError) as caught:
        forms.load(tmp_path)
    problems = caught.value.problems
    assert len(problems) >= 1
    first = problems[0]
    assert (Path(first.file), first.line) == (path, line), str(first)
    for word in words:
        assert word in first.reason, str(first)
    assert caught.value.details[0] == {"file": str(path), "line": line, "reason": first.reason}


def test_two_forms_at_once_are_refused(tmp_path: Path) -> None:
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "a.yaml").write_text(SHIPPED)
    (tmp_path / "qa" / "b.yaml").write_text(SHIPPED)
    with pytest.raises(QaFormError, match="one QA form at a time"):
        forms.load(tmp_path)


async def test_service_does_not_start_on_a_bad_form(settings: Settings, tmp_path: Path) -> None:
    (tmp_path / "qa").mkdir()
    (tmp_path / "qa" / "form.yaml").write_text(SHIPPED.replace("kind: qa_form", "kind: qa"))
    app = create_app(settings.model_copy(update={"rules_dir": tmp_path}))
    with pytest.raises(QaFormError) as caught:
        async with LifespanManager(app):
            pass
    assert caught.value.problems[0].line == 15


def test_cli_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from app.qa.cli import check_form

    good = tmp_path / "good.yaml"
    good.write_text(SHIPPED)
    assert check_form(good) == 0
    assert "ok  qa-form@2026.11.1  4 standards" in capsys.readouterr().out
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHIPPED.replace("    met: [yes]\n", "    met: [maybe]\n"))
    assert check_form(bad) == 1
    assert f"{bad}:56: met answer 'maybe' is not on the scale" in capsys.readouterr().err
