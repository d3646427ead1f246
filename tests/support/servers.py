"""Real servers for tests: the service under uvicorn, throwaway Redis and PostgreSQL.

Fault drills stop and kill these, never the shared servers on the standard ports.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class GaveUp(Exception):
    """Raised by a `wait_until` condition that knows it can never hold (a process exited)."""


def wait_until(
    condition: Callable[[], bool], timeout: float = 15.0, interval: float = 0.05, what: str = ""
) -> None:
    """Poll `condition` until it holds; fail with `what` after `timeout` seconds, or at once
    when the condition raises `GaveUp`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except GaveUp:
            raise
        except Exception:  # not up yet: connection refused and the like
            pass
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what or condition}")


async def eventually(
    check: Callable[[], Awaitable[bool]],
    within: float = 15.0,
    what: str = "",
    interval: float = 0.05,
) -> None:
    """Await `check` until it holds; fail naming `what` after `within` seconds."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await check():
            return
        await asyncio.sleep(interval)
    raise TimeoutError(f"timed out after {within}s waiting for {what or check}")


async def waiting_for_a_lock(engine: AsyncEngine) -> bool:
    """Whether a session of `engine`'s PostgreSQL database waits for a lock right now."""
    async with engine.connect() as probe:
        waiting = await probe.scalar(
            text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
                 " AND wait_event_type = 'Lock'")
        )  # fmt: skip
    return bool(waiting)


@dataclass
class ServiceProcess:
    """`firstcontact serve` in its own process, on a free loopback port."""

    env: dict[str, str]
    workers: int = 1
    port: int = field(default_factory=free_port)
    cwd: Path = ROOT
    proc: subprocess.Popen[bytes] | None = None
    log_path: Path | None = None
    # Another host: its address, and the command that runs it there (`ip netns exec NS`).
    host: str = "127.0.0.1"
    prefix: tuple[str, ...] = ()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def ws_url(self) -> str:
        return f"ws://{self.host}:{self.port}"

    def start(self, timeout: float = 30.0) -> ServiceProcess:
        fd, log = tempfile.mkstemp(prefix="fc-service-", suffix=".log")
        os.close(fd)
        self.log_path = Path(log)
        cmd = [
            *self.prefix, sys.executable, "-m", "app.cli", "serve",
            "--host", self.host, "--port", str(self.port), "--workers", str(self.workers),
        ]  # fmt: skip
        with self.log_path.open("wb") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=self.cwd, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        try:
            wait_until(self._healthy, timeout, what=f"service on port {self.port}")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}; its log ends:\n{self.tail()}") from None
        return self

    def _healthy(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:  # it will not come up: say why now
            raise GaveUp(f"service exited with {self.proc.returncode}: {self.tail()}")
        return httpx.get(self.url + "/healthz", timeout=1.0).status_code == 200

    def tail(self, lines: int = 40) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(5)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@dataclass
class ThrowawayRedis:
    """A private redis-server on a free port, stoppable and restartable on the same port."""

    port: int = field(default_factory=free_port)
    proc: subprocess.Popen[bytes] | None = None
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="fc-redis-"))
    also_on: tuple[str, ...] = ()  # addresses to listen on besides loopback (other hosts)
    # Saved at shutdown and loaded at start, as a production Redis keeps its data over a
    # restart (off: a restart starts empty).
    persist: bool = False

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> ThrowawayRedis:
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed; run scripts/ensure-services.sh")
        self.proc = subprocess.Popen(
            [binary, "--port", str(self.port), "--bind", "127.0.0.1", *self.also_on,
             "--protected-mode", "no", "--save", "3600 1" if self.persist else "",
             "--appendonly", "no", "--dir", self.workdir],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_until(self._answers, 10, what=f"redis on {self.port}")
        return self

    def _answers(self) -> bool:
        with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)

    def cleanup(self) -> None:
        self.stop()
        shutil.rmtree(self.workdir, ignore_errors=True)


@dataclass
class ThrowawayPostgres:
    """A private PostgreSQL cluster in a temp folder, run as the `postgres` user (it refuses
    root), on a free port, with trust auth. Stoppable and restartable."""

    port: int = field(default_factory=free_port)
    workdir: str = field(default_factory=lambda: tempfile.mkdtemp(prefix="fc-pg-"))
    also_on: tuple[str, ...] = ()  # addresses to listen on besides loopback

    @property
    def url(self) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/postgres"

    def _as_postgres(self, *args: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", "postgres", "--", *args]
        return list(args)

    def _bin(self, name: str) -> str:
        found = shutil.which(name)
        if found:
            return found
        for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
            return str(candidate)
        raise RuntimeError(f"{name} not found")

    def start(self) -> ThrowawayPostgres:
        data = Path(self.workdir) / "data"
        if os.geteuid() == 0:
            shutil.chown(self.workdir, "postgres", "postgres")
        if not data.exists():
            subprocess.run(
                self._as_postgres(self._bin("initdb"), "-D", str(data), "-U", "postgres",
                                  "-A", "trust", "--no-sync"),
                check=True, capture_output=True,
            )  # fmt: skip
            if self.also_on:  # clients on the links of those addresses (test hosts)
                with (data / "pg_hba.conf").open("a") as hba:
                    hba.write("host all all samenet trust\n")
        listen = ",".join(("127.0.0.1", *self.also_on))
        subprocess.run(
            self._as_postgres(
                self._bin("pg_ctl"), "-D", str(data), "-l", str(Path(self.workdir) / "log"),
                "-o", f"-p {self.port} -k {self.workdir} -c listen_addresses={listen} -F",
                "-w", "start",
            ),
            check=True, capture_output=True,
        )  # fmt: skip
        return self

    def stop(self, mode: str = "fast") -> None:
        data = Path(self.workdir) / "data"
        subprocess.run(
            self._as_postgres(self._bin("pg_ctl"), "-D", str(data), "-m", mode, "-w", "stop"),
            capture_output=True,
        )

    def cleanup(self) -> None:
        self.stop("immediate")
        shutil.rmtree(self.workdir, ignore_errors=True)


_Server = TypeVar("_Server", "ThrowawayRedis", "ThrowawayPostgres")


@contextmanager
def _throwaway(server: _Server) -> Iterator[_Server]:
    """`server` started for the block, stopped and its folder removed after."""
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


def throwaway_redis(
    also_on: tuple[str, ...] = (), persist: bool = False
) -> AbstractContextManager[ThrowawayRedis]:
    return _throwaway(ThrowawayRedis(also_on=also_on, persist=persist))


def throwaway_postgres(
    also_on: tuple[str, ...] = (),
) -> AbstractContextManager[ThrowawayPostgres]:
    return _throwaway(ThrowawayPostgres(also_on=also_on))
