"""The rule packs a running process uses: loaded in the lifespan, swapped whole on reload,
kept in step across workers through the shared cache.

Outside `app.rules` on purpose: the pure rules import nothing of ours; this is the glue
between them and the service (lifespan, admin reload). Readers take `resources.rules` once
per request or event and use that `RuleSet` throughout, so a reload never mixes two versions
in one decision.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.cache import Cache
from app.cache.base import CacheUnavailable
from app.periodic import Periodic
from app.resources import Resources
from app.rules import loader
from app.rules.loader import PackLoadError
from app.rules.ruleset import RuleSet

log = logging.getLogger(__name__)


def load_at_start(rules_dir: Path | None, max_window_days: int | None = None) -> RuleSet:
    """Load the packs or refuse to start, logging every problem as `file:line: reason`."""
    try:
        rules = loader.load_configured(rules_dir, max_window_days)
    except PackLoadError as exc:
        log.error("rule packs refused, not starting:\n%s", "\n".join(str(p) for p in exc.problems))
        raise
    log.info("rule packs loaded", extra={"packs": [p.ref for p in rules.packs]})
    return rules


async def reload(
    resources: Resources, rules_dir: Path | None, max_window_days: int | None = None
) -> RuleSet:
    """Re-read the packs; on any problem raise PackLoadError (422) and keep the old ones."""
    # File reads and compiling the lexicon take milliseconds: keep them off the event loop.
    rules = await asyncio.to_thread(loader.load_configured, rules_dir, max_window_days)
    resources.rules = rules
    log.info("rule packs reloaded", extra={"packs": [p.ref for p in rules.packs]})
    return rules


GENERATION_KEY = "rules:generation"


class RulesSync(Periodic):
    """Keeps every worker (and host) on the packs of the latest reload.

    A reload is received by one worker. It bumps a generation counter in the shared cache
    (Redis in production); every worker polls it and re-reads its own RULES_DIR when it moves.
    Losing the counter (Redis flushed or down) only means an extra re-read or a later one: the
    files stay the only copy of the packs.
    """

    name = "rules-sync"

    def __init__(
        self,
        resources: Resources,
        cache: Cache,
        rules_dir: Path | None,
        poll_seconds: float,
        max_window_days: int | None = None,
    ) -> None:
        super().__init__(poll_seconds)
        self.resources = resources
        self.max_window_days = max_window_days
        self.cache = cache
        self.rules_dir = rules_dir
        self.poll_seconds = poll_seconds
        self.seen: int | None = None

    async def _generation(self) -> int | None:
        try:
            raw = await self.cache.get(GENERATION_KEY)
        except CacheUnavailable:
            return None
        return int(raw) if raw else 0

    async def start(self) -> None:
        self.seen = await self._generation()
        await super().start()

    async def reload(self) -> RuleSet:
        """Reload here (PackLoadError: nothing changes), then tell the other workers."""
        rules = await reload(self.resources, self.rules_dir, self.max_window_days)
        try:
            self.seen = await self.cache.incr(GENERATION_KEY)
        except CacheUnavailable:
            log.warning("rule packs reloaded here only: the shared cache is unavailable")
        return rules

    async def tick(self) -> None:
        generation = await self._generation()
        if generation is None or generation == self.seen:
            return
        self.seen = generation
        try:
            await reload(self.resources, self.rules_dir, self.max_window_days)
        except PackLoadError as exc:
            log.error(
                "rule packs reload refused, keeping the loaded ones:\n%s",
                "\n".join(str(p) for p in exc.problems),
            )
