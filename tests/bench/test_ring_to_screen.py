"""A smoke run of bench/ring_to_screen (seconds): the bench's own code, the floor and the
service under uvicorn, a tiny open-loop schedule; every ringing frame arrives and the table
is printed. The figures themselves are the bench's business (BENCHMARKS.md), not asserted."""

from __future__ import annotations

from app.config import Settings
from bench.ring_to_screen.__main__ import parse, run, table
from tests.conftest import run_in_thread


def test_a_tiny_sweep_sees_every_ringing_frame(settings: Settings) -> None:
    args = parse(["--rates", "10", "--seconds", "1", "--handlers", "3", "--workers", "1",
                  "--contacts", "0", "--closed", "3"])  # fmt: skip
    steps = run_in_thread(run(args, settings))
    assert [(s.target, s.rate, s.calls) for s in steps] == [
        ("floor", 0, 3),
        ("floor", 10, 10),
        ("1 worker", 0, 3),
        ("1 worker", 10, 10),
    ]
    assert all(s.lost == 0 and s.refused == 0 for s in steps), steps
    assert all(s.p99_ms is not None and s.cpu_ms_per_event >= 0 for s in steps), steps
    printed = table(steps, args)
    assert "| 10 (20) |" in printed and "| one call at a time |" in printed
