"""The library's texts per rumor, folded on first use, to ask whether a rumor holds a word
and how many rumors do (the bare rule's claim predicates, docs/decisions/0066, 0069)."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence

from matching.foldtable import fold_many
from matching.normalize import fold

SEP = "\x00"  # never in a folded text, so no word spans two documents


class ClaimText:
    """Whether a rumor's claim or a variant holds a word (a folded substring)."""

    def __init__(self, texts: Sequence[str], rumor: Sequence[int]) -> None:
        self._raw: dict[int, list[str]] = {}
        for t, r in zip(texts, rumor, strict=True):
            self._raw.setdefault(int(r), []).append(t or "")
        self._folded: dict[int, str] = {}
        self._library: tuple[str, list[int], list[int]] | None = None
        self._holding: dict[str, int] = {}

    def text(self, rumor: int) -> str:
        """The rumor's documents, folded and joined (computed once)."""
        got = self._folded.get(rumor)
        if got is None:
            got = self._folded[rumor] = SEP.join(fold(t) for t in self._raw.get(rumor, ()))
        return got

    def holds(self, rumor: int, word: str) -> bool:
        """Whether the rumor at position ``rumor`` holds ``word`` (already folded)."""
        return bool(word) and word in self.text(rumor)

    def rumors_holding(self, word: str) -> int:
        """How many rumors hold ``word`` (already folded): the library is folded whole on the
        first call, each word's count kept."""
        got = self._holding.get(word)
        if got is None:
            got = self._holding[word] = self._count(word) if word else 0
        return got

    def _count(self, word: str) -> int:
        """Rumors whose joined folded text holds ``word``, one find per rumor holding it."""
        if self._library is None:
            order = sorted(self._raw)
            folded = fold_many([SEP.join(self._raw[r]) for r in order])
            starts, at = [], 0
            for f in folded:
                starts.append(at)
                at += len(f) + 1
            self._library = ("\x01".join(folded), starts, order)
        whole, starts, _ = self._library
        n, pos = 0, whole.find(word)
        while pos >= 0:
            n += 1
            k = bisect_right(starts, pos)  # the next rumor's start: one count per rumor
            if k >= len(starts):
                break
            pos = whole.find(word, starts[k])
        return n
