"""Content checks of loaded packs, run by `firstcontact rules check` (issue 14).

Loading proves a pack is well formed; these checks say whether what it tells a handler is
fit to use mid-call: every advice and prompt item names its source (so a supervisor or QA
reviewer can check the wording against it), no id serves two items, no prompt repeats another
prompt or an advice item (the handler would tick the same thing twice), and the "ask now"
prompts of any incident type, with every qualifier set, fit in what the handler sees unfolded.
Each problem carries its file and line, like a load problem.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from app.rules.guidance import prompts_for
from app.rules.problems import ParsedPack, Problem
from app.rules.ruleset import RuleSet
from app.rules.schema import AdvicePack, IncidentTypeDef, PromptPack, QualifierDef
from app.rules.vocabulary import ADVICE_KINDS

# Two texts are near duplicates when they share this share of their content words (Jaccard),
# or when the shorter one's content words (at least MIN_WORDS of them) are nearly all in the
# longer one: a reworded copy, or a prompt that only adds a clause to another.
NEAR_SHARED = 0.6
NEAR_CONTAINED = 0.8
MIN_WORDS = 3

# Words that carry no content for this comparison (question words, auxiliaries, pronouns).
_STOP = frozenset(
    """a an the and or but if so of to in on at for with from by as is are was were be been
    being do does did done has have had will would can could may might must should shall it
    its they them their there this that these those who whom whose what where when why how
    which any anyone anything some someone you your yours we us our he she him her his i me
    my not no now than then also just very too all each every other others about into out
    up""".split()
)
_WORD = re.compile(r"[a-z]+")


def words(text: str) -> frozenset[str]:
    """The content words of `text`, lower case, crudely stemmed (plural and -ing/-ed cut)."""
    found: set[str] = set()
    for word in _WORD.findall(text.lower()):
        if word in _STOP or len(word) < 3:
            continue
        for suffix in ("ing", "ed", "es", "s"):
            if word.endswith(suffix) and len(word) - len(suffix) >= 4:
                word = word[: -len(suffix)]
                break
        found.add(word)
    return frozenset(found)


def near(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return False
    shared = len(a & b)
    if shared / len(a | b) >= NEAR_SHARED:
        return True
    smaller = min(len(a), len(b))
    return smaller >= MIN_WORDS and shared / smaller >= NEAR_CONTAINED


@dataclass(frozen=True)
class _Entry:
    what: str  # "prompt" | "advice item"
    id: str
    text: str
    source: str | None
    pack: ParsedPack
    path: tuple[Any, ...]

    def at(self, reason: str) -> Problem:
        return self.pack.at((*self.path, "id"), reason)

    @property
    def where(self) -> str:
        return f"{self.pack.file}:{self.pack.source.line_of(self.pack.data, (*self.path, 'id'))}"


def _entries(parsed: list[ParsedPack]) -> Iterator[_Entry]:
    for p in parsed:
        pack = p.pack
        if isinstance(pack, PromptPack):
            for pi, prompt in enumerate(pack.prompts):
                yield _Entry("prompt", prompt.id, prompt.text, prompt.source, p, ("prompts", pi))
        elif isinstance(pack, AdvicePack):
            owners: list[tuple[str, int, IncidentTypeDef | QualifierDef]] = [
                ("incident_types", i, t) for i, t in enumerate(pack.incident_types)
            ]
            owners += [("qualifiers", i, q) for i, q in enumerate(pack.qualifiers)]
            for key, oi, owner in owners:
                for kind in ADVICE_KINDS:
                    for ai, item in enumerate(getattr(owner, kind)):
                        yield _Entry(
                            "advice item", item.id, item.text, item.source, p, (key, oi, kind, ai)
                        )


def lint(parsed: list[ParsedPack], rules: RuleSet) -> list[Problem]:
    """Every content problem of the loaded packs (`parsed`, built into `rules`)."""
    entries = list(_entries(parsed))
    problems = [
        e.at(
            f"{e.what} {e.id!r} has no source: name the guidance its wording comes from "
            "(a College of Policing APP page, the Victims' Code, an act...)"
        )
        for e in entries
        if not e.source
    ]
    problems += _reused(entries)
    problems += _near_duplicates(entries)
    problems += _too_many_urgent(parsed, rules)
    return problems


def _reused(entries: list[_Entry]) -> list[Problem]:
    """An id given to a prompt and to an advice item: records of "answered" and "given"
    would point at two things. (Two prompts or two advice items are refused at load.)"""
    first: dict[str, _Entry] = {}
    problems: list[Problem] = []
    for entry in entries:
        seen = first.setdefault(entry.id, entry)
        if seen is not entry and seen.what != entry.what:
            problems.append(
                entry.at(f"id {entry.id!r} is also the id of {seen.what} at {seen.where}")
            )
    return problems


def _near_duplicates(entries: list[_Entry]) -> list[Problem]:
    """A prompt nearly repeating an earlier prompt or any advice item."""
    problems: list[Problem] = []
    prompts = [e for e in entries if e.what == "prompt"]
    advice = [e for e in entries if e.what == "advice item"]
    bags = {id(e): words(e.text) for e in entries}
    for index, prompt in enumerate(prompts):
        for other in prompts[:index]:
            if near(bags[id(prompt)], bags[id(other)]):
                problems.append(
                    prompt.at(
                        f"prompt {prompt.id!r} nearly repeats prompt {other.id!r} "
                        f"({other.where}): merge them"
                    )
                )
        for item in advice:
            if near(bags[id(prompt)], bags[id(item)]):
                problems.append(
                    prompt.at(
                        f"prompt {prompt.id!r} repeats advice item {item.id!r} ({item.where}): "
                        "advice has its own tick, drop it from the prompt"
                    )
                )
    return problems


def _too_many_urgent(parsed: list[ParsedPack], rules: RuleSet) -> list[Problem]:
    """ "Ask now" prompts beyond what the handler sees unfolded, for any incident type with
    every qualifier set (the most a call can carry): some would be folded away."""
    anchor = next((p for p in parsed if isinstance(p.pack, PromptPack)), None)
    if anchor is None:
        return []
    every = list(rules.qualifiers)
    problems: list[Problem] = []
    for itype in [None, *rules.incident_types]:
        urgent = [p for p in prompts_for(rules, itype, (), every) if p.priority == 1]
        if len(urgent) > rules.visible_limit:
            problems.append(
                anchor.at(
                    ("visible_limit",),
                    f"{len(urgent)} priority-1 prompts for incident type {itype or '(none)'} "
                    f"with every qualifier, more than visible_limit {rules.visible_limit}: "
                    "lower some to priority 2",
                )
            )
    return problems
