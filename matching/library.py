"""The rumor library as the matcher sees it: entries and the documents indexed for them."""

from __future__ import annotations

from dataclasses import dataclass, field

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
