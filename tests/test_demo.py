"""The newcomer's path: `firstcontact demo` with no configuration serves on SQLite."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import httpx

from tests.support.servers import free_port, wait_until


def test_demo_runs_embedded_with_no_configuration(tmp_path: Path) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("DATABASE_", "REDIS_", "TELEPHONY_", "SESSION_", "ENV"))
    }
    port = free_port()
    log = tmp_path / "demo.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "demo", "--port", str(port)],
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_until(
            lambda: httpx.get(base + "/readyz", timeout=2).status_code == 200,
            60,
            what="the demo service: " + log.read_text(errors="replace")[-2000:],
        )
        assert httpx.get(base + "/healthz").json() == {"status": "ok"}
        checks = httpx.get(base + "/readyz").json()["checks"]
        assert checks["database"]["backend"] == "sqlite"
        assert checks["cache"]["backend"] == "in-process"
        assert (tmp_path / "var" / "firstcontact.db").exists()

        # The printed handler token works.
        printed = log.read_text()
        match = re.search(r"handler\s+H1001\s+(fct_\S+)", printed)
        assert match, printed
        me = httpx.get(base + "/api/v1/me", headers={"Authorization": f"Bearer {match[1]}"})
        assert me.status_code == 200 and me.json()["id"] == "H1001"
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(20)
