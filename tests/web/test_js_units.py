"""The browser modules' own tests (tests/js, Node's built-in runner): the live feed's state
machine (resume with ?after=, resync, snapshots failing while re-reading) and the offline
write queue, run against fake sockets, fetch, storage and clock. Run here so the test command
runs them; a failing JS test, a missing Node or a suite that ran nothing fails this test."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
JS_TESTS = ROOT / "tests" / "js"


def test_node_test_suite_passes() -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js (20+) is needed for tests/js: install the nodejs package"
    files = sorted(p.relative_to(ROOT).as_posix() for p in JS_TESTS.glob("*.test.mjs"))
    assert len(files) >= 2, files
    run = subprocess.run(
        [node, "--test", "--test-reporter=tap", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = run.stdout + run.stderr
    assert run.returncode == 0, report
    passed = re.search(r"^# pass (\d+)$", run.stdout, re.MULTILINE)
    failed = re.search(r"^# fail (\d+)$", run.stdout, re.MULTILINE)
    assert passed and failed, report
    assert int(failed.group(1)) == 0, report
    assert int(passed.group(1)) >= 30, report
