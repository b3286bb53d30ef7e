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


def _last_met(delivery: Delivery, debunk_id: str) -> int:
    """When the user was last served, shown or clicked ``debunk_id`` (0: never)."""
    return max(
        delivery.served.get(debunk_id, 0),
        delivery.impression.get(debunk_id, 0),
        delivery.click.get(debunk_id, 0),
    )


def repush_revised(
    candidates: list[Candidate], delivery: Delivery | None, catalog: Catalog
) -> None:
    """A rumor revised (its verdict or debunks changed, ``Rumor.revised_at``) after the user last
    met one of its debunks gets its corrected card once more, marked an update: a candidate
    left without an unseen debunk takes its most authoritative one again. Once the user is
    served (or shown) a card of the rumor after the revision, it is an ordinary seen card again:
    at most one re-push per revision; the daily caps still bound how many cards go out."""
    if delivery is None or not (delivery.served or delivery.impression or delivery.click):
        return
    for c in candidates:
        revised = c.rumor.revised_at
        if not revised or c.prebunk:
            continue
        options = catalog.debunks_by_rumor.get(c.rumor.rumor_id, ())
        met = max((_last_met(delivery, d.debunk_id) for d in options), default=0)
        if 0 < met < revised:
            c.update = True
            if c.debunk is None:
                c.debunk = options[0]
