"""Scorers: each adds one named feature to every candidate; the selector combines them."""

from __future__ import annotations

from ranking.candidates import Candidate

# The effect of a correction fades within about two days of the exposure.
RECENCY_HALF_LIFE_S = 2 * 24 * 3600


def score_exposure_strength(candidates: list[Candidate]) -> None:
    """Stronger engagement with the rumor ranks first: 0 impression .. 4 share."""
    for c in candidates:
        c.features["strength"] = float(c.exposure.strongest_action)


def score_exposure_recency(candidates: list[Candidate], now: float) -> None:
    """Fresh exposures first: 1.0 just now, halving every two days, never above 1."""
    for c in candidates:
        age = max(0.0, now - c.exposure.last_ts)
        c.features["recency"] = 0.5 ** (age / RECENCY_HALF_LIFE_S)
