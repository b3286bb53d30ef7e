"""The rumor library as the matcher sees it: which rumors enter it, their entries, and the
documents indexed for them. Offline tagging and the service both build it with
``matcher_library``, so the two sides match against the same library."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from domain.records import Rumor

CLAIM, VARIANT = 0, 1
KIND_NAMES = ("claim", "variant")


@dataclass(frozen=True)
class LibraryEntry:
    """One confirmed rumor: its claim, keywords, known variant texts and aliases (the terms
    moderators configure for search: another name, an abbreviation, a brand for its drug)."""

    rumor_id: str
    claim: str
    keywords: tuple[str, ...] | list[str] = field(default_factory=tuple)
    variants: tuple[str, ...] | list[str] = field(default_factory=tuple)
    aliases: tuple[str, ...] | list[str] = field(default_factory=tuple)


@dataclass(frozen=True)
class Match:
    """A rumor found in a text: score in [0, 1], the library text that matched best, and the
    unsaturated evidence that orders equal scores (docs/decisions/0056)."""

    rumor_id: str
    score: float
    matched_text: str
    evidence: float = 0.0


def qualifies(rumor: Rumor) -> bool:
    """Whether a rumor enters the matcher library: it is confirmed (a withdrawn or unconfirmed
    rumor is never tagged or pinned) and has a claim (the text the matcher scores first and
    the one reviewers see; a rumor without one stays targetable through tagged items)."""
    return rumor.confirmed and bool(rumor.claim.strip())


def matcher_library(rumors: Iterable[Rumor]) -> list[LibraryEntry]:
    """The matcher library of ``rumors``: one entry per qualifying rumor, in rumor id order (so
    a library does not depend on the order a file or a store hands the rumors over)."""
    return [
        LibraryEntry(r.rumor_id, r.claim, tuple(r.keywords), tuple(r.variants), tuple(r.aliases))
        for r in sorted(rumors, key=lambda r: r.rumor_id)
        if qualifies(r)
    ]


def documents(library: list[LibraryEntry]) -> tuple[list[str], list[int], list[int]]:
    """Texts to index (each claim and its distinct variants), their rumor index and kind."""
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
    return texts, rumor, kind


def expansions(library: list[LibraryEntry]) -> list[str]:
    """Per rumor, its keywords and aliases one per line (no word spans two of them): grams every
    document of the rumor holds besides its own."""
    return [
        "\n".join(t for t in (*(e.keywords or ()), *(e.aliases or ())) if t and t.strip())
        for e in library
    ]
