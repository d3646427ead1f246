"""CPU time of processes, read from /proc (user + system, children's included as they exit):
the service's process tree (uvicorn's supervisor and its workers), the PostgreSQL backends
serving one database, a Redis server."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

TICK = os.sysconf("SC_CLK_TCK")


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces: split after its closing parenthesis.
    return raw[raw.rindex(")") + 2 :].split()


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    if fields is None:
        return 0.0
    # utime, stime, cutime, cstime are fields 14-17 (1-based); here 3 fields are gone before.
    return sum(int(v) for v in fields[11:15]) / TICK


def _cmdline(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return ""
    return raw.replace(b"\0", b" ").decode(errors="replace")


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    parents: dict[int, int] = {}
    for pid in _pids():
        fields = _stat(pid)
        if fields is not None:
            parents[pid] = int(fields[1])
    found = {root}
    grew = True
    while grew:
        grew = False
        for pid, parent in parents.items():
            if parent in found and pid not in found:
                found.add(pid)
                grew = True
    return sorted(found)


def postgres_backends(database: str) -> list[int]:
    """The backends connected to `database` (their title is `postgres: user database ...`)."""
    titles = {p: _cmdline(p) for p in _pids()}
    return [p for p, t in titles.items() if t.startswith("postgres: ") and f" {database} " in t]


def redis_server(port: int) -> list[int]:
    titles = {p: _cmdline(p) for p in _pids()}
    return [p for p, t in titles.items() if "redis-server" in t and f":{port}" in t]


class Meter:
    """CPU seconds used by a set of processes between `start` and `stop`; the set is taken
    again at `stop` (a backend opened meanwhile counts from zero, one closed meanwhile is
    lost: keep pools warm across the window)."""

    def __init__(self, find: Callable[[], list[int]]) -> None:
        self.find = find
        self.before: dict[int, float] = {}

    def _now(self) -> dict[int, float]:
        return {pid: _cpu_seconds(pid) for pid in self.find()}

    def start(self) -> None:
        self.before = self._now()

    def stop(self) -> float:
        after = self._now()
        return sum(v - self.before.get(pid, 0.0) for pid, v in after.items())
