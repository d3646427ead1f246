"""`firstcontact serve --workers N`: N worker processes, each listening on its own
SO_REUSEPORT socket (the kernel spreads connections), a dead worker restarted, SIGTERM passed
on for a graceful stop. Real processes on this test's backend."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import httpx

from app.calls.pipeline import Pipeline
from app.config import Settings
from app.housekeeping import Housekeeping
from app.realtime.outbox import Relay
from app.resources import Resources
from tests.support.servers import ServiceProcess, wait_until


def workers_of(supervisor: int) -> set[int]:
    """The supervisor's worker processes (its spawned children, not multiprocessing's
    resource tracker)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat[1]) == supervisor and b"spawn_main" in cmdline:
            found.add(int(entry))
    return found


def listening(port: int) -> int:
    local = f"0100007F:{port:04X}"
    with open("/proc/net/tcp") as table:
        return sum(1 for line in table if line.split()[1:4:2] == [local, "0A"])


def test_workers_listen_on_their_own_sockets_and_a_dead_one_is_restarted(
    settings: Settings, live_service: Callable[..., ServiceProcess]
) -> None:
    service = live_service(workers=2)
    assert service.proc is not None
    wait_until(lambda: listening(service.port) == 2, 60, what="both workers listening")
    workers = workers_of(service.proc.pid)
    assert len(workers) == 2
    # Each worker knows how many share the host: they take turns at the shared polls.
    for pid in workers:
        assert b"HOST_WORKERS=2" in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")

    # A worker killed outright: the supervisor starts another; the service keeps answering.
    victim = min(workers)
    os.kill(victim, signal.SIGKILL)

    # A connection the kernel had already queued on the killed worker's socket is reset (a
    # client retries it); the next one goes to the worker still alive, well before the dead
    # one is replaced.
    def answered() -> bool:
        try:
            return httpx.get(service.url + "/healthz", timeout=5).status_code == 200
        except httpx.TransportError:
            return False

    wait_until(answered, 10, what="the surviving worker answering")
    supervisor = service.proc.pid

    def replaced() -> bool:
        now = workers_of(supervisor)
        return len(now) == 2 and victim not in now and listening(service.port) == 2

    wait_until(replaced, 60, what="the dead worker replaced")

    # SIGTERM (to the supervisor alone): every worker stops gracefully, the supervisor exits 0.
    workers = workers_of(supervisor)
    os.kill(service.proc.pid, signal.SIGTERM)
    assert service.proc.wait(30) == 0
    assert all(not Path(f"/proc/{pid}").exists() for pid in workers)
    with socket.socket() as probe:
        assert probe.connect_ex(("127.0.0.1", service.port)) != 0  # nothing listens any more


def test_a_hosts_workers_take_turns_at_the_polls_of_shared_tables(settings: Settings) -> None:
    """With three workers on the host each polls every third period: the host polls the
    outbox, the unprocessed events and the housekeeping's tables as often as one worker."""
    for workers in (1, 3):
        shared = settings.model_copy(update={"host_workers": workers})
        resources = cast(Resources, SimpleNamespace(settings=shared))
        assert Relay(resources).poll_seconds == workers * settings.outbox_poll_seconds
        assert (
            Pipeline.from_settings(resources, []).poll_seconds
            == workers * settings.pipeline_poll_seconds
        )
        assert Housekeeping(None, shared).period == workers * settings.housekeeping_seconds  # type: ignore[arg-type]
