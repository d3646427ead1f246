"""The long-lived resources of one process, built by the lifespan in `app.main`.

Routers reach them through `request.state.resources` (dependencies in `app.api.deps`);
background tasks get them passed in. A domain that needs a new long-lived resource adds a typed
field here, never a string-keyed bag: a reader can see what exists and mypy checks its use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from app.cache import Cache
from app.config import Settings
from app.id_blocks import IdBlocks

if TYPE_CHECKING:  # types only: these modules import this one
    from app.calls.grouping import GroupCommit
    from app.calls.pipeline import Pipeline
    from app.live_rules import RulesSync
    from app.metrics.tally import Flusher
    from app.qa.forms import QaForm
    from app.realtime.broker import Broker
    from app.realtime.hub import Hub
    from app.realtime.outbox import Relay
    from app.realtime.revocation import CredentialWatch
    from app.rules.ruleset import RuleSet


@dataclass
class Resources:
    settings: Settings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    cache: Cache
    # The rule packs in force: swapped whole by a reload, so a reader takes `rules` once per
    # request or event and uses that set throughout (one decision never mixes two versions).
    rules: RuleSet
    qa_form: QaForm
    broker: Broker
    # Built after this object, from it: set by the lifespan before anything is served.
    hub: Hub | None = None
    rules_sync: RulesSync | None = None
    credential_watch: CredentialWatch | None = None
    # None in a process that only stores events (the sweeper of another process runs them).
    pipeline: Pipeline | None = None
    ingest: GroupCommit | None = None
    # This worker's metrics flush (a scrape flushes the worker it reaches first).
    metrics: Flusher | None = None
    # Publishes the outbox's rows (app.realtime.outbox); None: commits only store them.
    outbox: Relay | None = None
    # New alerts' ids, taken ahead for the express path (app.calls.express, PostgreSQL).
    alert_ids: IdBlocks = field(default_factory=lambda: IdBlocks("alert_id_seq"))
