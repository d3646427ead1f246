"""The directory the workers of `firstcontact serve --workers N` share their metric values in
(prometheus-client's multiprocess mode): a scrape reaches one worker and reports them all.

Set by the supervisor before it starts the workers (they inherit it): PROMETHEUS_MULTIPROC_DIR
when the operator gave one, else a fresh temporary directory, removed at exit. Emptied at start:
values of an earlier run would otherwise be added to this one's. One worker needs none of it
(its own registry is the whole truth).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from prometheus_client import multiprocess

from app.metrics.exposition import MULTIPROC_ENV


@contextmanager
def shared_directory() -> Iterator[Path]:
    """PROMETHEUS_MULTIPROC_DIR set and emptied for the workers started inside the block."""
    given = os.environ.get(MULTIPROC_ENV)
    path = Path(given) if given else Path(tempfile.mkdtemp(prefix="firstcontact-metrics-"))
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()
    os.environ[MULTIPROC_ENV] = str(path)
    try:
        yield path
    finally:
        if not given:
            shutil.rmtree(path, ignore_errors=True)
            os.environ.pop(MULTIPROC_ENV, None)


def worker_gone(pid: int | None) -> None:
    """A worker stopped: its live gauges (sockets open) no longer count. Its counters stay:
    they are totals, and a restarted worker's add to them."""
    if pid is not None and os.environ.get(MULTIPROC_ENV):
        multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]
