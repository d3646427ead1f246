"""The import-layer contracts (pyproject.toml, `lint-imports` in the test command) hold, and
they catch a breach: the same check on a scratch copy with one upward import fails."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.servers import ROOT

LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(where: Path) -> subprocess.CompletedProcess[str]:
    # Run from `where` so that the `app` package found is that folder's copy.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=where,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(where)},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _scratch(tmp_path: Path) -> Path:
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "app", copy / "app", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", copy / "pyproject.toml")
    return copy


def test_the_layers_hold(tmp_path: Path) -> None:
    result = _lint(_scratch(tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("module", "line", "broken"),
    [
        # calls must not know the steps above it (they are composed in main.py)
        ("app/calls/lifecycle.py", "import app.history.steps", "layers"),
        ("app/api/deps.py", "import app.web.routes", "layers"),
        ("app/rules/engine.py", "import app.db", "rules imports nothing"),
    ],
)
def test_an_upward_import_breaks_a_contract(
    tmp_path: Path, module: str, line: str, broken: str
) -> None:
    copy = _scratch(tmp_path)
    target = copy / module
    target.write_text(target.read_text() + f"\n{line}  # scratch: breaks a contract\n")
    result = _lint(copy)
    assert result.returncode != 0, result.stdout
    assert broken in result.stdout and "BROKEN" in result.stdout, result.stdout
