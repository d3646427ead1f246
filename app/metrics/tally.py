"""Counters for the hot path: a plain dict update per count, moved into prometheus-client's
values by `flush` (once a second by each worker's `Flusher`, and at every scrape).

prometheus-client's own `inc()` takes a lock and, in multiprocess mode, writes the value into
a memory-mapped file each time: cheap, but per event and per frame it adds up on the path
the ring -> screen budget is spent on (issue 19). Here the event loop's thread only adds to a
number; the flush pays for the lock and the file once per label set per second. A scrape
sees values at most a second old, from every worker.
"""

from __future__ import annotations

import bisect
import logging
from collections.abc import Callable, Sequence

import prometheus_client

from app.periodic import Periodic

log = logging.getLogger(__name__)

FLUSH_SECONDS = 1.0

_ALL: list[Counter | Gauge | Histogram] = []


class Counter:
    """A monotonic count per label values (`inc("canonical", "accepted")`)."""

    __slots__ = ("family", "_pending")

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.family = prometheus_client.Counter(name, documentation, list(labels))
        self._pending: dict[tuple[str, ...], float] = {}
        _ALL.append(self)

    def inc(self, *labels: str, by: float = 1.0) -> None:
        pending = self._pending
        pending[labels] = pending.get(labels, 0.0) + by

    def flush(self) -> None:
        pending, self._pending = self._pending, {}
        for labels, amount in pending.items():
            (self.family.labels(*labels) if labels else self.family).inc(amount)


class Gauge:
    """A level summed over the live workers (sockets open): `add(+1)`, `add(-1)`."""

    __slots__ = ("family", "_delta")

    def __init__(self, name: str, documentation: str) -> None:
        # livesum: a dead worker's sockets are gone, its file is dropped (multiproc).
        self.family = prometheus_client.Gauge(name, documentation, multiprocess_mode="livesum")
        self._delta = 0.0
        _ALL.append(self)

    def add(self, amount: float) -> None:
        self._delta += amount

    def flush(self) -> None:
        delta, self._delta = self._delta, 0.0
        if delta:
            self.family.inc(delta)


class Histogram:
    """Observations counted into fixed buckets (no labels)."""

    __slots__ = ("family", "_bounds", "_counts", "_sum")

    def __init__(self, name: str, documentation: str, buckets: Sequence[float]) -> None:
        self.family = prometheus_client.Histogram(name, documentation, buckets=buckets)
        # prometheus-client's own bounds (+Inf appended): bucket i counts the observations
        # with bound[i-1] < value <= bound[i], as its `observe` does.
        self._bounds: list[float] = list(self.family._upper_bounds)
        self._counts = [0] * len(self._bounds)
        self._sum = 0.0
        _ALL.append(self)

    def observe(self, value: float) -> None:
        self._counts[bisect.bisect_left(self._bounds, value)] += 1
        self._sum += value

    def flush(self) -> None:
        counts, self._counts = self._counts, [0] * len(self._bounds)
        total, self._sum = self._sum, 0.0
        if not any(counts):
            return
        # The buckets' own values (non-cumulative, as `observe` keeps them): there is no
        # public call that adds n observations to a bucket at once.
        for bucket, count in zip(self.family._buckets, counts, strict=True):
            if count:
                bucket.inc(count)
        self.family._sum.inc(total)


def flush() -> None:
    """Move every pending count into prometheus-client's values (this worker's file)."""
    for metric in _ALL:
        metric.flush()


class Flusher(Periodic):
    """Each worker's once-a-second flush (started and stopped by the lifespan; the last
    counts are flushed at stop, so that a worker stopping loses none).

    `follow(counter, read)`: a count some object keeps anyway (the pipeline's `processed`)
    is added to `counter` by what it grew since the last flush: nothing on its hot path."""

    name = "metrics flush"

    def __init__(self, period: float = FLUSH_SECONDS) -> None:
        super().__init__(period)
        self._followed: list[tuple[Counter, Callable[[], float], list[float]]] = []

    def follow(self, counter: Counter, read: Callable[[], float]) -> None:
        self._followed.append((counter, read, [read()]))

    def flush_now(self) -> None:
        for counter, read, seen in self._followed:
            value = read()
            if value > seen[0]:
                counter.inc(by=value - seen[0])
            seen[0] = value
        flush()

    async def tick(self) -> None:
        self.flush_now()

    async def stop(self) -> None:
        await super().stop()
        self.flush_now()
