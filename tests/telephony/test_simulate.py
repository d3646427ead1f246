"""The simulator against a real service process: every event it sends is accepted and
stored, and the calls end up in the states it played."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Callable

import pytest
from sqlalchemy import func, select

from app.calls.models import Call, CallEventRow
from app.config import Settings
from app.db import create_engine, create_sessionmaker
from app.simulate import parse_rate
from tests.conftest import TELEPHONY_SECRET
from tests.support.servers import ROOT, ServiceProcess


def test_parse_rate() -> None:
    assert parse_rate("5/s") == 5
    assert parse_rate("30/m") == 0.5
    assert parse_rate("2.5") == 2.5
    for bad in ("", "fast", "0/s", "5/d"):
        with pytest.raises(ValueError):
            parse_rate(bad)


@pytest.mark.slow
def test_simulate_command_against_a_live_service(
    settings: Settings, live_service: Callable[..., ServiceProcess]
) -> None:
    service = live_service()
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "simulate", "--rate", "40/s", "--duration", "1",
         "--speed", "40", "--seed", "7", "--url", service.url, "--secret", TELEPHONY_SECRET],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    summary = result.stdout.strip().splitlines()[-1]
    match = re.search(r"responses \{(.*)\}", summary)
    assert match, summary
    statuses = dict(tuple(map(int, kv.split(": "))) for kv in match.group(1).split(", "))
    assert set(statuses) <= {200, 202} and statuses[202] > 0, summary  # 200: replays

    async def counts() -> tuple[int, int, int, int]:
        engine = create_engine(settings)
        try:
            async with create_sessionmaker(engine)() as session:
                calls = await session.scalar(select(func.count()).select_from(Call))
                ended = await session.scalar(
                    select(func.count()).select_from(Call).where(Call.state == "ended")
                )
                withheld = await session.scalar(
                    select(func.count()).select_from(Call).where(Call.presentation == "withheld")
                )
                events = await session.scalar(select(func.count()).select_from(CallEventRow))
        finally:
            await engine.dispose()
        return int(calls or 0), int(ended or 0), int(withheld or 0), int(events or 0)

    calls, ended, withheld, events = asyncio.run(counts())
    assert summary.startswith(f"{calls} calls"), summary
    assert calls >= 10 and ended == calls  # every played call ended
    assert withheld >= 1
    assert events == statuses[202]  # every accepted (202) event is stored; replays are not
