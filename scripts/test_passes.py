"""The test command's two passes, side by side: the embedded backend (every test but those
kept for the other pass) and PostgreSQL + Redis (the tests that touch storage; each browser
test runs in one of the two, see PASSES); then, alone, the tests that change this machine's
network.

They share nothing (a SQLite file per run; a PostgreSQL database and a Redis key prefix of
their own; throwaway servers on free ports) and much of each pass is waiting on servers,
sockets and the browser, so running them together takes the wall time of the longer one
instead of the sum (CI's budget is 30 minutes). Each pass writes to its own log; the logs are
printed whole, one after the other, then one line per pass. Exit status: non-zero when either
pass failed.

    python scripts/test_passes.py [--sequential] [extra pytest arguments...]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTEST = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--durations=25"]

# The schemathesis pass runs longest on the embedded backend (FC_FUZZ_EXAMPLES=6), where the
# contract checks live; on PostgreSQL + Redis a shorter pass covers the store's side. (15,
# the test's own default, took 214 s of the embedded pass on a slow day, when the whole
# command took 31 minutes: CI's budget is 30 minutes for everything.)
#
# Each browser test runs once, not once per backend: a third of each pass was the same pages
# driven twice, and the pages behave alike on both (the store and the bus are behind the same
# API, which the storage tests cover on both). Those marked `production_only` run on
# PostgreSQL + Redis: the live paths that cross the store and the bus (the handler's work
# through outages, the supervisor's board, revocation, identification). So do the drills of
# Redis between workers (a SQLite service with a Redis is no force's set-up). The split keeps
# the two passes about the same length (BENCHMARKS.md has nothing on it; `--durations` does).
PASSES = {
    "embedded": (
        ["--backend=embedded", "-m", "not host_network and not production_only"],
        {"FC_FUZZ_EXAMPLES": "6"},
    ),
    "production": (
        [
            "--backend=production",
            "-m",
            "storage and not host_network and (production_only or not browser)",
        ],
        {"FC_FUZZ_EXAMPLES": "3"},
    ),
}
# Tests that change this machine's network (namespaces, links) run alone once both passes
# are done: a browser open in the other pass would see the change and drop its connections.
ALONE = ("host network", ["--backend=embedded", "-m", "host_network"])
NO_TESTS_SELECTED = 5  # pytest's exit status when the arguments select none of them


def main(argv: list[str]) -> int:
    sequential = "--sequential" in argv
    extra = [a for a in argv if a != "--sequential"]
    logs = Path(tempfile.mkdtemp(prefix="fc-test-passes-"))
    started: dict[str, tuple[subprocess.Popen[bytes], Path, float]] = {}
    results: dict[str, tuple[int, float]] = {}
    for name, (args, env) in PASSES.items():
        log = logs / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*PYTEST, *args, *extra],
                cwd=ROOT,
                env={**os.environ, **env},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        started[name] = (process, log, time.monotonic())
        print(f"[test] {name} pass started (log: {log})", flush=True)
        if sequential:
            results[name] = (process.wait(), time.monotonic() - started[name][2])
    for name, (process, _log, at) in started.items():
        if name not in results:
            results[name] = (process.wait(), time.monotonic() - at)
    name, args = ALONE
    log = logs / "host-network.log"
    print(f"[test] {name} pass started (log: {log})", flush=True)
    at = time.monotonic()
    with log.open("wb") as out:
        code = subprocess.call([*PYTEST, *args, *extra], cwd=ROOT, stdout=out,
                               stderr=subprocess.STDOUT)  # fmt: skip
    results[name] = (0 if code == NO_TESTS_SELECTED else code, time.monotonic() - at)
    logs_of = {name: log for name, (_process, log, _at) in started.items()} | {name: log}
    for name, log in logs_of.items():
        print(f"\n===== {name} pass =====", flush=True)
        sys.stdout.write(log.read_text(errors="replace"))
    print()
    for name, (code, seconds) in results.items():
        verdict = "passed" if code == 0 else f"FAILED (exit {code})"
        print(f"[test] {name} pass {verdict} in {seconds / 60:.1f} min")
    return 0 if all(code == 0 for code, _ in results.values()) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
