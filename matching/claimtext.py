"""The library's texts per rumor, folded on first use, to ask whether a rumor holds a word
(the bare rule's claim predicates, docs/decisions/0066)."""

from __future__ import annotations

from collections.abc import Sequence

from matching.normalize import fold

SEP = "\x00"  # never in a folded text, so no word spans two documents


class ClaimText:
    """Whether a rumor's claim or a variant holds a word (a folded substring)."""

    def __init__(self, texts: Sequence[str], rumor: Sequence[int]) -> None:
        self._raw: dict[int, list[str]] = {}
        for t, r in zip(texts, rumor, strict=True):
            self._raw.setdefault(int(r), []).append(t or "")
        self._folded: dict[int, str] = {}

    def text(self, rumor: int) -> str:
        """The rumor's documents, folded and joined (computed once)."""
        got = self._folded.get(rumor)
        if got is None:
            got = self._folded[rumor] = SEP.join(fold(t) for t in self._raw.get(rumor, ()))
        return got

    def holds(self, rumor: int, word: str) -> bool:
        """Whether the rumor at position ``rumor`` holds ``word`` (already folded)."""
        return bool(word) and word in self.text(rumor)
