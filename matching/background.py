"""A background of ordinary text: the items a platform serves that are not tagged rumors
(decision 0075), asked how many of them hold a word.

Why (issue 17, docs/decisions/0072, 0075): a short typed search that shares only a rumor's
*subject* (「北京 房产税 税率」 against 「北京已开征房产税」) must not be answered with its debunk,
and counting the words it shares cannot tell the subject from the claim. Ordinary posts can: a
word ordinary posts carry about as often as the rumor library does (北京, 房产税, 税率, 政策) is a
subject word; a word the library holds and ordinary text rarely does (火车盒饭, 5美分, 砍死)
states a rumor's claim. ``ratio`` is that comparison, the background's rate of a word over the
library's, each smoothed by ``prior`` posts.

The background is an explicit input of ``Matcher`` (``Matcher(background=...)``), off unless
``ScoreParams.claim_background`` is set; it is plain data (texts or a word table), no IO.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from matching.claimtext import ClaimText
from matching.normalize import fold


@dataclass
class Background:
    """Ordinary posts: ``holding(word)`` is how many of the ``size`` posts hold ``word`` (a
    folded substring, as ``ClaimText.holds`` asks of a rumor), each count kept. Built from
    texts (``from_texts``) or from a table of counts already computed (``from_counts``: a
    word missing from the table is held by no post)."""

    size: int
    _text: ClaimText | None = None
    _counts: dict[str, int] = field(default_factory=dict)
    _table: bool = False

    @classmethod
    def from_texts(cls, texts: Iterable[str | None]) -> Background:
        """A background over ``texts`` (raw; folded on first use as the library's are)."""
        raw = [t or "" for t in texts]
        return cls(len(raw), ClaimText(raw, list(range(len(raw)))))

    @classmethod
    def from_counts(cls, counts: Mapping[str, int], size: int) -> Background:
        """A background given as folded word -> posts holding it, of ``size`` posts."""
        return cls(size, None, {fold(w): int(n) for w, n in counts.items()}, True)

    def holding(self, word: str) -> int:
        """How many background posts hold ``word`` (already folded)."""
        got = self._counts.get(word)
        if got is None:
            got = 0 if self._table or self._text is None else self._text.rumors_holding(word)
            if not self._table:
                self._counts[word] = got
        return got


def ratio(bg: int, bg_size: int, lib: int, lib_size: int, prior: float) -> float:
    """The background's rate of a word over the library's: (bg + prior) / bg_size divided by
    (lib + prior) / lib_size. Near 1 or above: ordinary text talks of it as much as rumors do
    (a subject word); near 0: only rumors do (a claim word)."""
    if bg_size <= 0 or lib_size <= 0:
        return float("inf")
    return ((bg + prior) / bg_size) / ((lib + prior) / lib_size)
