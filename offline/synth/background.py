"""Background posts and their exposures: a pool of new posts every day, Zipf popularity within
a day, fading with age; each user's ordinary rows of a day at the user's activity rate."""

from __future__ import annotations

import math

import numpy as np

from domain.vocab import ACTIONS, SURFACES
from offline.synth.columns import Cols
from offline.synth.population import Users
from offline.synth.streams import LUT_SIZE, Stream, lut, stream
from offline.synth.timeline import DAY_US, DIURNAL

BACKLOG_DAYS = 3  # items may be up to this many days old
ITEM_AGE_P = (0.55, 0.25, 0.12, 0.08)  # exposures by item age in days
BG_SURFACE_P = {"feed": 0.74, "search": 0.09, "comment": 0.07, "group": 0.05, "push": 0.03}
BG_SURFACE_P["other"] = 1.0 - sum(BG_SURFACE_P.values())
BG_ACTION_P = {"impression": 0.80, "click": 0.11, "like": 0.05, "comment": 0.025}
BG_ACTION_P["share"] = 1.0 - sum(BG_ACTION_P.values())

_BG_SURFACE = lut(BG_SURFACE_P, SURFACES)
_BG_ACTION = lut(BG_ACTION_P, ACTIONS)
_AGE = lut({str(a): p for a, p in enumerate(ITEM_AGE_P)}, tuple(map(str, range(BACKLOG_DAYS + 1))))


class Pools:
    """Background items: pool k holds the posts created on day k - BACKLOG_DAYS."""

    def __init__(self, first_item: int, per_day: int, days: int, start_us: int, seed: int) -> None:
        self.first_item = first_item
        self.per_day = per_day
        self.count = days + BACKLOG_DAYS
        self.start_us = start_us
        self.seed = seed
        self.perm = stream(seed, Stream.POOL).permutation(per_day)  # popularity rank -> slot
        self.referenced = np.zeros(self.count * per_day, dtype=np.bool_)
        self._log_size = math.log(per_day + 1.0)

    def created(self, k: int) -> np.ndarray:
        """Creation times (us) of pool k's items, by slot."""
        day_start = self.start_us + (k - BACKLOG_DAYS) * DAY_US
        rng = stream(self.seed, Stream.ITEM_TIME, k)
        return day_start + DIURNAL.offsets_us(rng.random(self.per_day))

    def draw(
        self, day: int, ts: np.ndarray, fresh_created: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """Item indices for exposures at ``ts`` on ``day``: age by ITEM_AGE_P, Zipf rank (1/k)
        within the pool by inverse CDF; a post not created yet by ``ts`` gives way to
        yesterday's of the same rank."""
        n = len(ts)
        age = _AGE[rng.integers(0, LUT_SIZE, n)].astype(np.int64)
        rank = np.exp(rng.random(n) * self._log_size).astype(np.int64) - 1
        slot = self.perm[np.clip(rank, 0, self.per_day - 1)]
        pool = day + BACKLOG_DAYS - age
        pool -= (age == 0) & (fresh_created[slot] > ts)
        local = pool * self.per_day + slot
        self.referenced[local] = True
        return self.first_item + local


def block_rows(
    day: int,
    day_start: int,
    block: int,
    users: Users,
    pools: Pools,
    fresh_created: np.ndarray,
    seed: int,
    dow: float,
) -> Cols:
    """The background rows of one day of one block of users, sorted by time: Poisson counts at
    each user's activity (times the weekday factor ``dow``), times by the diurnal rhythm."""
    lo, hi = int(users.blocks[block]), int(users.blocks[block + 1])
    rng = stream(seed, Stream.BACKGROUND, day, block)
    counts = rng.poisson(users.activity[lo:hi] * dow)
    n = int(counts.sum())
    user = rng.permutation(np.repeat(np.arange(lo, hi, dtype=np.int64), counts))
    ts = day_start + DIURNAL.sorted_offsets_us(rng, n)
    return {
        "user": user,
        "item": pools.draw(day, ts, fresh_created, rng),
        "ts": ts,
        "surface": _BG_SURFACE[rng.integers(0, LUT_SIZE, n)],
        "action": _BG_ACTION[rng.integers(0, LUT_SIZE, n)],
    }
