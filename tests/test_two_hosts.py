"""Two hosts (issue 18, item 7): two service instances, each in a network namespace of its own
(made here with `ip netns`, each linked to this host by a veth pair), one PostgreSQL and one
Redis (throwaway, on this host, listening on the links too).

A call rung through host A reaches a handler connected to host B; then host A is killed and a
handler whose socket was on A resumes on B (`?after=` its last cursor) and gets every frame it
missed, once, in order.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import AsyncExitStack
from dataclasses import dataclass

import pytest

from tests.conftest import process_env
from tests.realtime.support import frame, message, open_socket, post, ring, withheld_offer
from tests.support.servers import ROOT, ServiceProcess, throwaway_postgres, throwaway_redis

# host_network: the links it makes change this machine's network, which a browser open in a
# concurrent test sees (Chromium drops its connections: ERR_NETWORK_CHANGED). The test command
# runs it alone, after the two passes (scripts/test_passes.py).
pytestmark = [pytest.mark.slow, pytest.mark.host_network]

# Our own links, only between this host and the namespaces this test makes (and removes).
NET = "10.213"


@dataclass(frozen=True)
class Host:
    namespace: str
    address: str  # the host's own address (inside its namespace)
    gateway: str  # this machine's end of the link: where PostgreSQL and Redis are reached


def _ip(*args: str) -> None:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise OSError(f"ip {' '.join(args)}: {done.stderr.strip() or done.returncode}")


def _make_host(n: int) -> Host:
    name, outer, inner = f"fc{os.getpid()}h{n}", f"fc{os.getpid()}o{n}", f"fc{os.getpid()}i{n}"
    host = Host(name, f"{NET}.{n}.2", f"{NET}.{n}.1")
    _ip("netns", "add", name)
    _ip("link", "add", outer, "type", "veth", "peer", "name", inner)
    _ip("link", "set", inner, "netns", name)
    _ip("addr", "add", f"{host.gateway}/24", "dev", outer)
    _ip("link", "set", outer, "up")
    _ip("-n", name, "addr", "add", f"{host.address}/24", "dev", inner)
    _ip("-n", name, "link", "set", inner, "up")
    _ip("-n", name, "link", "set", "lo", "up")
    return host


def _remove_host(n: int) -> None:
    for args in (("link", "del", f"fc{os.getpid()}o{n}"), ("netns", "del", f"fc{os.getpid()}h{n}")):
        subprocess.run(["ip", *args], capture_output=True, check=False)


@pytest.fixture
def hosts() -> Iterator[tuple[Host, Host]]:
    try:
        made = (_make_host(1), _make_host(2))
    except OSError as exc:
        _remove_host(1)
        _remove_host(2)
        pytest.skip(f"this machine cannot make network namespaces: {exc}")
    try:
        yield made
    finally:
        _remove_host(1)
        _remove_host(2)


def _migrated_with_handlers(env: dict[str, str], staff_ids: tuple[str, ...]) -> dict[str, str]:
    """The database migrated, and a handler token per id."""
    subprocess.run(
        [sys.executable, "-m", "app.cli", "db", "upgrade"],
        cwd=ROOT, env=env, check=True, capture_output=True,
    )  # fmt: skip
    return {staff_id: _staff_token(env, staff_id) for staff_id in staff_ids}


def _staff_token(env: dict[str, str], staff_id: str) -> str:
    subprocess.run(
        [sys.executable, "-m", "app.cli", "staff", "create", "--id", staff_id,
         "--name", f"Test {staff_id}", "--role", "handler"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    )  # fmt: skip
    out = subprocess.run(
        [sys.executable, "-m", "app.cli", "staff", "token", "--id", staff_id],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return out.strip().splitlines()[-1]


async def test_a_call_crosses_hosts_and_a_dead_hosts_sockets_resume_on_the_other(
    hosts: tuple[Host, Host],
) -> None:
    a, b = hosts
    links = (a.gateway, b.gateway)
    with throwaway_postgres(also_on=links) as pg, throwaway_redis(also_on=links) as redis:
        tokens = _migrated_with_handlers(process_env(DATABASE_URL=pg.url), ("TH1", "TH2"))

        def on(host: Host) -> ServiceProcess:
            env = process_env(
                DATABASE_URL=pg.url.replace("127.0.0.1", host.gateway),
                REDIS_URL=redis.url.replace("127.0.0.1", host.gateway),
            )
            service = ServiceProcess(
                env=env, host=host.address, prefix=("ip", "netns", "exec", host.namespace)
            )
            return service.start()

        service_a, service_b = on(a), on(b)
        try:
            async with AsyncExitStack() as stack:
                th1_on_b = await stack.enter_async_context(open_socket(service_b, tokens["TH1"]))
                th2_on_a = await stack.enter_async_context(open_socket(service_a, tokens["TH2"]))
                assert (await frame(th1_on_b))["type"] == "hello"
                assert (await frame(th2_on_a))["type"] == "hello"

                # Rung through A, received on B.
                call = await ring(service_a, "two-hosts-1", "TH1")
                got = await message(th1_on_b)
                assert (got["type"], got["call_id"]) == ("call.ringing", call)

                # TH2's socket on A sees its first call, then A dies.
                first = await ring(service_a, "two-hosts-2", "TH2")
                seen = await message(th2_on_a)
                assert (seen["type"], seen["call_id"]) == ("call.ringing", first)
                service_a.kill()

            # While TH2 is away, its calls go on through B.
            missed = [await ring(service_b, f"two-hosts-{n}", "TH2") for n in (3, 4)]
            await post(service_b, {**withheld_offer("two-hosts-2"), "type": "ended",
                                   "cause": "normal_clearing"})  # fmt: skip
            async with open_socket(service_b, tokens["TH2"], after=seen["id"]) as resumed:
                assert (await frame(resumed))["type"] == "hello"
                frames = [await message(resumed) for _ in range(3)]
            assert [(f["type"], f["call_id"]) for f in frames] == [
                ("call.ringing", missed[0]),
                ("call.ringing", missed[1]),
                ("call.ended", first),
            ]
            cursors = [f["id"] for f in frames]
            assert len(set(cursors)) == 3 and seen["id"] not in cursors
        finally:
            service_a.stop()
            service_b.stop()
