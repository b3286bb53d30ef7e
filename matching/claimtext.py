"""The library's folded texts as one string, to ask which rumors hold a word (the bare rule's
claim predicates, docs/decisions/0066). Built once per library; a word's answer is cached."""

from __future__ import annotations

import bisect
from collections.abc import Sequence

from matching.normalize import fold

SEP = "\x00"  # never in a folded text, so no word spans two documents


class ClaimText:
    """Per rumor position, whether its claim or a variant holds a word (folded substrings)."""

    def __init__(self, texts: Sequence[str], rumor: Sequence[int]) -> None:
        parts = [fold(t or "") for t in texts]
        self.starts: list[int] = []
        at = 0
        for p in parts:
            self.starts.append(at)
            at += len(p) + 1
        self.joined = SEP.join(parts)
        self.rumor = list(rumor)
        self._cache: dict[str, frozenset[int]] = {}

    def holders(self, word: str) -> frozenset[int]:
        """The rumor positions whose texts hold ``word`` (already folded)."""
        hit = self._cache.get(word)
        if hit is None:
            found: set[int] = set()
            at = self.joined.find(word) if word else -1
            while at >= 0:
                doc = bisect.bisect_right(self.starts, at) - 1
                found.add(self.rumor[doc])
                at = self.joined.find(
                    word, self.starts[doc + 1] if doc + 1 < len(self.starts) else len(self.joined)
                )
            hit = self._cache[word] = frozenset(found)
        return hit
