"""Candidate sources: where the cards a user might get come from."""

from __future__ import annotations

from dataclasses import dataclass, field

from domain.records import Catalog, Debunk, ExposureState, Rumor


@dataclass(slots=True)
class Candidate:
    """One rumor a user might get a debunk card for, with what is known so far."""

    rumor: Rumor
    exposure: ExposureState
    debunk: Debunk | None = None
    score: float = 0.0
    features: dict[str, float] = field(default_factory=dict)
    prebunk: bool = False  # not exposed: the at-risk model expects the user to meet the rumor
    update: bool = False  # re-pushed: the rumor was revised after the user was served its card


def exposed_rumor_candidates(exposures: list[ExposureState], catalog: Catalog) -> list[Candidate]:
    """One candidate per rumor the user was exposed to that the catalog knows."""
    rumors = catalog.rumors
    return [Candidate(r, e) for e in exposures if (r := rumors.get(e.rumor_id)) is not None]
