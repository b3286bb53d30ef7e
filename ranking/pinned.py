"""Pinned debunks: what goes on top of search results and into group-chat warnings, chosen from
matcher results on plain data."""

from __future__ import annotations

from dataclasses import dataclass

from domain.records import Catalog, Debunk, ExposureState, Rumor
from matching import Match


@dataclass(frozen=True, slots=True)
class Pinned:
    """A rumor recognised on a surface, the debunk to pin for it, and how sure the match is."""

    rumor: Rumor
    debunk: Debunk
    score: float


def pin_matches(matches: list[Match], catalog: Catalog, threshold: float) -> list[Pinned]:
    """Confirmed rumors matched at or above ``threshold`` that have a debunk, best match first."""
    out, seen = [], set()
    for m in sorted(matches, key=lambda m: (-m.score, m.rumor_id)):
        rumor = catalog.rumors.get(m.rumor_id)
        options = catalog.debunks_by_rumor.get(m.rumor_id)
        if (
            m.score >= threshold
            and rumor
            and rumor.confirmed
            and options
            and m.rumor_id not in seen
        ):
            seen.add(m.rumor_id)
            out.append(Pinned(rumor, options[0], m.score))
    return out


def first_seen_first(pinned: list[Pinned], exposures: list[ExposureState]) -> list[Pinned]:
    """Matched rumors the searcher was exposed to come first, earliest exposure first."""
    first = {e.rumor_id: e.first_ts for e in exposures}
    seen = sorted(
        (p for p in pinned if p.rumor.rumor_id in first), key=lambda p: first[p.rumor.rumor_id]
    )
    return seen + [p for p in pinned if p.rumor.rumor_id not in first]


def pin_item_rumors(rumor_ids: list[str], catalog: Catalog) -> Pinned | None:
    """For an item tagged to rumors: the most severe confirmed one with a debunk."""
    rumors = [catalog.rumors[r] for r in rumor_ids if r in catalog.rumors]
    for rumor in sorted(rumors, key=lambda r: (-r.severity, r.rumor_id)):
        options = catalog.debunks_by_rumor.get(rumor.rumor_id)
        if rumor.confirmed and options:
            return Pinned(rumor, options[0], 1.0)
    return None
