"""bench/cues: hidden-vulnerability cue detection on a 2,000-character narrative.

    .venv/bin/python -m bench.cues [--samples 20000] [--chars 2000]

Uses the shipped lexicon (app/rules/packs/cues.yaml) as the service loads it. Three texts of
the same length: a realistic DA narrative dense with cues (some negated), the same words
shuffled into a different order (no phrase structure), and ordinary prose with no cues. Each
is detected `--samples` times after a warm-up; p50/p99/max per text. Target: p99 < 1 ms.
The DA narrative is also measured with the typing-slip cache emptied before every call (the
cost of a narrative whose words the process has never seen). Also reports the time to load
and compile every shipped pack, and precision and recall on the hand-written sentence table
(bench/cues/sentences.csv; the wrongly scored sentences are listed).
"""

from __future__ import annotations

import argparse
import gc
import os
import platform
import random
import statistics
import time

from app.rules.cues import detect_cues
from app.rules.loader import load_paths
from bench.cues.table import HELD_OUT, load_table, score

DA_NARRATIVE = (
    "Caller whispering, states her partner came home drunk at about 11pm and started shouting. "
    "The kids are upstairs, her 4 year old son woke up crying. He has taken her phone before and "
    "won't let her leave the house; she says she is not allowed to see her family. There are no "
    "weapons in the house as far as she knows but he threatened to kill her last month. She is "
    "20 weeks pregnant. Neighbours heard banging; no injuries reported but she is frightened. "
    "She doesn't know the postcode, they moved in two weeks ago. Her mum has dementia and lives "
    "alone nearby, a care worker visits daily. No drugs involved. Caller's first language is "
    "Polish, she says she needs an interpreter for the officers. He has strangled her before. "
)
PLAIN = (
    "The caller reports that a vehicle has been parked across the entrance to the shared "
    "driveway since the early morning, blocking access for the other residents of the close. "
    "The registration was noted and passed on. The owner is not known to the residents, who "
    "have knocked on several doors along the street without success. The caller would like "
    "advice on whether the council or the police should deal with it, and asked for a call "
    "back later in the afternoon once the parking team has been contacted about the matter. "
)


def sized(text: str, chars: int) -> str:
    return (text * (chars // len(text) + 1))[:chars]


def shuffled(text: str, seed: int = 7) -> str:
    words = text.split()
    random.Random(seed).shuffle(words)
    return " ".join(words)


def measure(fn: object, samples: int) -> tuple[list[float], list[float]]:
    """Wall-clock and this thread's CPU time per call (us), each sorted. On a shared machine
    wall p99 includes time the OS gave to other processes; CPU time is the code's own cost."""
    assert callable(fn)
    for _ in range(200):
        fn()
    wall, cpu = [], []
    clock, thread = time.perf_counter_ns, time.thread_time_ns
    for _ in range(samples):
        start, start_cpu = clock(), thread()
        fn()
        end_cpu, end = thread(), clock()
        wall.append((end - start) / 1000.0)
        cpu.append((end_cpu - start_cpu) / 1000.0)
    wall.sort()
    cpu.sort()
    return wall, cpu


def pct(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(q * len(sorted_values)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--chars", type=int, default=2000)
    args = parser.parse_args()

    load_times = []
    for _ in range(20):
        start = time.perf_counter()
        rules = load_paths([])
        load_times.append((time.perf_counter() - start) * 1000)
    lexicon = rules.lexicon
    print(f"python {platform.python_version()}, {len(lexicon.cues)} cues in "
          f"{len(lexicon.strands())} strands; load+compile all packs: "
          f"median {statistics.median(load_times):.1f} ms")  # fmt: skip
    texts = {
        "DA narrative (dense cues)": sized(DA_NARRATIVE, args.chars),
        "same words shuffled": sized(shuffled(DA_NARRATIVE * 3), args.chars),
        "plain prose (no cues)": sized(PLAIN, args.chars),
    }
    for label, path in (("sentence table", None), ("held-out sentences", HELD_OUT)):
        table = load_table() if path is None else load_table(path)
        result = score(lexicon, table)
        print(f"{label}: {len(table)} sentences, precision {result.precision:.3f}, "
              f"recall {result.recall:.3f} (tp {result.true_positives}, "
              f"fp {result.false_positives}, fn {result.false_negatives})")  # fmt: skip
        for sentence, expected, found in result.wrong:
            print(f"  wrong: {sentence!r}: expected {expected}, found {found}")
    gc.collect()
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs")
    print(f"{'text':<28}{'chars':>6}{'cues':>5}{'p50 us':>8}{'p99 us':>8}{'max us':>9}"
          f"{'cpu p50':>8}{'cpu p99':>8}")  # fmt: skip
    worst_p99 = 0.0
    speller = lexicon.speller

    def cold(text: str) -> object:
        if speller is not None:
            speller.clear()
        return detect_cues(lexicon, text)

    runs = [(name, text, lambda t=text: detect_cues(lexicon, t)) for name, text in texts.items()]
    runs.append(("DA narrative, cache cold", texts["DA narrative (dense cues)"],
                 lambda t=texts["DA narrative (dense cues)"]: cold(t)))  # fmt: skip
    for name, text, fn in runs:
        found = len(detect_cues(lexicon, text))
        wall, cpu = measure(fn, args.samples)
        p99 = pct(wall, 0.99)
        worst_p99 = max(worst_p99, p99)
        print(f"{name:<28}{len(text):>6}{found:>5}{statistics.median(wall):>8.1f}{p99:>8.1f}"
              f"{wall[-1]:>9.1f}{statistics.median(cpu):>8.1f}{pct(cpu, 0.99):>8.1f}")  # fmt: skip
    verdict = "PASS" if worst_p99 < 1000 else "FAIL"
    print(f"target p99 < 1000 us: {verdict} (worst p99 {worst_p99:.1f} us)")


if __name__ == "__main__":
    main()
