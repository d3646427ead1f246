"""What a scrape of `GET /metrics` gets: every worker's counters (multiprocess mode under
`firstcontact serve`, this process's otherwise) and the gauges read at scrape time.

Scrape-time gauges are levels only the store knows (how many events wait, since when): each
scrape asks once, whichever worker answers, rather than every worker keeping a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, values
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.registry import Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


@dataclass(frozen=True)
class Backlog:
    """A queue's level at scrape time: rows waiting, and how long the oldest has waited."""

    count: int
    oldest_age_seconds: float  # 0 when nothing waits


@dataclass(frozen=True)
class Levels:
    """The scrape-time gauges; None: not known this scrape (the store did not answer, or
    nothing measures it yet): the series is left out rather than reported as 0."""

    pipeline: Backlog | None = None
    outbox: Backlog | None = None


_GAUGES = (
    (
        "pipeline",
        "firstcontact_pipeline_backlog",
        "Events accepted (stored) and not yet processed.",
        "firstcontact_pipeline_oldest_unprocessed_age_seconds",
        "Age of the oldest accepted event not yet processed (0 when none waits).",
    ),
    (
        "outbox",
        "firstcontact_outbox_backlog",
        "Frames committed to the outbox and not yet published to the broker.",
        "firstcontact_outbox_oldest_age_seconds",
        "Age of the oldest outbox frame not yet published (0 when none waits).",
    ),
)


class _Levels(Collector):
    def __init__(self, levels: Levels) -> None:
        self.levels = levels

    def collect(self) -> Iterator[Metric]:
        for attr, count_name, count_help, age_name, age_help in _GAUGES:
            backlog: Backlog | None = getattr(self.levels, attr)
            count = GaugeMetricFamily(count_name, count_help)
            age = GaugeMetricFamily(age_name, age_help)
            if backlog is not None:
                count.add_metric([], backlog.count)
                age.add_metric([], backlog.oldest_age_seconds)
            yield count
            yield age


class _Metrics(Collector):
    """Some collectors' metrics, in order (a registry of its own per scrape)."""

    def __init__(self, collectors: Iterable[Collector]) -> None:
        self.collectors = list(collectors)

    def collect(self) -> Iterator[Metric]:
        for collector in self.collectors:
            yield from collector.collect()


def multiprocess() -> bool:
    """Whether this process's values are in the shared directory: decided by
    prometheus-client when it was first imported, from PROMETHEUS_MULTIPROC_DIR then."""
    return values.ValueClass is not values.MutexValue


def render(levels: Levels) -> bytes:
    """The exposition text: counters of every worker (or this process) and `levels`."""
    registry = CollectorRegistry(auto_describe=False)
    if multiprocess():
        MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        registry.register(_Levels(levels))
    else:
        registry.register(_Metrics([REGISTRY, _Levels(levels)]))
    return generate_latest(registry)
