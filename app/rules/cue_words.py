"""Words of a narrative and of a lexicon's phrases, read the same way (split from cues.py).

Whole words, lower case, contractions expanded ("don't" is "do not", "he's" is "he is"),
clause punctuation turned into a boundary marker. Phrase syntax, word by word: `a|b`
alternatives, `word?` optional, `<num>` any number ("two", "3"), `<old>` an age of 65 or more
("eighty", "92"). Pure: no I/O, no logging (narratives are personal data).
"""

from __future__ import annotations

import itertools
import re

# Words, with inner apostrophes kept so contractions can be expanded, and clause punctuation.
_TOKEN = re.compile(r"[^\W_]+(?:['’][^\W_]+)*|[.;:!?,()\n]|\s[-–—]\s")
BOUNDARY = "\x00"  # a "word" no phrase can contain: ends a clause for negation look-back
NUM = "<num>"
OLD = "<old>"
NUMBER_WORDS = frozenset(
    "a an one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
    "fifteen sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy "
    "eighty ninety hundred few several".split()
)
# Ages that alone suggest frailty (domain.md B.11: age); digits from 65 are checked below.
_OLD_WORDS = frozenset({"seventy", "eighty", "ninety", "hundred"})
_IRREGULAR = {"won't": ("will", "not"), "can't": ("can", "not"), "shan't": ("shall", "not"),
              "ain't": ("is", "not"), "cannot": ("can", "not")}  # fmt: skip
_SUFFIXES = (("n't", "not"), ("'m", "am"), ("'re", "are"), ("'ve", "have"), ("'ll", "will"),
             ("'d", "would"), ("'s", "is"))  # fmt: skip
_MAX_EXPANSIONS = 256


class PhraseError(ValueError):
    """A lexicon phrase that cannot be compiled."""


def is_number(word: str) -> bool:
    return word.isdigit() or word in NUMBER_WORDS


def is_old(word: str) -> bool:
    if word.isdigit():
        return word.isascii() and len(word) <= 3 and 65 <= int(word) <= 130
    return word in _OLD_WORDS


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
            words.append(BOUNDARY)
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
            if alt in (NUM, OLD):
                options.append((alt,))
                continue
            words, _, _ = tokenize(alt)
            if not words or any(w == BOUNDARY for w in words) or "".join(words) == "":
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


def words_of(phrases: list[str] | tuple[str, ...]) -> frozenset[str]:
    """Every single word the phrases can match."""
    found: set[str] = set()
    for phrase in phrases:
        for seq in expand_phrase(phrase):
            found.update(seq)
    return frozenset(found)
