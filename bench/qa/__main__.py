"""bench/qa: the QA monthly report over a year of 5,000 handlers x 3 reviews a month (180,000
reviews) through the real service on PostgreSQL + Redis. Goal (issue 12): <= 500 ms.

    .venv/bin/python -m bench.qa [--handlers 5000] [--months 12] [--per-handler 3]
                                 [--runs 30] [--warmup 5] [--heavy-runs 5]
                                 [--forms json,queue,training,handler,csv,xlsx]
                                 [--keep] [--database-url postgresql+asyncpg://.../db]

1. Generate the year (`bench/qa/data.py`): each handler's calls of each month, drawn in that
   month's sample and reviewed once (3% twice, by a second reviewer: calibration), answers with
   a share of not applicable, an alert on a quarter of the calls (acknowledged or not), the
   training register; and, from the generator's own choices, what the report must say.
2. COPY it into a fresh migrated database (the service's tables and columns), then VACUUM
   ANALYZE and CHECKPOINT, as after a night's import has settled.
3. Start the service (uvicorn, `--workers` 1, PostgreSQL + Redis) and check, through its HTTP
   API: three calls posted through the signed webhook, sampled and graded, give the very rows
   the loader writes (`bench/qa/fidelity.py`); the JSON report of the year, its queue and
   training breakdowns, 25 handlers' rows of the handler breakdown, the CSV and the XLSX all
   give the counts the generator tallied (`bench/qa/expected.py`).
4. Time each form of `GET /api/v1/qa/report?from=..&to=..` (a real HTTP client on a
   keep-alive connection; from the request sent to the last byte of the body read): warm-up
   requests, then `--runs` requests one after the other (`--heavy-runs` after one warm-up for
   the handler and training breakdowns); p50 / p95 / p99 / max in ms.

`--keep` keeps the database (its URL is printed); `--database-url` times a database kept so
(no load, no checks but the report's: the generator runs again with the same seed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import platform
import random
import time
import uuid
from typing import Any

import asyncpg
import httpx

from app.auth import service as auth
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.qa import forms, months
from bench.qa import data, expected, fidelity
from bench.realtime_env import PG_ADMIN_DSN, bench_backend, start_service

REPORT = "/api/v1/qa/report"
FORMS = {
    "json": {},
    "queue": {"by": "queue"},
    "training": {"by": "training"},
    "handler": {"by": "handler"},
    "csv": {"format": "csv"},
    "xlsx": {"format": "xlsx"},
}
HANDLERS_CHECKED = 25
# Seconds each at 5,000 handlers (the handler breakdown is a 21 MB answer): fewer runs.
HEAVY = {"handler", "training"}


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile: the smallest value with at least q of the values at or below."""
    ordered = sorted(values)
    return round(ordered[max(0, math.ceil(q * len(ordered)) - 1)], 1)


async def issue_tokens(settings: Settings, staff: list[str]) -> dict[str, str]:
    engine = create_engine(settings)
    try:
        async with create_sessionmaker(engine)() as session, session.begin():
            return {s: await auth.issue_token(session, s, actor="bench") for s in staff}
    finally:
        await engine.dispose()


async def load(dsn: str, dataset: data.Dataset) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        started = time.monotonic()
        rows = await data.load(conn, dataset)
        copied = time.monotonic() - started
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
        return {"rows": rows, "copy_seconds": round(copied, 1),
                "copy_vacuum_analyze_seconds": round(time.monotonic() - started, 1)}  # fmt: skip
    finally:
        await conn.close()


async def verify(
    client: httpx.AsyncClient, dataset: data.Dataset, span: tuple[str, str], headers: dict[str, str]
) -> list[str]:
    """The report's figures against the generator's tallies, in every form timed."""
    params = {"from": span[0], "to": span[1]}

    async def get(**extra: str) -> httpx.Response:
        response = await client.get(REPORT, params={**params, **extra}, headers=headers)
        assert response.status_code == 200, response.text[:500]
        return response

    want = dataset.expected
    problems = expected.check_report((await get()).json(), want)
    problems += expected.check_groups((await get(by="queue")).json(), want, "queue")
    problems += expected.check_groups((await get(by="training")).json(), want, "training")
    handlers = sorted({k[0] for k in want.by_handler.calls})
    picked = set(random.Random(7).sample(handlers, min(HANDLERS_CHECKED, len(handlers))))
    problems += expected.check_groups((await get(by="handler")).json(), want, "handler", picked)
    problems += expected.check_csv((await get(format="csv")).text, want)
    problems += expected.check_xlsx((await get(format="xlsx")).content, want)
    return problems


async def time_form(
    client: httpx.AsyncClient, params: dict[str, str], headers: dict[str, str], warmup: int,
    runs: int,
) -> dict[str, Any]:  # fmt: skip
    for _ in range(warmup):
        response = await client.get(REPORT, params=params, headers=headers)
        assert response.status_code == 200, response.text[:500]
    timings = []
    size = 0
    for _ in range(runs):
        started = time.perf_counter()
        response = await client.get(REPORT, params=params, headers=headers)
        body = response.content
        timings.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, response.text[:500]
        size = len(body)
    return {
        "p50": pct(timings, 0.50), "p95": pct(timings, 0.95), "p99": pct(timings, 0.99),
        "max": round(max(timings), 1), "runs": runs, "bytes": size,
    }  # fmt: skip


async def run(
    url: str, dsn: str, dataset: data.Dataset, form: forms.QaForm, tokens: dict[str, str],
    args: argparse.Namespace, check_rows: bool,
) -> dict[str, Any]:  # fmt: skip
    span = (dataset.expected.months[0], dataset.expected.months[-1])
    headers = {"Authorization": f"Bearer {tokens[data.reviewer_id(0)]}"}
    result: dict[str, Any] = {}
    async with httpx.AsyncClient(base_url=url, timeout=300) as client:
        if check_rows:
            before = months.label(*previous(*months.parse(span[0])))
            problems = await fidelity.check(client, dsn, form, before, tokens)
            result["rows_as_the_service_writes_them"] = problems or "identical"
            if problems:
                raise SystemExit("loaded rows differ from the service's:\n" + "\n".join(problems))
        started = time.monotonic()
        problems = await verify(client, dataset, span, headers)
        result["report_checked_against_generator"] = problems[:20] or "identical"
        result["check_seconds"] = round(time.monotonic() - started, 1)
        if problems:
            raise SystemExit(
                "the report differs from the loaded data:\n" + "\n".join(problems[:50])
            )
        result["load_average_before_timing"] = [round(x, 2) for x in os.getloadavg()]
        timings = {}
        for name in args.forms.split(","):
            params = {"from": span[0], "to": span[1], **FORMS[name]}
            runs, warmup = (args.heavy_runs, 1) if name in HEAVY else (args.runs, args.warmup)
            timings[name] = await time_form(client, params, headers, warmup, runs)
            print(f"  {name}: {timings[name]}", flush=True)
        result["ms"] = timings
        result["load_average_after_timing"] = [round(x, 2) for x in os.getloadavg()]
    return result


def previous(year: int, month: int) -> tuple[int, int]:
    return (year - 1, 12) if month == 1 else (year, month - 1)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--handlers", type=int, default=5000)
    parser.add_argument("--months", type=int, default=12)
    parser.add_argument("--per-handler", type=int, default=3)
    parser.add_argument("--first-month", default="2025-12")
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--heavy-runs", type=int, default=5, help="runs of by=handler|training")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--forms", default=",".join(FORMS))
    parser.add_argument("--keep", action="store_true", help="keep the database (URL printed)")
    parser.add_argument("--database-url", help="a database kept by --keep: time it again")
    args = parser.parse_args()
    if not 1 <= args.handlers <= 50_000 or not 1 <= args.months <= 60:
        raise SystemExit("--handlers must be 1-50,000 and --months 1-60")
    if not 1 <= args.per_handler <= 20 or not 1 <= min(args.runs, args.heavy_runs) <= 10_000:
        raise SystemExit("--per-handler must be 1-20, --runs and --heavy-runs 1-10,000")
    if unknown := set(args.forms.split(",")) - set(FORMS):
        raise SystemExit(f"unknown --forms {sorted(unknown)} (known: {', '.join(FORMS)})")
    months.parse(args.first_month, "--first-month")
    form = forms.load(None)
    started = time.monotonic()
    dataset = data.generate(form, args.first_month, args.months, args.handlers, args.per_handler)
    generated = round(time.monotonic() - started, 1)
    print(f"generated in {generated} s: {len(dataset.reviews)} reviews", flush=True)
    database_url = args.database_url
    if args.keep and database_url is None:
        name = f"fc_bench_qa_{uuid.uuid4().hex[:8]}"
        asyncio.run(_admin(f'CREATE DATABASE "{name}"'))
        host = PG_ADMIN_DSN.split("://", 1)[1].rsplit("/", 1)[0]
        database_url = f"postgresql+asyncpg://{host}/{name}"
        fresh = True
    else:
        fresh = database_url is None
    summary: dict[str, Any] = {
        "machine": f"{os.cpu_count()} CPUs, {platform.processor() or platform.machine()}",
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "handlers": args.handlers, "months": args.months, "per_handler": args.per_handler,
        "reviews": len(dataset.reviews), "answers": len(dataset.answers),
        "generate_seconds": generated, "workers": args.workers,
    }  # fmt: skip
    with bench_backend(database_url) as settings:
        dsn = settings.database_url.replace("postgresql+asyncpg://", "postgresql://")
        if fresh:
            summary["load"] = asyncio.run(load(dsn, dataset))
            print(f"loaded: {summary['load']}", flush=True)
        tokens = asyncio.run(issue_tokens(settings, [data.reviewer_id(0), data.reviewer_id(1)]))
        service = start_service(settings, workers=args.workers)
        try:
            summary.update(
                asyncio.run(run(service.url, dsn, dataset, form, tokens, args, check_rows=fresh))
            )
        finally:
            service.stop()
        if args.keep:
            summary["kept_database_url"] = settings.database_url
    print(json.dumps(summary, indent=2))


async def _admin(sql: str) -> None:
    conn = await asyncpg.connect(PG_ADMIN_DSN)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


if __name__ == "__main__":
    main()
