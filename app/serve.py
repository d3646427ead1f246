"""Several uvicorn workers, each with its own listening socket on the same port (SO_REUSEPORT).

uvicorn's own `--workers` shares one listening socket between the workers: the worker that
wakes first accepts every pending connection of a burst, so with long-lived keep-alive
connections (a telephony platform, a load balancer) one worker does nearly all the work while
the other idles. With SO_REUSEPORT each worker listens on a socket of its own and the kernel
spreads new connections across them by their addresses.

`run` is the supervisor: it starts the workers (fresh interpreters, as uvicorn does), restarts
one that dies, and on SIGTERM/SIGINT asks each to shut down gracefully (uvicorn finishes the
requests in flight), killing only those still running after the grace period.
"""

from __future__ import annotations

import logging
import multiprocessing
import signal
import socket
import time
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from types import FrameType
from typing import TypedDict

import uvicorn

from app.config import get_settings
from app.logs import configure_logging
from app.metrics import multiproc

log = logging.getLogger(__name__)

# A worker that dies sooner than this after starting is restarted after a growing pause (a
# crash at start-up must not turn into a busy loop of restarts).
HEALTHY_AFTER = 10.0
MAX_RESTART_PAUSE = 30.0


def supported() -> bool:
    return hasattr(socket, "SO_REUSEPORT")


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A socket bound to (host, port) that other processes of this user may bind as well."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


class ServerOptions(TypedDict, total=False):
    """The uvicorn settings `firstcontact serve` passes to every worker."""

    log_config: dict[str, object]
    proxy_headers: bool
    forwarded_allow_ips: list[str] | str
    timeout_graceful_shutdown: int
    ws_max_size: int
    ws_per_message_deflate: bool
    ws_ping_interval: float | None


def forwarded_allow_ips(value: str) -> list[str] | str:
    """FORWARDED_ALLOW_IPS as uvicorn takes it: `*` (every peer: only behind a proxy that
    is the sole way in), else the listed addresses or networks."""
    value = value.strip()
    if value == "*":
        return value
    return [item.strip() for item in value.split(",") if item.strip()]


def _worker(host: str, port: int, options: ServerOptions) -> None:
    """One worker process: its own SO_REUSEPORT listening socket, one uvicorn server."""
    settings = get_settings()
    configure_logging(settings.log_level, settings.log_json)
    sock = reuseport_socket(host, port)
    sock.listen(2048)
    config = uvicorn.Config("app.main:create_app", factory=True, host=host, port=port, **options)
    uvicorn.Server(config).run(sockets=[sock])


@dataclass
class _Slot:
    process: BaseProcess | None = None
    started: float = 0.0
    pause: float = 0.0
    restart_at: float = 0.0


@dataclass
class Supervisor:
    host: str
    port: int
    workers: int
    options: ServerOptions
    grace_seconds: float = 15.0
    slots: list[_Slot] = field(default_factory=list)
    stopping: bool = False

    def _start(self, slot: _Slot) -> None:
        context = multiprocessing.get_context("spawn")
        process = context.Process(
            target=_worker, args=(self.host, self.port, self.options), name="firstcontact-worker"
        )
        process.start()
        slot.process, slot.started = process, time.monotonic()
        log.info("worker started", extra={"pid": process.pid})

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True

    def run(self) -> int:
        # Held (bound, not listening) for the supervisor's lifetime: a port taken by another
        # program fails here, at once, instead of in every worker; connections only ever go
        # to the workers' listening sockets.
        try:
            guard = reuseport_socket(self.host, self.port)
        except OSError as exc:
            log.error("cannot bind", extra={"port": self.port, "error": exc.strerror})
            return 1
        signal.signal(signal.SIGTERM, self._on_signal)
        signal.signal(signal.SIGINT, self._on_signal)
        try:
            self.slots = [_Slot() for _ in range(self.workers)]
            for slot in self.slots:
                self._start(slot)
            while not self.stopping:
                self._watch()
                time.sleep(0.2)
            self._shutdown()
        finally:
            guard.close()
        return 0

    def _watch(self) -> None:
        now = time.monotonic()
        for slot in self.slots:
            process = slot.process
            if process is not None and not process.is_alive():
                process.join()
                multiproc.worker_gone(process.pid)
                lived = now - slot.started
                slot.pause = (
                    0.0 if lived >= HEALTHY_AFTER else min(MAX_RESTART_PAUSE, slot.pause * 2 or 0.5)
                )
                slot.process, slot.restart_at = None, now + slot.pause
                log.warning(
                    "worker died; restarting",
                    extra={"pid": process.pid, "exitcode": process.exitcode, "in": slot.pause},
                )
            if slot.process is None and now >= slot.restart_at:
                self._start(slot)

    def _shutdown(self) -> None:
        running = [s.process for s in self.slots if s.process is not None and s.process.is_alive()]
        for process in running:
            process.terminate()  # SIGTERM: uvicorn's graceful shutdown
        deadline = time.monotonic() + self.grace_seconds
        for process in running:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in running:
            if process.is_alive():
                log.warning("worker did not stop in time; killed", extra={"pid": process.pid})
                process.kill()
                process.join(5)


def run(host: str, port: int, workers: int, options: ServerOptions) -> int:
    """Serve `app.main:create_app` with `workers` processes, each with its own
    SO_REUSEPORT socket; returns the exit status once stopped by SIGTERM/SIGINT."""
    grace = float(options.get("timeout_graceful_shutdown") or 10) + 5.0
    with multiproc.shared_directory():  # the workers' metrics, one scrape for all
        return Supervisor(host, port, workers, options, grace_seconds=grace).run()
