"""Filters: rules that take candidates out, whatever their score."""

from __future__ import annotations

from domain.delivery import Delivery
from ranking.candidates import Candidate


def drop_unconfirmed_rumors(candidates: list[Candidate]) -> list[Candidate]:
    """Only confirmed rumors get debunks; withdrawn ones never do."""
    return [c for c in candidates if c.rumor.confirmed]


def drop_rumors_without_debunk(candidates: list[Candidate]) -> list[Candidate]:
    """A card needs a debunk to show."""
    return [c for c in candidates if c.debunk is not None]


def drop_dismissed_rumors(
    candidates: list[Candidate], delivery: Delivery | None
) -> list[Candidate]:
    """A rumor whose debunk the user dismissed is not pushed again."""
    if not delivery or not delivery.dismissed_rumors:
        return candidates
    return [c for c in candidates if c.rumor.rumor_id not in delivery.dismissed_rumors]
