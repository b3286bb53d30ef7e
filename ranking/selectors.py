"""Selectors: pick the debunk for each candidate and the final ordered cards."""

from __future__ import annotations

from domain.delivery import Delivery
from domain.records import Catalog
from ranking.candidates import Candidate


def attach_most_authoritative_debunk(
    candidates: list[Candidate], catalog: Catalog, delivery: Delivery | None = None
) -> None:
    """Give each candidate the most authoritative debunk of its rumor that the user has not
    already seen or clicked (None if there is none)."""
    for c in candidates:
        options = catalog.debunks_by_rumor.get(c.rumor.rumor_id, ())
        c.debunk = next((d for d in options if not (delivery and delivery.seen(d.debunk_id))), None)


def combine_strength_then_recency(candidates: list[Candidate]) -> None:
    """Score = strength + recency: strength decides, recency (in (0, 1]) orders within it."""
    for c in candidates:
        c.score = c.features.get("strength", 0.0) + c.features.get("recency", 0.0)


def select_top(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """The ``limit`` best, one per rumor: highest score, then latest exposure, then rumor id."""
    seen: set[str] = set()
    ordered = sorted(candidates, key=lambda c: (-c.score, -c.exposure.last_ts, c.rumor.rumor_id))
    out = []
    for c in ordered:
        if c.rumor.rumor_id not in seen:
            seen.add(c.rumor.rumor_id)
            out.append(c)
            if len(out) == limit:
                break
    return out
