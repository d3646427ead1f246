"""A smoke run of bench/ring_to_screen (seconds): the bench's own code, the floor and the
service under uvicorn, a tiny open-loop schedule; every ringing frame arrives and the table
is printed. The figures themselves are the bench's business (BENCHMARKS.md), not asserted."""

from __future__ import annotations

from app.config import Settings
from bench.ring_to_screen.__main__ import RING_AFTER, arrival_times, parse, run, table
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


def test_poisson_arrivals_keep_the_mean_rate_and_do_not_line_ringings_up_with_offers() -> None:
    rate, calls = 100, 6000
    times = arrival_times(rate, calls, "poisson")
    assert times == arrival_times(rate, calls, "poisson")  # the same for a seed: reproducible
    gaps = [b - a for a, b in zip(times, times[1:], strict=False)]
    assert all(g >= 0 for g in gaps)
    assert abs(times[-1] / (calls - 1) - 1 / rate) < 0.05 / rate  # mean gap within 5%
    # Exponential gaps: about e^-1 of them longer than the mean (a grid has none).
    assert 0.33 < sum(g > 1 / rate for g in gaps) / len(gaps) < 0.40
    # On the grid, every ringing (RING_AFTER later) falls on another call's offered...
    grid = arrival_times(rate, calls, "grid")
    offers = {round(t, 6) for t in grid}
    assert all(round(t + RING_AFTER, 6) in offers for t in grid[: calls - 100])
    # ...at random, hardly any comes within 1 ms of one.
    near = sum(
        1 for t in times[:1000] if any(abs(t + RING_AFTER - u) < 0.001 for u in times[:1100])
    )
    assert near < 1000 * 0.3
