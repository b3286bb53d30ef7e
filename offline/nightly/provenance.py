"""Which item texts the nightly matcher must not auto-tag: the debunks' own texts and posts by
official or authority sources.

A debunk quotes the rumor it refutes, and an official case report restates it, so the matcher
scores both as the rumor; tagging them would send debunk cards to users who only read the
correction. Two rules, from what the inputs carry:

- an item whose ``author_type`` (optional column of ``items.parquet``) is one of
  SKIPPED_AUTHOR_TYPES is skipped (``official_author``);
- an item whose normalised text is, or starts with, a debunk's normalised title (ClaimReview
  ``headline``/``claimReviewed``; at least MIN_TITLE_CHARS characters) is skipped
  (``debunk_text``).

One rule routes a match instead of skipping it (``reviewed_authors``; ``match_items`` applies
it): an item whose ``author_type`` is one of REVIEWED_AUTHOR_TYPES (``media``) that the matcher
scores at or above the high threshold goes to the review queue, not into the tags
(``media_author``). Outlets repeat rumors, so their items are still matched; but they also
report true news under a rumor's own headline, and a report's reach makes a wrong auto tag
expensive: a moderator decides.

And two rules on one auto tag, once the matcher has paired a text with a claim
(``tag_objection``; the nightly drops such tags, ``offline/nightly/tags.py``):

- ``refutes``: the text holds a refutation word (REFUTATION_WORDS: 辟谣, 否认, 不实 …) that the
  claim does not: it reports the rumor as false (a denial, a correction), it does not spread it;
- ``short_text``: a text of fewer than MIN_TITLE_CHARS normalised characters is tagged only to
  a claim it equals: a fragment (「现实就是这样：」) is covered by any claim that holds it, but
  states none.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from ranking.clusters import plain_text

# The authorities that publish refutations; "media" is left out: outlets repeat rumors too.
SKIPPED_AUTHOR_TYPES = frozenset({"official", "platform", "fact_checker"})
# Authors whose matches a moderator confirms: outlets repeat rumors and report true news alike.
REVIEWED_AUTHOR_TYPES = frozenset({"media"})
MIN_TITLE_CHARS = 8
# Words that report a claim as false. A rumor may name them too (「这不是谣言」), so a text only
# counts as refuting when it holds one its claim does not.
REFUTATION_WORDS = ("辟谣", "谣言", "不实", "否认", "澄清", "造谣", "假消息", "误传", "debunk",
                    "fact check", "fact-check")  # fmt: skip


class DebunkTexts:
    """The normalised debunk titles, grouped by length, so checking whether a text starts with
    one is a set lookup per distinct length."""

    def __init__(self, titles: Iterable[str]) -> None:
        by_len: dict[int, set[str]] = {}
        for title in titles:
            plain = plain_text(title or "")
            if len(plain) >= MIN_TITLE_CHARS:
                by_len.setdefault(len(plain), set()).add(plain)
        self.by_len = dict(sorted(by_len.items()))

    def quotes_debunk(self, text: str | None) -> bool:
        """Whether ``text`` is a debunk's title or starts with one."""
        if not text or not self.by_len:
            return False
        plain = plain_text(text)
        return any(plain[:n] in titles for n, titles in self.by_len.items() if len(plain) >= n)


def skip_reasons(
    texts: Sequence[str | None], author_types: Sequence[str | None] | None, debunks: DebunkTexts
) -> list[str | None]:
    """Per item: why it is not matched (``official_author``, ``debunk_text``) or None."""
    authors = author_types if author_types is not None else [None] * len(texts)
    out: list[str | None] = []
    for text, author in zip(texts, authors, strict=True):
        if author in SKIPPED_AUTHOR_TYPES:
            out.append("official_author")
        elif debunks.quotes_debunk(text):
            out.append("debunk_text")
        else:
            out.append(None)
    return out


def reviewed_authors(author_types: Sequence[str | None] | None, n: int) -> list[bool]:
    """Per item of ``n``: whether its matches go to review rather than into the tags
    (``author_type`` in REVIEWED_AUTHOR_TYPES; all False without the column)."""
    if author_types is None:
        return [False] * n
    return [a in REVIEWED_AUTHOR_TYPES for a in author_types]


def refutes(text: str, claim: str) -> bool:
    """Whether ``text`` holds a refutation word that ``claim`` does not (case-folded)."""
    t, c = text.casefold(), claim.casefold()
    return any(w in t and w not in c for w in REFUTATION_WORDS)


def tag_objection(text: str | None, claim: str | None) -> str | None:
    """Why the matcher's tag of ``text`` to ``claim`` must not be applied (``refutes``,
    ``short_text``), or None (also when either text is unknown)."""
    if not text or not claim:
        return None
    if refutes(text, claim):
        return "refutes"
    plain = plain_text(text)
    if len(plain) < MIN_TITLE_CHARS and plain != plain_text(claim):
        return "short_text"
    return None
