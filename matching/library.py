"""The rumor library as the matcher sees it: which rumors enter it, their entries, and the
documents indexed for them. Offline tagging and the service both build it with
``matcher_library``, so the two sides match against the same library."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.records import Rumor

CLAIM, VARIANT, KEYWORDS = 0, 1, 2
KIND_NAMES = ("claim", "variant", "keywords")


@dataclass(frozen=True)
class LibraryEntry:
    """One confirmed rumor: its claim, keywords and known variant texts."""

    rumor_id: str
    claim: str
    keywords: tuple[str, ...] | list[str] = field(default_factory=tuple)
    variants: tuple[str, ...] | list[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Match:
    """A rumor found in a text: score in [0, 1] and the library text that matched best."""

    rumor_id: str
    score: float
    matched_text: str


def qualifies(rumor: Rumor) -> bool:
    """Whether a rumor enters the matcher library: it is confirmed (a withdrawn or unconfirmed
    rumor is never tagged or pinned) and has a claim (the text the matcher scores first and
    the one reviewers see; a rumor without one stays targetable through tagged items)."""
    return rumor.confirmed and bool(rumor.claim.strip())


def matcher_library(rumors: Iterable[Rumor]) -> list[LibraryEntry]:
    """The matcher library of ``rumors``: one entry per qualifying rumor, in rumor id order (so
    a library does not depend on the order a file or a store hands the rumors over)."""
    return [
        LibraryEntry(r.rumor_id, r.claim, tuple(r.keywords), tuple(r.variants))
        for r in sorted(rumors, key=lambda r: r.rumor_id)
        if qualifies(r)
    ]


def documents(library: list[LibraryEntry]) -> tuple[list[str], list[int], list[int]]:
    """Texts to index (claim, distinct variants, joined keywords), their rumor index and kind."""
    texts: list[str] = []
    rumor: list[int] = []
    kind: list[int] = []
    for r, entry in enumerate(library):
        seen = {entry.claim}
        texts.append(entry.claim)
        rumor.append(r)
        kind.append(CLAIM)
        for v in entry.variants or ():
            if v and v not in seen:
                seen.add(v)
                texts.append(v)
                rumor.append(r)
                kind.append(VARIANT)
        keywords = [k for k in (entry.keywords or ()) if k]
        if keywords:
            texts.append("\n".join(keywords))  # no n-gram spans two keywords
            rumor.append(r)
            kind.append(KEYWORDS)
    return texts, rumor, kind
