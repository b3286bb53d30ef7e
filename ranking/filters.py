"""Filters: rules that take candidates out, whatever their score."""

from __future__ import annotations

from domain.delivery import Delivery
from domain.records import Catalog
from ranking.candidates import Candidate


def drop_unconfirmed_rumors(candidates: list[Candidate]) -> list[Candidate]:
    """Only confirmed rumors get debunks; withdrawn ones never do."""
    return [c for c in candidates if c.rumor.confirmed]


def drop_rumors_without_debunk(candidates: list[Candidate]) -> list[Candidate]:
    """A card needs a debunk to show."""
    return [c for c in candidates if c.debunk is not None]


def drop_dismissed_rumors(
    candidates: list[Candidate], delivery: Delivery | None, catalog: Catalog | None = None
) -> list[Candidate]:
    """A rumor whose debunk the user dismissed is not pushed again, nor (given the ``catalog``)
    any rumor of its claim cluster: the user dismissed the claim, whichever post carried it."""
    if not delivery or not delivery.dismissed_rumors:
        return candidates
    dismissed = delivery.dismissed_rumors
    known = catalog.rumors if catalog is not None else {}
    claims = {known[r].claim_cluster for r in dismissed if r in known}
    return [
        c
        for c in candidates
        if c.rumor.rumor_id not in dismissed and c.rumor.claim_cluster not in claims
    ]
