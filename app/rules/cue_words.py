"""Words of a narrative and of a lexicon's phrases, read the same way (split from cues.py).

Whole words, lower case, contractions expanded ("don't" is "do not", "he's" is "he is"),
clause punctuation turned into a boundary marker. Phrase syntax, word by word: `a|b`
alternatives, `word?` optional, `<num>` any number ("two", "3"), `<old>` an age of 65 or more
("eighty", "92"). Pure: no I/O, no logging (narratives are personal data).
"""

from __future__ import annotations

import bisect
import itertools
import operator
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
_CANNOT = ("cannot", "Cannot", "CANNOT")
_NOT = operator.not_
_TAIL = frozenset(".,;:!?)")  # clause punctuation that may end a word


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
        if "'" in token or "’" in token or token in _CANNOT:
            for part in _expand(token):
                words.append(part)
                starts.append(start)
                ends.append(end)
        else:
            words.append(token.lower())
            starts.append(start)
            ends.append(end)
    return words, starts, ends


class Words:
    """The words of a narrative for detection (`read_words`), each with its span on demand."""

    __slots__ = ("words", "_chunks", "_runs", "_spans", "_offsets")

    def __init__(
        self,
        words: list[str],
        chunks: list[str],
        runs: tuple[list[int], list[int]],
        spans: dict[int, tuple[int, int]],
    ) -> None:
        self.words = words
        self._chunks = chunks  # the text split at single spaces
        self._runs = runs  # (first word, its chunk) of each run of plain chunks
        self._spans = spans  # word index -> span, for words of the other chunks
        self._offsets: list[int] | None = None

    def span(self, first: int, last: int) -> tuple[int, int]:
        """The characters of the text that words `first` to `last` (included) came from."""
        return self._start(first), self._end(last)

    def _start(self, index: int) -> int:
        span = self._spans.get(index)
        return span[0] if span is not None else self._plain(index)[0]

    def _end(self, index: int) -> int:
        span = self._spans.get(index)
        return span[1] if span is not None else self._plain(index)[1]

    def _plain(self, index: int) -> tuple[int, int]:
        firsts, chunk_of_first = self._runs
        run = bisect.bisect_right(firsts, index) - 1
        chunk = chunk_of_first[run] + index - firsts[run]
        if self._offsets is None:  # the end of each chunk, without its separators
            self._offsets = list(itertools.accumulate(map(len, self._chunks)))
        end = self._offsets[chunk] + chunk
        return end - len(self._chunks[chunk]), end


def read_words(text: str) -> Words:
    """The words of `tokenize`, read with the per-word work left to C loops (cue detection
    runs on every narrative post; a regex match per word was half its cost).

    The text is lowered whole and split at spaces: a chunk of letters and digits only is a
    word as it stands, and most are; a word and a full stop or comma ("house;") is split in
    two. The others (an apostrophe, a tab, "cannot", an empty chunk between two spaces...)
    are read by the tokenizer's pattern, each with the spaces either side so that a dash
    between spaces is still a clause boundary. Clause
    punctuation is kept as typed (`is_boundary` tells it apart), and a dash after another
    boundary may count twice (" - - "): boundaries only end a clause, so neither changes what
    is detected. A text whose lowering is not one character for one ("İ", a final "Σ") is
    read by `tokenize` itself.
    """
    lowered = text.lower()
    if len(lowered) != len(text) or "Σ" in text:
        every, starts, ends = tokenize(text)
        return Words(every, [], ([], []), dict(enumerate(zip(starts, ends, strict=True))))
    chunks = lowered.split(" ")
    if "cannot" in lowered:
        odd = [k for k, c in enumerate(chunks) if c == "cannot" or not c.isalnum()]
    else:
        odd = list(itertools.compress(itertools.count(), map(_NOT, map(str.isalnum, chunks))))
    words: list[str] = []
    firsts: list[int] = []
    chunk_of_first: list[int] = []
    spans: dict[int, tuple[int, int]] = {}
    if odd:
        ends = list(itertools.accumulate(map(len, chunks)))
    done = 0
    size = len(lowered)
    for k in odd:
        if k > done:
            firsts.append(len(words))
            chunk_of_first.append(done)
            words += chunks[done:k]
        done = k + 1
        chunk = chunks[k]
        if not chunk:
            continue
        end = ends[k] + k
        last = chunk[-1]
        if last in _TAIL:  # most of them: a word and a full stop or comma ("house;")
            body = chunk[:-1]
            if body.isalnum() and body != "cannot":
                spans[len(words)] = (end - len(chunk), end - 1)
                words.append(body)
                spans[len(words)] = (end - 1, end)
                words.append(last)
                continue
        start = end - len(chunk)
        for match in _TOKEN.finditer(lowered, max(0, start - 1), min(size, end + 1)):
            token = match[0]
            span = match.span()
            if (
                "'" in token
                or "’" in token
                or (token == "cannot" and text[slice(*span)] in _CANNOT)
            ):
                for part in _expand(token):
                    spans[len(words)] = span
                    words.append(part)
            else:
                spans[len(words)] = span
                words.append(token)
    if done < len(chunks):
        firsts.append(len(words))
        chunk_of_first.append(done)
        words += chunks[done:]
    return Words(words, chunks, (firsts, chunk_of_first), spans)


def is_boundary(word: str) -> bool:
    """Whether a word of `read_words` is clause punctuation."""
    return not word[0].isalnum()


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
