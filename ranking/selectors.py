"""Selectors: pick the debunk for each candidate and the final ordered cards."""

from __future__ import annotations

from domain.delivery import Delivery
from domain.records import Catalog
from ranking.candidates import Candidate
from ranking.scorers import PRIORITY_WEIGHT


def attach_most_authoritative_debunk(
    candidates: list[Candidate], catalog: Catalog, delivery: Delivery | None = None
) -> None:
    """Give each candidate the most authoritative debunk of its rumor that the user has not
    already seen or clicked (None if there is none)."""
    for c in candidates:
        options = catalog.debunks_by_rumor.get(c.rumor.rumor_id, ())
        c.debunk = next((d for d in options if not (delivery and delivery.seen(d.debunk_id))), None)


def combine_strength_then_within(candidates: list[Candidate]) -> None:
    """Score = tag score x (strength + ``within_strength`` (in [0, 1])): among certain
    exposures strength decides, then fresh exposures and severe, urgent rumors
    (``score_rumor_priority``) order the cards of one strength; a matched-only exposure's card
    weighs by the matcher's confidence (``tag_confidence``)."""
    for c in candidates:
        c.score = tag_confidence(c) * (c.features.get("strength", 0.0) + within_strength(c))


def tag_confidence(c: Candidate) -> float:
    """The card's weight for how sure the exposure is (``score_tag_confidence``; 1.0 without
    that feature)."""
    return c.features.get("tag_score", 1.0)


def within_strength(c: Candidate) -> float:
    """The rules' order within one exposure strength, in [0, 1]: recency blended with the
    rumor's priority (a candidate without a priority feature is ordered by recency alone)."""
    recency = c.features.get("recency", 0.0)
    priority = c.features.get("priority")
    if priority is None:
        return recency
    return (1 - PRIORITY_WEIGHT) * recency + PRIORITY_WEIGHT * priority


def feed_order(c: Candidate) -> tuple[float, int, int, str, str]:
    """The feed's total order: highest score, then latest exposure, then the more severe
    rumor, then claim cluster and rumor id; no two candidates of one user compare equal."""
    return (-c.score, -c.exposure.last_ts, -c.rumor.severity, c.rumor.claim_cluster,
            c.rumor.rumor_id)  # fmt: skip


def select_top(candidates: list[Candidate], limit: int) -> list[Candidate]:
    """The ``limit`` best in ``feed_order``, one per claim cluster (siblings state the same
    claim: the strongest exposure's rumor and its debunk stand for the cluster)."""
    if limit <= 0:
        return []
    seen: set[str] = set()
    out = []
    for c in sorted(candidates, key=feed_order):
        if c.rumor.claim_cluster not in seen:
            seen.add(c.rumor.claim_cluster)
            out.append(c)
            if len(out) == limit:
                break
    return out
