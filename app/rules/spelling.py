"""One-slip typing tolerance for the cue lexicon's long words.

Handlers type fast, mid-call: "strangeled", "pregant", "controling" must still raise their cue.
A word of the narrative the lexicon does not know is read as a lexicon word when it is one
slip away from it: one letter missing, one extra, or two neighbours swapped. Never a
substituted letter ("cooking" is not "choking", "stalling" is not "stalking") and never the
first letter ("talking" is not "stalking"): those are how real, different words differ. Only
long words (`min_length`), and real words listed in `not_typos` ("needless" is not
"needles") are left alone. Pure; results are cached per word (narratives are re-sent as they
are typed, so the same words come back).
"""

from __future__ import annotations

from collections.abc import Iterable

_CACHE_LIMIT = 8192


class Speller:
    def __init__(
        self,
        targets: Iterable[str],
        known: Iterable[str],
        *,
        min_length: int = 7,
        not_typos: Iterable[str] = (),
    ) -> None:
        self.min_length = min_length
        self.targets = frozenset(t for t in targets if len(t) >= min_length and t.isalpha())
        # Words read as themselves: the lexicon's own and the ones listed as real.
        self.known = frozenset(known) | frozenset(not_typos) | self.targets
        # Each target with one letter (not the first) taken out -> the target.
        self.missing: dict[str, str] = {}
        for target in sorted(self.targets):
            for i in range(1, len(target)):
                self.missing.setdefault(target[:i] + target[i + 1 :], target)
        self._cache: dict[str, str] = {}

    def clear(self) -> None:
        """Forget the cached answers (bench/cues measures a cold cache with it)."""
        self._cache.clear()

    def correct(self, word: str) -> str:
        """The lexicon word `word` is a slip of, else `word` itself."""
        if len(word) < self.min_length - 1 or word in self.known:
            return word
        found = self._cache.get(word)
        if found is None:
            found = self._find(word) if word.isalpha() else word
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = found
        return found

    def _find(self, word: str) -> str:
        target = self.missing.get(word)
        if target is not None:
            return target
        if len(word) > self.min_length:  # an extra letter, not the first
            for i in range(1, len(word)):
                shorter = word[:i] + word[i + 1 :]
                if shorter in self.targets:
                    return shorter
        if len(word) >= self.min_length:  # two neighbours swapped, the first kept
            for i in range(1, len(word) - 1):
                swapped = word[:i] + word[i + 1] + word[i] + word[i + 2 :]
                if swapped in self.targets:
                    return swapped
        return word
