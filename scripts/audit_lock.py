"""`make audit`: pip-audit over the lock file's pins, when its vulnerability database answers.

The development machine and some CI runners have no way out to the database: the audit is
then reported as not done, with the reason, and does not fail the test command (a network
outage is not a vulnerability). Anything else pip-audit reports, a vulnerability above all,
fails it.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

# What pip-audit's HTTP client says when the database cannot be reached at all.
UNREACHABLE = ("ConnectionError", "NameResolutionError", "Max retries exceeded", "timed out")


def main() -> int:
    lock = sys.argv[1] if len(sys.argv) > 1 else "requirements.lock"
    command = [
        str(Path(sys.executable).with_name("pip-audit")),
        "--requirement", lock, "--require-hashes", "--disable-pip", "--no-deps",
        "--vulnerability-service", "osv", "--progress-spinner", "off",
    ]  # fmt: skip
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=False)
    except subprocess.TimeoutExpired:
        print("pip-audit: not run: the vulnerability database did not answer within 300 s")
        return 0
    output = done.stdout + done.stderr
    if done.returncode != 0 and any(marker in output for marker in UNREACHABLE):
        reason = next(m for m in UNREACHABLE if m in output)
        print(f"pip-audit: not run: the vulnerability database is unreachable ({reason})")
        return 0
    print(output.strip() or f"pip-audit: {lock}: no known vulnerabilities")
    return done.returncode


if __name__ == "__main__":
    sys.exit(main())
