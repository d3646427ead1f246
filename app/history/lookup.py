"""Caller lookup: a number (or a household) -> its summary, from the cache when the cache holds
the current version, else rebuilt from the store and put back.

A number on no person (most callers) costs one statement: the generation counters, the
number's links and its own recent contacts (`lookup_read`), which are its whole summary. A
number on a person: that statement and one cache GET on a hit, whatever the size of the
history. Redis down: the store answers (alerts stay right) and nothing is
cached until it is back; versioned keys mean nothing stale can be served afterwards.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta

from pydantic import ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from app.cache import Cache, CacheUnavailable
from app.db_direct import Direct, Reader
from app.history import lookup_read, store, versions
from app.history.near import with_nearby
from app.history.store import Summary
from app.rules.facts import CallerFacts
from app.rules.ruleset import NearNeed

log = logging.getLogger(__name__)

KEY_PREFIX = "hist:"


def horizon_start(now: datetime, horizon_days: int) -> datetime:
    """Start of the lookup window: midnight UTC `horizon_days` before today, so one summary
    serves a whole day."""
    today = now.astimezone(UTC).date()
    return datetime.combine(today, time.min, UTC) - timedelta(days=horizon_days)


async def _cache_get(cache: Cache, key: str) -> Summary | None:
    try:
        raw = await cache.get(key)
    except CacheUnavailable:
        log.warning("summary cache unavailable; reading the store", extra={"cache": cache.name})
        return None
    if raw is None:
        return None
    try:
        return Summary.model_validate_json(raw)
    except ValidationError:
        # Written by an older version of the service: rebuild rather than fail the call.
        return None


async def _cache_put(cache: Cache, key: str, summary: Summary, ttl: float) -> None:
    try:
        await cache.set(key, summary.model_dump_json().encode(), ttl_seconds=ttl)
    except CacheUnavailable:
        pass  # already logged on the read; the store stays the copy that counts


def _key(
    kind: str, ident: str, today: date, horizon_days: int, current: dict[str, int], scope: str
) -> str:
    return (
        f"{KEY_PREFIX}{kind}:{ident}:{today.isoformat()}:{horizon_days}:"
        f"{current[versions.EVERYTHING]}.{current[scope]}"
    )


async def number_summaries(
    session: AsyncSession,
    cache: Cache,
    numbers: list[str],
    *,
    now: datetime,
    horizon_days: int,
    ttl_seconds: float,
) -> dict[str, Summary]:
    """The summaries of callers' E.164 numbers (a batch's, or one): one read of the counters,
    the numbers' links and their own contacts (`lookup_read`); a number on no person is
    answered by that read alone; the others from one cache round trip for all, the misses
    rebuilt from the store together and put back soon after (`Cache.set_soon`)."""
    wanted = sorted(set(numbers))
    if not wanted:
        return {}
    today = now.astimezone(UTC).date()
    since = horizon_start(now, horizon_days)
    read = await lookup_read.first_read(session, _scopes(wanted), wanted, today, since)
    # See versions.bumped_here: what this transaction wrote is not put in the cache.
    keep = not versions.bumped_here(session)
    return await _after_first_read(
        session, cache, read, wanted, (today, since, horizon_days), ttl_seconds, keep=keep
    )


def _scopes(numbers: list[str]) -> list[str]:
    return [versions.EVERYTHING, *(versions.number_scope(n) for n in numbers)]


async def _after_first_read(
    reader: Reader,
    cache: Cache,
    read: lookup_read.FirstRead,
    wanted: list[str],
    window: tuple[date, datetime, int],
    ttl_seconds: float,
    *,
    keep: bool,
) -> dict[str, Summary]:
    """`number_summaries` once the first read is in: the cache, then the store. `window`:
    today, the horizon's start and its days; `keep`: put what was rebuilt in the cache."""
    today, since, horizon_days = window
    found: dict[str, Summary] = dict(read.unlinked)
    cached = [n for n in wanted if n not in found]
    if not cached:
        return found
    keys = {
        n: _key("n", n, today, horizon_days, read.current, versions.number_scope(n)) for n in cached
    }
    try:
        raws = await cache.get_many([keys[n] for n in cached])
    except CacheUnavailable:
        log.warning("summary cache unavailable; reading the store", extra={"cache": cache.name})
        raws = [None] * len(cached)
    for number, raw in zip(cached, raws, strict=True):
        if raw is not None:
            try:
                found[number] = Summary.model_validate_json(raw)
            except ValidationError:
                pass  # written by an older version of the service: rebuilt below
    missing = [n for n in wanted if n not in found]
    rebuilt = await store.build_many(reader, missing, today=today, since=since, links=read.links)
    found.update(rebuilt)
    if keep:
        built = [(keys[n], summary.model_dump_json().encode()) for n, summary in rebuilt.items()]
        # Off the ring's path, gathered with the next callers' summaries (one round trip).
        cache.set_soon(built, ttl_seconds=ttl_seconds)
    return found


async def caller_summary_on(
    direct: Direct,
    cache: Cache,
    number: str,
    *,
    now: datetime,
    horizon_days: int,
    ttl_seconds: float,
    along: str | None = None,
    further: Callable[[], bool] | None = None,
) -> tuple[Summary | None, int | None]:
    """`number_summaries` of one number on a connection held outside any session (the
    express path: app.history.steps), with the value of `along` (`first_read_on`). Each
    statement commits on its own: the counters are read first, so a summary rebuilt after a
    write is at least as new as the counters that key it, never older. `further`: asked
    when the first read is not the whole summary (a number on a person); False: None."""
    today = now.astimezone(UTC).date()
    since = horizon_start(now, horizon_days)
    read = await lookup_read.first_read_on(
        direct, direct.dialect, _scopes([number]), [number], today, since, along
    )
    if number not in read.unlinked and further is not None and not further():
        return None, read.along
    found = await _after_first_read(
        direct, cache, read, [number], (today, since, horizon_days), ttl_seconds, keep=True
    )
    return found[number], read.along


async def household_summary(
    session: AsyncSession,
    cache: Cache,
    household_id: str,
    *,
    now: datetime,
    horizon_days: int,
    ttl_seconds: float,
) -> tuple[Summary, bool]:
    """The summary of one household (its current members, contacts and markers); the flag
    says whether the cache served it. The key carries the generation counters of everything
    and of the household, so a write anywhere in it makes every older cached copy
    unreachable."""
    today = now.astimezone(UTC).date()
    scope = versions.household_scope(household_id)
    current = await versions.read(session, [versions.EVERYTHING, scope])
    key = _key("h", household_id, today, horizon_days, current, scope)
    cached = await _cache_get(cache, key)
    if cached is not None:
        return cached, True
    summary = await store.build(
        session,
        number=None,
        caller_ids=[],
        household_ids=[household_id],
        today=today,
        since=horizon_start(now, horizon_days),
    )
    if not versions.bumped_here(session):
        await _cache_put(cache, key, summary, ttl_seconds)
    return summary, False


def caller_facts(
    summary: Summary | None,
    *,
    now: datetime,
    presentation: str,
    horizon_days: int,
) -> CallerFacts:
    """The rule engine's input: the summary as seen at `now`."""
    if summary is None:
        return CallerFacts(
            now=now,
            presentation=presentation,
            horizon_days=horizon_days,
        )
    return CallerFacts(
        now=now,
        presentation=presentation,
        number=summary.number,
        number_contacts=summary.number_contacts,
        persons=summary.persons,
        households=summary.households,
        horizon_days=horizon_days,
    )


async def lookup_caller(
    session: AsyncSession,
    cache: Cache,
    number: str | None,
    presentation: str,
    *,
    now: datetime,
    horizon_days: int,
    ttl_seconds: float,
    near: NearNeed | None = None,
) -> CallerFacts:
    """CallerFacts for a caller; a withheld or unreadable number is not looked up. `near`:
    what the near-repeat rules need (read from the store on every lookup, never cached)."""
    if number is None or presentation != "allowed":
        return caller_facts(None, now=now, presentation=presentation, horizon_days=horizon_days)
    found = await number_summaries(
        session, cache, [number], now=now, horizon_days=horizon_days, ttl_seconds=ttl_seconds
    )
    summary = found[number]
    facts = caller_facts(summary, now=now, presentation=presentation, horizon_days=horizon_days)
    return await with_nearby(session, facts, near)
