"""Pinned debunks: what goes on top of search results and into group-chat warnings, chosen from
matcher results on plain data.

Every order here is total (score, then severity, then claim cluster and rumor id), so the same
text pins the same rumor on SearchTop and GroupWarnings, whatever order the store or the
matcher handed the candidates over in, and after a restart."""

from __future__ import annotations

from dataclasses import dataclass

from domain.records import Catalog, Debunk, ExposureState, Rumor
from matching import Match

# How many matches both text surfaces ask the matcher for: the same depth on SearchTop and
# GroupWarnings, so a text's candidates (and so its first pin) are the same on both; more than
# SearchTop's largest limit (10), so rumors without a debunk do not empty an answer.
MATCH_DEPTH = 16
# Claim clusters whose rumor-id sets are kept between calls (two catalogs' worth of clusters).
MAX_CLAIM_SETS = 20_000
_CLAIM_SETS: dict[int, tuple[tuple[str, ...], frozenset[str]]] = {}


@dataclass(frozen=True, slots=True)
class Pinned:
    """A rumor recognised on a surface, the debunk to pin for it, and how sure the match is."""

    rumor: Rumor
    debunk: Debunk
    score: float


def match_order(m: Match, catalog: Catalog) -> tuple[float, float, int, str, str]:
    """Best match first: the higher score, then the stronger unsaturated evidence (the
    matcher's own order of equal scores, decision 0056), then the more severe rumor, then the
    smaller claim cluster id and rumor id (a rumor the catalog does not know sorts as severity
    0)."""
    rumor = catalog.rumors.get(m.rumor_id)
    severity = rumor.severity if rumor else 0
    cluster = rumor.claim_cluster if rumor else m.rumor_id
    return (-m.score, -m.evidence, -severity, cluster, m.rumor_id)


def pin_matches(matches: list[Match], catalog: Catalog, threshold: float) -> list[Pinned]:
    """Confirmed rumors matched at or above ``threshold`` that have a debunk, in ``match_order``,
    one per claim cluster (siblings state the same claim; the best-matched one stands for it)."""
    out, seen = [], set()
    for m in sorted(matches, key=lambda m: match_order(m, catalog)):
        rumor = catalog.rumors.get(m.rumor_id)
        options = catalog.debunks_by_rumor.get(m.rumor_id)
        if m.score < threshold or not rumor or not rumor.confirmed or not options:
            continue
        if rumor.claim_cluster not in seen:
            seen.add(rumor.claim_cluster)
            out.append(Pinned(rumor, options[0], m.score))
    return out


def first_seen_first(
    pinned: list[Pinned], exposures: list[ExposureState], catalog: Catalog | None = None
) -> list[Pinned]:
    """Matched claims the searcher was exposed to come first, earliest exposure first (ties in
    pinned order). Given the ``catalog``, an exposure to a sibling rumor counts for its claim
    cluster."""
    first: dict[str, int] = {}
    for e in exposures:
        rumor = catalog.rumors.get(e.rumor_id) if catalog is not None else None
        key = rumor.claim_cluster if rumor else e.rumor_id
        first[key] = min(first.get(key, e.first_ts), e.first_ts)

    def key(p: Pinned) -> str:
        return p.rumor.claim_cluster if catalog is not None else p.rumor.rumor_id

    exposed = [i for i, p in enumerate(pinned) if key(p) in first]
    seen = sorted(exposed, key=lambda i: (first[key(pinned[i])], i))
    return [pinned[i] for i in seen] + [p for p in pinned if key(p) not in first]


def item_order(rumor: Rumor) -> tuple[int, str, str]:
    """The rumors of one tagged item, first first: the most severe, then by claim cluster and
    rumor id. The nightly job resolves tag precedence before the item index is written (a
    manual tag's item carries only its manual rumors; one rumor per claim cluster), so this
    order only ever compares tags of one source."""
    return (-rumor.severity, rumor.claim_cluster, rumor.rumor_id)


def pin_item_rumors(rumor_ids: list[str], catalog: Catalog) -> Pinned | None:
    """For an item tagged to rumors: the first confirmed one with a debunk in ``item_order``."""
    rumors = [catalog.rumors[r] for r in rumor_ids if r in catalog.rumors]
    for rumor in sorted(rumors, key=item_order):
        options = catalog.debunks_by_rumor.get(rumor.rumor_id)
        if rumor.confirmed and options:
            return Pinned(rumor, options[0], 1.0)
    return None


def claim_rumor_ids(pinned: list[Pinned], catalog: Catalog) -> list[str]:
    """The rumor ids whose exposures count for the claims of ``pinned``: each pinned rumor and
    its siblings, sorted."""
    return sorted({r for p in pinned for r in catalog.claim_rumors(p.rumor.rumor_id)})


def claim_rumor_count(pinned: list[Pinned], catalog: Catalog) -> int:
    """How many rumor ids ``claim_rumor_ids`` would list at most (without listing them), to
    choose how exposures are read."""
    return sum(len(catalog.claim_rumors(p.rumor.rumor_id)) for p in pinned)


def exposed_to_claim(
    pinned: Pinned, member_rumors: list[set[str]], members: list[str], catalog: Catalog
) -> list[str]:
    """The ``members`` (in their order) exposed to ``pinned``'s claim: to its rumor or to a
    sibling; ``member_rumors[i]`` holds the rumor ids ``members[i]`` is exposed to (at least
    those of the claim)."""
    claim = catalog.claim_rumors(pinned.rumor.rumor_id)
    if len(claim) == 1:
        (only,) = claim
        return [m for m, seen in zip(members, member_rumors, strict=True) if only in seen]
    rumors = _claim_set(claim)
    return [
        m for m, seen in zip(members, member_rumors, strict=True) if not rumors.isdisjoint(seen)
    ]


def _claim_set(claim: tuple[str, ...]) -> frozenset[str]:
    """``claim``'s rumor ids as a set, built once per claim tuple of a loaded catalog (a large
    cluster's set costs more than the rest of a warning); the tuple is kept in the entry, so an
    id is never reused while its entry lives."""
    hit = _CLAIM_SETS.get(id(claim))
    if hit is None or hit[0] is not claim:
        if len(_CLAIM_SETS) >= MAX_CLAIM_SETS:
            _CLAIM_SETS.clear()
        hit = _CLAIM_SETS[id(claim)] = (claim, frozenset(claim))
    return hit[1]
