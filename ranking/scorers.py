"""Scorers: each adds one named feature to every candidate; the selector combines them."""

from __future__ import annotations

from ranking.candidates import Candidate

# The effect of a correction fades within about two days of the exposure.
RECENCY_HALF_LIFE_S = 2 * 24 * 3600
# How much a rumor's harm weighs against freshness within one exposure strength
# (docs/decisions/0013-severity-and-category-in-the-feed.md): at 0.5, a severity-5 emergency
# seen four days ago still outranks a severity-1 rumor of no category seen just now.
PRIORITY_WEIGHT = 0.5
# Category weights in (0, 1]: rumors that put lives at risk first, then health and disasters,
# then what costs money or time. A category missing here weighs as "other".
CATEGORY_WEIGHT: dict[str, float] = {
    "emergency": 1.0,
    "public_safety": 1.0,
    "disaster": 0.9,
    "epidemic": 0.9,
    "policy": 0.7,
    "livelihood": 0.6,
    "economy": 0.6,
    "other": 0.5,
}
MAX_SEVERITY = 5


def score_exposure_strength(candidates: list[Candidate]) -> None:
    """Stronger engagement with the rumor ranks first: 0 impression .. 4 share."""
    for c in candidates:
        c.features["strength"] = float(c.exposure.strongest_action)


def score_exposure_recency(candidates: list[Candidate], now: float) -> None:
    """Fresh exposures first: 1.0 just now, halving every two days, never above 1."""
    for c in candidates:
        age = max(0.0, now - c.exposure.last_ts)
        c.features["recency"] = 0.5 ** (age / RECENCY_HALF_LIFE_S)


def rumor_priority(severity: int, category: str) -> float:
    """How urgent a rumor's debunk is, in (0, 1]: severity / 5 times the category weight."""
    level = min(max(severity, 1), MAX_SEVERITY) / MAX_SEVERITY
    return level * CATEGORY_WEIGHT.get(category, CATEGORY_WEIGHT["other"])


def score_rumor_priority(candidates: list[Candidate]) -> None:
    """Severe, urgent rumors first within a strength: ``rumor_priority`` of the candidate's
    rumor (the feed's severity and category term)."""
    for c in candidates:
        c.features["priority"] = rumor_priority(c.rumor.severity, c.rumor.category)


def score_tag_confidence(candidates: list[Candidate]) -> None:
    """How sure we are the user met the rumor at all: the exposure's tag score (1.0 through a
    hand-tagged item, the matcher's confidence through a matched one only); the combiners
    multiply the card's score by it, so a doubtful exposure ranks below an equally strong
    certain one."""
    for c in candidates:
        c.features["tag_score"] = min(max(float(c.exposure.tag_score), 0.0), 1.0)
