"""Hidden-vulnerability cues: find a lexicon's phrases in a narrative as it is typed.

The lexicon is compiled once (at load) into a word trie, so detection is one tokenising pass
and a dictionary walk per word, whatever the size of the lexicon (bench/cues: p99 well under
1 ms for 2,000 characters). Matching is on whole words ("kid" never matches "kidney", "my
carer" is not "I don't care"), case-insensitive, with contractions expanded the same way in
phrases and text ("don't" is "do not", "he's" is "he is").

Phrase syntax, word by word: `a|b` alternatives, `word?` optional, `<num>` any number
("two", "3"). A cue is not reported when a negation word comes shortly before it in the same
clause ("no kids in the house", "there are no children here") or a negating phrase follows it
("the children are not here"). Pure: no I/O, no logging (narratives are personal data).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict

# Words, with inner apostrophes kept so contractions can be expanded, and clause punctuation.
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[.;:!?,()\n]|\s[-–—]\s")
_BOUNDARY = "\x00"  # a "word" no phrase can contain: ends a clause for negation look-back
_NUM = "<num>"
_NUMBER_WORDS = frozenset(
    "a an one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty few several".split()
)
_IRREGULAR = {"won't": ("will", "not"), "can't": ("can", "not"), "shan't": ("shall", "not"),
              "ain't": ("is", "not"), "cannot": ("can", "not")}  # fmt: skip
_SUFFIXES = (("n't", "not"), ("'m", "am"), ("'re", "are"), ("'ve", "have"), ("'ll", "will"),
             ("'d", "would"), ("'s", "is"))  # fmt: skip
_MAX_EXPANSIONS = 256
# A strand's severity when the lexicon is given none (the pack schema's default too).
DEFAULT_SEVERITY = "medium"


class PhraseError(ValueError):
    """A lexicon phrase that cannot be compiled."""


class Cue(BaseModel):
    """One cue found in a narrative. `cue` is stable: push each cue id once per call."""

    model_config = ConfigDict(frozen=True)

    strand: str
    strand_name: str
    cue: str
    words: str  # the matched text, as typed
    start: int  # character span in the text
    end: int
    rule: str  # "<cue id>@<pack version>"
    severity: str = DEFAULT_SEVERITY  # the strand's (critical | high | medium | low | info)


def _expand(word: str) -> tuple[str, ...]:
    word = word.lower().replace("’", "'")
    if "'" not in word:
        return ("can", "not") if word == "cannot" else (word,)
    if word in _IRREGULAR:
        return _IRREGULAR[word]
    for suffix, full in _SUFFIXES:
        if word.endswith(suffix) and len(word) > len(suffix):
            return (word[: -len(suffix)], full)
    return (word.replace("'", ""),)


def tokenize(text: str) -> tuple[list[str], list[int], list[int]]:
    """Words (lower case, contractions expanded) with the span of the text each came from;
    clause punctuation becomes a boundary marker."""
    words: list[str] = []
    starts: list[int] = []
    ends: list[int] = []
    for match in _TOKEN.finditer(text):
        token = match.group()
        start, end = match.span()
        if not token[0].isalnum():
            words.append(_BOUNDARY)
            starts.append(start)
            ends.append(end)
            continue
        if "'" in token or "’" in token or token in ("cannot", "Cannot", "CANNOT"):
            for part in _expand(token):
                words.append(part)
                starts.append(start)
                ends.append(end)
        else:
            words.append(token.lower())
            starts.append(start)
            ends.append(end)
    return words, starts, ends


def expand_phrase(phrase: str) -> list[tuple[str, ...]]:
    """Every word sequence a phrase stands for (alternatives and optional words expanded)."""
    slots: list[list[tuple[str, ...]]] = []
    for raw in phrase.split():
        optional = raw.endswith("?")
        if optional:
            raw = raw[:-1]
        options: list[tuple[str, ...]] = []
        for alt in raw.split("|"):
            if alt == _NUM:
                options.append((_NUM,))
                continue
            words, _, _ = tokenize(alt)
            if not words or any(w == _BOUNDARY for w in words) or "".join(words) == "":
                raise PhraseError(f"{alt!r} in phrase {phrase!r} is not a word")
            options.append(tuple(words))
        if optional:
            options.append(())
        slots.append(options)
    if not slots:
        raise PhraseError("empty phrase")
    total = 1
    for options in slots:
        total *= len(options)
    if total > _MAX_EXPANSIONS:
        raise PhraseError(f"phrase {phrase!r} expands to {total} variants (at most 256)")
    sequences = []
    for combo in itertools.product(*slots):
        seq = tuple(w for part in combo for w in part)
        if not seq:
            raise PhraseError(f"phrase {phrase!r} can match nothing (every word optional)")
        sequences.append(seq)
    return sequences


# A trie node: next word -> node; the key None holds the id of the cue ending here.
_Node = dict[str | None, "_Node | int"]


@dataclass(frozen=True)
class CueInfo:
    strand: str
    strand_name: str
    cue: str
    rule: str
    severity: str = DEFAULT_SEVERITY


@dataclass
class Lexicon:
    """A compiled cue lexicon (build with `compile_lexicon`)."""

    cues: list[CueInfo] = field(default_factory=list)
    trie: _Node = field(default_factory=dict)
    negate_before: frozenset[str] = frozenset()
    breakers: frozenset[str] = frozenset()
    window: int = 3
    negate_after: _Node = field(default_factory=dict)
    after_window: int = 1
    # Every strand's id -> its name and severity, also for strands no longer holding cues.
    strand_names: dict[str, str] = field(default_factory=dict)
    strand_severity: dict[str, str] = field(default_factory=dict)

    def strands(self) -> list[tuple[str, str]]:
        return list(self.strand_names.items())

    def severity_of(self, strand: str) -> str:
        """A strand's severity (a strand the lexicon does not know has the default)."""
        return self.strand_severity.get(strand, DEFAULT_SEVERITY)


def _insert(trie: _Node, sequence: Sequence[str], value: int) -> None:
    node = trie
    for word in sequence:
        child = node.get(word)
        if not isinstance(child, dict):
            child = {}
            node[word] = child
        node = child
    node.setdefault(None, value)  # first definition wins; the loader refuses real clashes


def _single_words(phrases: Iterable[str]) -> frozenset[str]:
    words: set[str] = set()
    for phrase in phrases:
        for seq in expand_phrase(phrase):
            words.update(seq)
    return frozenset(words)


_IGNORED = -2  # trie value of an `ignore` phrase: consumed, never reported


def compile_lexicon(
    strands: Iterable[tuple[str, str, Sequence[tuple[str, str, Sequence[str]]]]],
    *,
    ignore: Iterable[str] = (),
    negate_before: Iterable[str] = (),
    breakers: Iterable[str] = (),
    window: int = 3,
    negate_after: Iterable[str] = (),
    after_window: int = 1,
    severity: Mapping[str, str] | None = None,
) -> Lexicon:
    """Build a lexicon from (strand id, strand name, [(cue id, pack version, phrases)]);
    `severity` maps strand ids to their severity (DEFAULT_SEVERITY for those it omits)."""
    lexicon = Lexicon(
        negate_before=_single_words(negate_before),
        breakers=_single_words(breakers),
        window=window,
        after_window=after_window,
    )
    severity = severity or {}
    for strand_id, strand_name, cues in strands:
        lexicon.strand_names.setdefault(strand_id, strand_name)
        weight = lexicon.strand_severity.setdefault(
            strand_id, severity.get(strand_id, DEFAULT_SEVERITY)
        )
        for cue_id, version, phrases in cues:
            index = len(lexicon.cues)
            lexicon.cues.append(
                CueInfo(strand_id, strand_name, cue_id, f"{cue_id}@{version}", weight)
            )
            for phrase in phrases:
                for seq in expand_phrase(phrase):
                    _insert(lexicon.trie, seq, index)
    for phrase in ignore:
        for seq in expand_phrase(phrase):
            _insert(lexicon.trie, seq, _IGNORED)
    for phrase in negate_after:
        for seq in expand_phrase(phrase):
            _insert(lexicon.negate_after, seq, 0)
    return lexicon


def _longest(trie: _Node, words: list[str], i: int) -> tuple[int, int]:
    """The longest phrase of `trie` starting at word i: (end word index, value) or (-1, -1)."""
    node: _Node = trie
    best_end, best_value = -1, -1
    n = len(words)
    j = i
    while j < n:
        word = words[j]
        child = node.get(word)
        if child is None and (word.isdigit() or word in _NUMBER_WORDS):
            child = node.get(_NUM)
        if not isinstance(child, dict):
            break
        node = child
        j += 1
        value = node.get(None)
        if value is not None and not isinstance(value, dict):
            best_end, best_value = j, value
    return best_end, best_value


def _negated(lexicon: Lexicon, words: list[str], start: int, end: int) -> bool:
    stop = max(0, start - lexicon.window)
    for k in range(start - 1, stop - 1, -1):
        word = words[k]
        if word == _BOUNDARY or word in lexicon.breakers:
            break
        if word in lexicon.negate_before:
            return True
    if lexicon.negate_after:
        for k in range(end, min(len(words), end + lexicon.after_window + 1)):
            if words[k] == _BOUNDARY:
                break
            if _longest(lexicon.negate_after, words, k)[0] != -1:
                return True
    return False


def detect_cues(lexicon: Lexicon, text: str) -> list[Cue]:
    """Every non-negated cue in `text`, in order (the longest phrase wins where they overlap).

    The same cue id may appear more than once (each occurrence with its span); a caller
    that pushes cues once per call keeps the ids it has pushed.
    """
    words, starts, ends = tokenize(text)
    trie = lexicon.trie
    numbers_start = _NUM in trie
    found: list[Cue] = []
    i, n = 0, len(words)
    while i < n:
        word = words[i]
        if word not in trie and not (numbers_start and (word.isdigit() or word in _NUMBER_WORDS)):
            i += 1
            continue
        end, value = _longest(trie, words, i)
        if end == -1:
            i += 1
            continue
        if value != _IGNORED and not _negated(lexicon, words, i, end):
            info = lexicon.cues[value]
            span_start, span_end = starts[i], ends[end - 1]
            found.append(
                Cue(
                    strand=info.strand,
                    strand_name=info.strand_name,
                    cue=info.cue,
                    words=text[span_start:span_end],
                    start=span_start,
                    end=span_end,
                    rule=info.rule,
                    severity=info.severity,
                )
            )
        i = end
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
