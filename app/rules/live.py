"""The rule packs a running process uses: loaded in the lifespan, swapped whole on reload.

The pure parts of `app.rules` never see this module; it is the glue between them and the
service (lifespan, admin reload). Readers take `extras["rules"]` once per request or event
and use that `RuleSet` throughout, so a reload never mixes two versions in one decision.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any

from app.cache import Cache
from app.cache.base import CacheUnavailable
from app.rules import loader
from app.rules.loader import PackLoadError
from app.rules.ruleset import RuleSet

log = logging.getLogger(__name__)

EXTRAS_KEY = "rules"


def load_at_start(rules_dir: Path | None, max_window_days: int | None = None) -> RuleSet:
    """Load the packs or refuse to start, logging every problem as `file:line: reason`."""
    try:
        rules = loader.load_configured(rules_dir, max_window_days)
    except PackLoadError as exc:
        log.error("rule packs refused, not starting:\n%s", "\n".join(str(p) for p in exc.problems))
        raise
    log.info("rule packs loaded", extra={"packs": [p.ref for p in rules.packs]})
    return rules


def current(extras: dict[str, Any]) -> RuleSet:
    rules: RuleSet = extras[EXTRAS_KEY]
    return rules


async def reload(
    extras: dict[str, Any], rules_dir: Path | None, max_window_days: int | None = None
) -> RuleSet:
    """Re-read the packs; on any problem raise PackLoadError (422) and keep the old ones."""
    # File reads and compiling the lexicon take milliseconds: keep them off the event loop.
    rules = await asyncio.to_thread(loader.load_configured, rules_dir, max_window_days)
    extras[EXTRAS_KEY] = rules
    log.info("rule packs reloaded", extra={"packs": [p.ref for p in rules.packs]})
    return rules


GENERATION_KEY = "rules:generation"
SYNC_KEY = "rules_sync"


class RulesSync:
    """Keeps every worker (and host) on the packs of the latest reload.

    A reload is received by one worker. It bumps a generation counter in the shared cache
    (Redis in production); every worker polls it and re-reads its own RULES_DIR when it moves.
    Losing the counter (Redis flushed or down) only means an extra re-read or a later one: the
    files stay the only copy of the packs.
    """

    def __init__(
        self,
        extras: dict[str, Any],
        cache: Cache,
        rules_dir: Path | None,
        poll_seconds: float,
        max_window_days: int | None = None,
    ) -> None:
        self.extras = extras
        self.max_window_days = max_window_days
        self.cache = cache
        self.rules_dir = rules_dir
        self.poll_seconds = poll_seconds
        self.seen: int | None = None
        self._task: asyncio.Task[None] | None = None

    async def _generation(self) -> int | None:
        try:
            raw = await self.cache.get(GENERATION_KEY)
        except CacheUnavailable:
            return None
        return int(raw) if raw else 0

    async def start(self) -> None:
        self.seen = await self._generation()
        self._task = asyncio.create_task(self._watch(), name="rules-sync")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def reload(self) -> RuleSet:
        """Reload here (PackLoadError: nothing changes), then tell the other workers."""
        rules = await reload(self.extras, self.rules_dir, self.max_window_days)
        try:
            self.seen = await self.cache.incr(GENERATION_KEY)
        except CacheUnavailable:
            log.warning("rule packs reloaded here only: the shared cache is unavailable")
        return rules

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.poll_seconds)
            try:
                generation = await self._generation()
                if generation is None or generation == self.seen:
                    continue
                self.seen = generation
                await reload(self.extras, self.rules_dir, self.max_window_days)
            except PackLoadError as exc:
                log.error(
                    "rule packs reload refused, keeping the loaded ones:\n%s",
                    "\n".join(str(p) for p in exc.problems),
                )
            except Exception:  # keep watching whatever happens; the next poll retries
                log.exception("rule packs sync failed")


def sync_of(extras: dict[str, Any]) -> RulesSync | None:
    sync = extras.get(SYNC_KEY)
    return sync if isinstance(sync, RulesSync) else None
