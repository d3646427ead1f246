"""Hidden-vulnerability cues: find a lexicon's phrases in a narrative as it is typed.

The lexicon is compiled once (at load) into a word trie, so detection is one reading pass
and a dictionary walk from the words that may begin a phrase, whatever the size of the
lexicon (bench/cues, 2,000 characters: p99 under 1 ms, BENCHMARKS.md). Detection runs on every
narrative post, so the per-word work is kept in C loops: the words are read by splitting the
lowered text at spaces (`read_words`), and a walk starts only at a word that is a phrase by
itself or is followed by a word that continues one (`Starts`). Matching is on whole words
("kid" never matches "kidney", "my carer" is not "I don't care"), case-insensitive, with
contractions expanded the same way in phrases and text (app.rules.cue_words) and one typing
slip tolerated in long words (app.rules.spelling).

Negation is scoped to the cue's own clause and verb: a negation word suppresses a cue only
when nothing but `through` words (articles, auxiliaries, "have", "any"...) stands between
them, in the same clause. "there are no children here" and "she doesn't have any kids" are
negated; "he didn't stop hitting the baby" negates the stopping, not the baby, and in "no
injuries, but the kids are scared" the comma and "but" end the negation's reach. Phrases in
`ignore` are idioms that contain a cue word but are not cues ("crack of dawn"). Each cue
carries its strand, severity and effects (qualifiers proposed, prompts added, a floor for the
suggested grade). Pure: no I/O, no logging (narratives are personal data).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.rules.cue_words import (
    NUM,
    NUMBER_WORDS,
    OLD,
    PhraseError,
    expand_phrase,
    is_boundary,
    is_number,
    is_old,
    read_words,
    tokenize,
    words_of,
)
from app.rules.spelling import Speller

__all__ = [
    "DEFAULT_SEVERITY",
    "Cue",
    "CueEffects",
    "CueInfo",
    "Lexicon",
    "PhraseError",
    "compile_lexicon",
    "detect_cues",
    "expand_phrase",
    "first_of_each",
    "tokenize",
]

# A strand's severity when the lexicon is given none (the pack schema's default too).
DEFAULT_SEVERITY = "medium"
# Most urgent first (the THRIVE+ grades), to merge a strand's floor with its cue's.
GRADES = ("emergency", "priority", "scheduled", "resolution_without_deployment")


@dataclass(frozen=True)
class CueEffects:
    """What a cue does on a call: qualifiers it proposes to the handler (who confirms them),
    prompts it adds, and the least urgent grade the call's suggested grade may then be."""

    qualifiers: tuple[str, ...] = ()
    prompts: tuple[str, ...] = ()
    grade_floor: str | None = None

    def merged(self, other: CueEffects) -> CueEffects:
        floors = [g for g in (self.grade_floor, other.grade_floor) if g is not None]
        return CueEffects(
            tuple(dict.fromkeys((*self.qualifiers, *other.qualifiers))),
            tuple(dict.fromkeys((*self.prompts, *other.prompts))),
            min(floors, key=GRADES.index) if floors else None,
        )


@dataclass(frozen=True, slots=True)
class Cue:
    """One cue found in a narrative. `cue` is stable: push each cue id once per call.
    (A plain dataclass: a dense narrative yields dozens per keystroke post, and building
    validated models cost more than the detection itself.)"""

    strand: str
    strand_name: str
    cue: str
    words: str  # the matched text, as typed
    start: int  # character span in the text
    end: int
    rule: str  # "<cue id>@<pack version>"
    severity: str = DEFAULT_SEVERITY  # the strand's (critical | high | medium | low | info)
    qualifiers: tuple[str, ...] = ()  # proposed, for the handler to confirm
    prompts: tuple[str, ...] = ()  # prompt ids added to the call's
    grade_floor: str | None = None  # the suggested grade is at least this urgent


# A trie node: next word -> node; the key None holds the id of the cue ending here.
_Node = dict[str | None, "_Node | int"]


@dataclass(frozen=True)
class CueInfo:
    strand: str
    strand_name: str
    cue: str
    rule: str
    severity: str = DEFAULT_SEVERITY
    effects: CueEffects = CueEffects()


@dataclass(frozen=True)
class Starts:
    """Which words to walk the trie from. Half a narrative's words begin some phrase ("her",
    "she", "is"), but few are followed by a word that continues one. A word of `roots` is
    walked wherever it is if it is a phrase by itself or a number may follow it (or it is a
    number and a phrase may begin with one); one of `then` only where the next word is one
    of `then[word]`."""

    roots: frozenset[str]  # every word a phrase may begin with (digits aside)
    then: dict[str, frozenset[str]]  # the words that may follow, where that is all
    numbers: bool  # a phrase may begin with a number: digits are walked too

    @classmethod
    def of(cls, trie: _Node) -> Starts:
        numbers = NUM in trie or OLD in trie
        roots: set[str] = set(NUMBER_WORDS) if numbers else set()
        then: dict[str, frozenset[str]] = {}
        for word, node in trie.items():
            if word is None or not isinstance(node, dict):
                continue
            roots.add(word)
            if None not in node and NUM not in node and OLD not in node:
                then[word] = frozenset(w for w in node if w is not None)
        return cls(frozenset(roots), then, numbers)

    def candidates(self, words: list[str]) -> list[int]:
        """The indices of the words to walk from, in order."""
        then, roots = self.then, self.roots
        if self.numbers:
            found = [i for i, w in enumerate(words) if w in roots or w.isdigit()]
        else:
            found = [i for i, w in enumerate(words) if w in roots]
        last = len(words) - 1
        return [
            i
            for i in found
            # (A word of `then` is walked by its literal branch only, even if it is also a
            # number: the walk tries a word itself before a number.)
            if words[i] not in then or i < last and words[i + 1] in then[words[i]]
        ]


@dataclass
class Lexicon:
    """A compiled cue lexicon (build with `compile_lexicon`)."""

    cues: list[CueInfo] = field(default_factory=list)
    trie: _Node = field(default_factory=dict)
    negate_before: frozenset[str] = frozenset()
    breakers: frozenset[str] = frozenset()
    through: frozenset[str] = frozenset()
    window: int = 3
    negate_after: _Node = field(default_factory=dict)
    after_window: int = 1
    # Every strand's id -> its name and severity, also for strands no longer holding cues.
    strand_names: dict[str, str] = field(default_factory=dict)
    strand_severity: dict[str, str] = field(default_factory=dict)
    by_id: dict[str, CueInfo] = field(default_factory=dict)
    speller: Speller | None = None
    _starts: Starts | None = field(default=None, repr=False, compare=False)

    def starts(self) -> Starts:
        """Where a phrase may begin (computed once: a compiled lexicon is not changed)."""
        if self._starts is None:
            self._starts = Starts.of(self.trie)
        return self._starts

    def strands(self) -> list[tuple[str, str]]:
        return list(self.strand_names.items())

    def severity_of(self, strand: str) -> str:
        """A strand's severity (a strand the lexicon does not know has the default)."""
        return self.strand_severity.get(strand, DEFAULT_SEVERITY)

    def effects_of(self, cue_id: str) -> CueEffects:
        """A cue's effects in the packs in force (a cue no longer defined has none)."""
        info = self.by_id.get(cue_id)
        return info.effects if info is not None else CueEffects()


def _insert(trie: _Node, sequence: Sequence[str], value: int) -> None:
    node = trie
    for word in sequence:
        child = node.get(word)
        if not isinstance(child, dict):
            child = {}
            node[word] = child
        node = child
    node.setdefault(None, value)  # first definition wins; the loader refuses real clashes


_IGNORED = -2  # trie value of an `ignore` phrase: consumed, never reported


@dataclass(frozen=True)
class StrandInput:
    id: str
    name: str
    cues: Sequence[tuple[str, str, Sequence[str], CueEffects]]  # id, version, phrases, effects
    effects: CueEffects = CueEffects()


def compile_lexicon(
    strands: Iterable[StrandInput],
    *,
    ignore: Iterable[str] = (),
    negate_before: Iterable[str] = (),
    breakers: Iterable[str] = (),
    through: Iterable[str] = (),
    window: int = 3,
    negate_after: Iterable[str] = (),
    after_window: int = 1,
    severity: Mapping[str, str] | None = None,
    typo_min_length: int | None = 7,
    not_typos: Iterable[str] = (),
) -> Lexicon:
    """Build a lexicon; `severity` maps strand ids to their severity (DEFAULT_SEVERITY for
    those it omits). A cue's effects are its strand's merged with its own."""
    lexicon = Lexicon(
        negate_before=words_of(tuple(negate_before)),
        breakers=words_of(tuple(breakers)),
        through=words_of(tuple(through)),
        window=window,
        after_window=after_window,
    )
    severity = severity or {}
    phrase_words: set[str] = set()
    for strand in strands:
        lexicon.strand_names.setdefault(strand.id, strand.name)
        weight = lexicon.strand_severity.setdefault(
            strand.id, severity.get(strand.id, DEFAULT_SEVERITY)
        )
        for cue_id, version, phrases, effects in strand.cues:
            index = len(lexicon.cues)
            info = CueInfo(
                strand.id,
                strand.name,
                cue_id,
                f"{cue_id}@{version}",
                weight,
                strand.effects.merged(effects),
            )
            lexicon.cues.append(info)
            lexicon.by_id.setdefault(cue_id, info)
            for phrase in phrases:
                for seq in expand_phrase(phrase):
                    phrase_words.update(seq)
                    _insert(lexicon.trie, seq, index)
    ignored = list(ignore)
    for phrase in ignored:
        for seq in expand_phrase(phrase):
            _insert(lexicon.trie, seq, _IGNORED)
    for phrase in negate_after:
        for seq in expand_phrase(phrase):
            _insert(lexicon.negate_after, seq, 0)
    if typo_min_length is not None:
        known = (
            phrase_words
            | words_of(tuple(ignored))
            | lexicon.negate_before
            | lexicon.breakers
            | lexicon.through
        )
        lexicon.speller = Speller(
            phrase_words, known, min_length=typo_min_length, not_typos=not_typos
        )
    lexicon.starts()  # now, not on the first narrative after a (re)load
    return lexicon


def _number_step(node: _Node, word: str) -> Any:
    """The child of `node` a number word goes to (the trie's `<old>` or `<num>`), or None."""
    if NUM not in node and OLD not in node:
        return None
    if OLD in node and is_old(word):
        return node.get(OLD)
    if NUM in node and is_number(word):
        return node.get(NUM)
    return None


def _longest(trie: _Node, words: list[str], i: int) -> tuple[int, int]:
    """The longest phrase of `trie` starting at word i: (end word index, value) or (-1, -1)."""
    node: _Node = trie
    best_end, best_value = -1, -1
    n = len(words)
    j = i
    while j < n:
        word = words[j]
        child = node.get(word)
        if child is None:
            child = _number_step(node, word)
        if not isinstance(child, dict):
            break
        node = child
        j += 1
        value = node.get(None)
        if value is not None and not isinstance(value, dict):
            best_end, best_value = j, value
    return best_end, best_value


def _negated(lexicon: Lexicon, words: list[str], start: int, end: int) -> bool:
    # Back from the cue, within the clause: a negation word negates the cue only if nothing
    # but `through` words separates them; any other word (another verb: "didn't stop hitting
    # the baby") takes the negation for itself.
    stop = max(0, start - lexicon.window)
    for k in range(start - 1, stop - 1, -1):
        word = words[k]
        if word in lexicon.breakers or is_boundary(word):
            break
        if word in lexicon.negate_before:
            return True
        if word not in lexicon.through:
            break
    if lexicon.negate_after:
        for k in range(end, min(len(words), end + lexicon.after_window + 1)):
            if is_boundary(words[k]):
                break
            if _longest(lexicon.negate_after, words, k)[0] != -1:
                return True
    return False


def detect_cues(lexicon: Lexicon, text: str) -> list[Cue]:
    """Every non-negated cue in `text`, in order (the longest phrase wins where they overlap).

    The same cue id may appear more than once (each occurrence with its span); a caller
    that pushes cues once per call keeps the ids it has pushed.
    """
    read = read_words(text)
    words = read.words
    speller = lexicon.speller
    if speller is not None:
        # Inline fast path: most words are short or known; only the rest go to the speller.
        shortest, known, correct = speller.min_length - 1, speller.known, speller.correct
        words = [w if len(w) < shortest or w in known else correct(w) for w in words]
    trie = lexicon.trie
    found: list[Cue] = []
    n = len(words)
    resume = 0  # a phrase found (or ignored) is not read again from inside
    # Only words that may begin a phrase here are walked.
    for i in lexicon.starts().candidates(words):
        if i < resume:
            continue
        # The longest phrase from word i (`_longest`, inlined: it runs for every candidate).
        # (Operators, not dict methods, and no isinstance: a word key always holds a node,
        # the None key the cue's index; `node` is untyped to say so.)
        node: dict[Any, Any] = trie
        end = value = -1
        j = i
        while j < n:
            word = words[j]
            if word in node:
                node = node[word]
            elif (word in NUMBER_WORDS or word.isdigit()) and (
                child := _number_step(node, word)
            ) is not None:
                node = child
            else:
                break
            j += 1
            if None in node:
                end, value = j, node[None]
        if end == -1:
            continue
        if value == _IGNORED:
            resume = end
            continue
        if _negated(lexicon, words, i, end):
            # The negation is the phrase's ("never hurt the children"): words inside it that
            # are cues of their own are read again, each with its own negation check.
            continue
        info = lexicon.cues[value]
        span_start, span_end = read.span(i, end - 1)
        effects = info.effects
        found.append(
            Cue(  # positional: a third cheaper than by keyword, and a narrative has dozens
                info.strand,
                info.strand_name,
                info.cue,
                text[span_start:span_end],
                span_start,
                span_end,
                info.rule,
                info.severity,
                effects.qualifiers,
                effects.prompts,
                effects.grade_floor,
            )
        )
        resume = end
    return found


def first_of_each(cues: Iterable[Cue], already: Iterable[str] = ()) -> list[Cue]:
    """The first occurrence of each cue id not in `already` (what a call has not yet had)."""
    seen = set(already)
    fresh = []
    for cue in cues:
        if cue.cue not in seen:
            seen.add(cue.cue)
            fresh.append(cue)
    return fresh
