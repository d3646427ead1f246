"""The fast reader of cue detection (`read_words`) reads every text as `tokenize` does: the
same words with the same spans; clause punctuation is kept as typed and may repeat where a
boundary already is (" - - "), which ends a clause all the same."""

from __future__ import annotations

from hypothesis import given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from app.rules.cue_words import BOUNDARY, is_boundary, read_words, tokenize

# Pieces chosen to reach every branch of the reader: plain words, words with a full stop or
# comma, contractions with either apostrophe, "cannot" in each case, dashes between spaces
# or tabs, other whitespace, characters whose lowering is not one for one, digits of other
# scripts, and the characters the tokenizer treats as word characters but not letters.
PIECES = [
    "the", "Kids", "KIDS", "house;", "crying.", "won't", "Won’t", "nan's.", "cannot",
    "Cannot", "CANNOT", "CanNot", "cannot.", "y'all'd", "o'neill", "'", "’", " - ", " -\t",
    "\t- ", " – ", "—", "-", " - - ", "(", ")", "\n", "\r\n", "\xa0", "\u2003", "\t", "_kid",
    "kid_", "²", "٣", "65", "İstanbul", "ΟΔΟΣ", "ß", "ǅ", "a.b", "..", ",,", "x)", "(x",
]  # fmt: skip


def _normalised(words: list[str]) -> list[str]:
    """Boundaries as one marker each, runs of them as one."""
    out: list[str] = []
    for word in words:
        word = BOUNDARY if is_boundary(word) else word
        if not (word == BOUNDARY and out and out[-1] == BOUNDARY):
            out.append(word)
    return out


def _assert_reads_like_tokenize(text: str) -> None:
    expected, starts, ends = tokenize(text)
    read = read_words(text)
    assert _normalised(read.words) == _normalised(expected)
    fast = [(w, read.span(i, i)) for i, w in enumerate(read.words) if not is_boundary(w)]
    slow = [(w, (s, e)) for w, s, e in zip(expected, starts, ends, strict=True) if w != BOUNDARY]
    assert fast == slow


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(PIECES), st.sampled_from(["", " ", "  ", "\n"]))))
def test_reads_pieces_as_tokenize_does(pieces: list[tuple[str, str]]) -> None:
    _assert_reads_like_tokenize("".join(piece + gap for piece, gap in pieces))


@hypothesis_settings(max_examples=400, deadline=None)
@given(st.text(max_size=200))
def test_reads_any_text_as_tokenize_does(text: str) -> None:
    _assert_reads_like_tokenize(text)


def test_a_dash_between_spaces_ends_a_clause_and_a_dash_in_a_word_does_not() -> None:
    read = read_words("no - kids, well-known")
    assert [is_boundary(w) for w in read.words] == [False, True, False, True, False, False]
    assert read.span(5, 5) == (len("no - kids, well-"), len("no - kids, well-known"))
