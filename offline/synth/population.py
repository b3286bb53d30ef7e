"""The synthetic users: how active they are, how far their shares reach, and the preferences
planted for a ranker to recover (debunk format, trust in official sources)."""

from __future__ import annotations

import math

import numpy as np

from domain.vocab import FORMATS
from offline.synth.streams import Stream, stream

CHUNK_ROWS = 1_000_000  # about the most rows one exposure part (a block of users) holds per day
ACTIVITY_SIGMA = 1.5  # lognormal sigma of exposures/day: the top 1% make about a fifth of rows
ACTIVITY_CAP = 200.0  # no user above 200x the mean rate
INFLUENCE_SIGMA = 1.2  # lognormal sigma of the fanout multiplier: a few influencers
INFLUENCE_CAP = 50.0
FORMAT_P = (0.45, 0.30, 0.25)  # preferred debunk format, in FORMATS order
TRUSTS_OFFICIAL_P = 0.6
WEEKEND = 1.12  # Saturday and Sunday traffic factor


class Users:
    """Per-user arrays: activity, influence, planted preferences and the background blocks."""

    def __init__(self, n: int, mean_daily: float, seed: int) -> None:
        rng = stream(seed, Stream.USERS)
        shape = rng.lognormal(0.0, ACTIVITY_SIGMA, n)
        shape = np.minimum(shape / shape.mean(), ACTIVITY_CAP)
        shape /= shape.mean()
        influence = rng.lognormal(0.0, INFLUENCE_SIGMA, n)
        influence = np.minimum(influence / influence.mean(), INFLUENCE_CAP)
        self.n = n
        self.activity = shape * mean_daily  # background exposures per day
        self.influence = influence / influence.mean()
        self.pref_format = rng.choice(len(FORMATS), size=n, p=FORMAT_P).astype(np.int8)
        self.trusts = rng.random(n) < TRUSTS_OFFICIAL_P
        self.seed_cum = np.cumsum(shape)  # who posts a rumor first: the active ones
        self.reach_cum = np.cumsum(np.sqrt(shape))  # who a share reaches: broader than activity
        self.blocks = self._blocks(np.cumsum(self.activity))

    @staticmethod
    def _blocks(cum: np.ndarray) -> np.ndarray:
        """User index bounds so that a block's rows of a day stay under about CHUNK_ROWS."""
        per_block = 0.9 * CHUNK_ROWS / WEEKEND
        k = max(1, math.ceil(float(cum[-1]) / per_block))
        cuts = np.searchsorted(cum, per_block * np.arange(1, k))
        return np.unique(np.concatenate([[0], cuts, [len(cum)]])).astype(np.int64)

    def draw(self, cum: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` users drawn with probability proportional to the weights behind ``cum``."""
        u = np.searchsorted(cum, rng.random(n) * cum[-1], side="right")
        return np.minimum(u, self.n - 1).astype(np.int64)
