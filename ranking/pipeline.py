"""The feed ranking pipeline: candidate sources, then filters, then scorers, then the selector."""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime

from domain.delivery import Delivery
from domain.models import UserModel
from domain.records import Catalog, ExposureState
from domain.vocab import ACTIONS, surfaces_from_mask
from ranking.candidates import Candidate, exposed_rumor_candidates
from ranking.filters import (
    drop_dismissed_rumors,
    drop_rumors_without_debunk,
    drop_unconfirmed_rumors,
    repush_revised,
)
from ranking.models import (
    PREBUNK_TEXT,
    attach_preferred_debunk,
    combine_policy_and_affinity,
    prebunk_candidates,
)
from ranking.scorers import (
    score_exposure_recency,
    score_exposure_strength,
    score_rumor_priority,
    score_tag_confidence,
)
from ranking.selectors import (
    attach_most_authoritative_debunk,
    combine_strength_then_within,
    select_top,
)

UPDATE_TEXT = "updated: the verdict or the debunk changed since you were shown this"


def rank_feed(
    exposures: list[ExposureState],
    catalog: Catalog,
    *,
    now: float,
    limit: int,
    delivery: Delivery | None = None,
    model: UserModel | None = None,
) -> list[Candidate]:
    """The debunk cards one user should get in their feed, best first, at most ``limit``.

    With a ``model`` (the user's side) and a catalog that carries the ranker, the model picks
    each rumor's debunk and orders cards within an exposure strength; a prebunk card (at most
    one) may follow the exposed ones. Without, the rules alone rank.
    """
    if limit <= 0 or (not exposures and (model is None or not model.prebunks)):
        return []  # nothing asked for, or nothing to rank: most users of a platform
    ranker = catalog.model if model is not None else None
    candidates = exposed_rumor_candidates(exposures, catalog)
    candidates = drop_unconfirmed_rumors(candidates)
    candidates = drop_dismissed_rumors(candidates, delivery, catalog)
    if ranker is not None and model is not None:
        attach_preferred_debunk(candidates, catalog, ranker, model, delivery)
    else:
        attach_most_authoritative_debunk(candidates, catalog, delivery)
    repush_revised(candidates, delivery, catalog)  # corrected cards go out once more
    candidates = drop_rumors_without_debunk(candidates)
    score_feed_candidates(candidates, now, ranker.weight if ranker is not None else None)
    top = select_top(candidates, limit)
    if model is not None and model.prebunks and len(top) < limit:
        top += prebunk_candidates(exposures, catalog, ranker, model, delivery)
    return top


def score_feed_candidates(candidates: list[Candidate], now: float, weight: float | None) -> None:
    """Score exposed candidates as the feed does (strength, recency, priority, tag confidence,
    then the rules' combiner, or the model's blend at ``weight`` when not None): one place, so
    the offline ranker evaluation ranks exactly as serving does."""
    score_exposure_strength(candidates)
    score_exposure_recency(candidates, now)
    score_rumor_priority(candidates)
    score_tag_confidence(candidates)
    if weight is not None:
        combine_policy_and_affinity(candidates, weight)
    else:
        combine_strength_then_within(candidates)


@functools.lru_cache(maxsize=1 << 16)
def _minute(minute: int) -> str:
    return datetime.fromtimestamp(minute * 60, UTC).strftime("%Y-%m-%d %H:%M UTC")


@functools.lru_cache(maxsize=256)
def _surfaces(mask: int) -> str:
    return "/".join(surfaces_from_mask(mask)) or "unknown surface"


def explain(candidate: Candidate) -> str:
    """One line a feed server can log: what the user did with the rumor, where and when."""
    if candidate.prebunk:
        return f"{PREBUNK_TEXT} (at-risk score {candidate.features.get('risk', 0.0):.2f})"
    if candidate.update:
        return f"{UPDATE_TEXT}; {explain(replace(candidate, update=False))}"
    e = candidate.exposure
    times = "once" if e.exposures == 1 else f"{e.exposures} times"
    debunk = candidate.debunk
    source = _source(debunk.authority) if debunk else ""
    lead = _lead(e.strongest_action, e.surface_mask)
    return f"{lead}{times}, last {_minute(e.last_ts // 60)}{source}"


@functools.lru_cache(maxsize=1024)
def _lead(action: int, mask: int) -> str:
    name = ACTIONS[action] if action < len(ACTIONS) else "unknown"
    return f"{name} on {_surfaces(mask)}, "


@functools.lru_cache(maxsize=256)
def _source(authority: str) -> str:
    return f"; most authoritative debunk ({authority})"
