"""Every browser module parses as an ES module (Node's own parser), so a merge that declares a
name twice or leaves a stray brace fails here, before a browser test times out waiting for a
page whose script never ran."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

STATIC = Path(__file__).resolve().parents[2] / "app" / "web" / "static"
MODULES = sorted(STATIC.glob("*.js"))


def test_there_are_modules_to_check() -> None:
    assert len(MODULES) >= 10, MODULES


@pytest.mark.parametrize("module", MODULES, ids=[m.name for m in MODULES])
def test_module_parses(module: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed to check the browser modules"
    # A .mjs copy: Node parses it as an ES module (imports, top-level const) whatever the
    # nearest package.json says.
    copy = tmp_path / (module.stem + ".mjs")
    copy.write_text(module.read_text(encoding="utf-8"), encoding="utf-8")
    checked = subprocess.run([node, "--check", str(copy)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr
