"""Round trips per call event, counted (issue 19): a figure that does not move with the
machine's speed, unlike CPU time.

    .venv/bin/python -m bench.round_trips [--calls 200] [--known 0.3]
    .venv/bin/python -m bench.round_trips --rate 100 --seconds 20 --workers 2

Runs `bench.ring_to_screen`'s closed loop (one call at a time: a signed `offered`, then a
`ringing`, each caller looked up, 1M contacts, `--known` of callers in the history), or with
`--rate` its open loop at that many calls a second, against `--workers` workers (default one)
whose interpreters load `hook/sitecustomize.py`: every statement sent to
PostgreSQL (BEGIN and COMMIT included) and every command or pipeline sent to Redis is
written down. Counted within the measured window (the bench's meters), divided by the
events sent: round trips per event, and the statements that make them.
"""

from __future__ import annotations

import argparse
import collections
import os
import sys
import tempfile
from pathlib import Path

from bench.ring_to_screen import __main__ as ring

HOOK = Path(__file__).resolve().parent / "hook"


def _window(trace: str) -> tuple[float, float, int]:
    start, stop, events = 0.0, 0.0, 0
    for line in Path(trace + ".window").read_text().splitlines():
        kind, at, n = line.split()
        if kind == "start":
            start = float(at)
        else:
            stop, events = float(at), int(n)
    return start, stop, events


def count(trace: str) -> dict[str, object]:
    start, stop, events = _window(trace)
    kinds: collections.Counter[str] = collections.Counter()
    statements: collections.Counter[str] = collections.Counter()
    for path in Path(trace).parent.glob(Path(trace).name + ".[0-9]*"):
        for line in path.read_text().splitlines():
            at, kind, text = (line.split(" ", 2) + [""])[:3]
            if start <= float(at) <= stop:
                kinds[kind] += 1
                statements[f"{kind} {' '.join(text.split()[:6])}"] += 1
    return {"events": events, "kinds": kinds, "statements": statements}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--known", type=float, default=0.3)
    parser.add_argument("--contacts", type=int, default=1_000_000)
    parser.add_argument("--rate", type=int, default=0, help="calls/s, open loop (0: closed)")
    parser.add_argument("--seconds", type=float, default=20.0, help="with --rate")
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    folder = tempfile.mkdtemp(prefix="fc-round-trips-")
    trace = os.path.join(folder, "trace")
    # Only the service's interpreter (started after this) loads the hook.
    os.environ["FC_BENCH_TRACE"] = trace
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(HOOK), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    # With --rate the open loop's warm-up step runs first; the window counted is the last step's.
    loop = (
        [f"--rates={args.rate}", "--seconds", str(args.seconds), "--closed", "0"]
        if args.rate
        else ["--rates=", "--closed", str(args.calls)]
    )
    sys.argv = [
        "ring_to_screen", *loop, "--workers", str(args.workers), "--no-floor",
        "--known", str(args.known), "--contacts", str(args.contacts),
    ]  # fmt: skip
    ring.main()
    found = count(trace)
    events = int(found["events"])  # type: ignore[call-overload]
    kinds: collections.Counter[str] = found["kinds"]  # type: ignore[assignment]
    what = f"{args.rate} calls/s" if args.rate else f"{args.calls} calls one at a time"
    print(
        f"\n{events} events ({what}, {args.workers} worker(s), {args.known:.0%} known), per event:"
    )
    for kind, name in (("PG", "PostgreSQL"), ("RD", "Redis")):
        print(f"  {name} round trips: {kinds[kind] / events:.2f}")
    print("\n| round trips per event | statement |\n|---|---|")
    statements: collections.Counter[str] = found["statements"]  # type: ignore[assignment]
    for text, n in statements.most_common():
        if n / events >= 0.01:
            print(f"| {n / events:.2f} | `{text}` |")


if __name__ == "__main__":
    main()
