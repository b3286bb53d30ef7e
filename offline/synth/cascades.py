"""Rumor cascades: seed sharers post first, each share exposes Poisson(fanout) other users
hours later, and the chance to share decays with the rumor's age, so cascades die within a few
days; played day by day, generation by generation, carrying only the frontier."""

from __future__ import annotations

import math

import numpy as np

from domain.vocab import ACTIONS, SURFACES
from offline.synth.columns import EXPOSURE_DTYPES, Cols, concat, select, sort_by_ts
from offline.synth.library import Library
from offline.synth.population import Users
from offline.synth.streams import LUT_SIZE, Stream, lut, stream
from offline.synth.timeline import HOUR_US, SECOND_US

REACH = 0.2  # target rumor exposure rows per user over the whole window
ROWS_PER_SEED = 15.0  # mean cascade rows one seed share brings (measured; calibrates REACH)
SEED_SPREAD_H = 24.0  # independent first posts keep appearing for a day or two
SHARE_P0 = 0.15  # chance that an exposure of a fresh rumor is shared
SHARE_DECAY_H = 30.0  # ... decaying with the rumor's age
FANOUT = 6.0  # mean further exposures per share (times the sharer's influence)
DELAY_MEDIAN_H = 4.0  # lognormal delay from a share to the exposures it causes
DELAY_SIGMA = 1.1
REVISIT_P0 = 0.3  # chance that a viewer of a fresh rumor sees it again later
REVISIT_DECAY_H = 36.0
REVISIT_MEDIAN_H = 12.0
KEEP_ITEM_P = 0.8  # a child sees its parent's post; otherwise another variant
RUMOR_SURFACE_P = {"feed": 0.6, "group": 0.15, "comment": 0.1, "search": 0.08, "push": 0.05}
RUMOR_SURFACE_P["other"] = 1.0 - sum(RUMOR_SURFACE_P.values())
RUMOR_ACTION_P = {"impression": 0.72, "click": 0.15, "like": 0.08, "comment": 0.05}
SHARE = ACTIONS.index("share")

_RUMOR_SURFACE = lut(RUMOR_SURFACE_P, SURFACES)
_RUMOR_ACTION = lut(RUMOR_ACTION_P, ACTIONS)


def seed_shares(lib: Library, users: Users, seed: int, reach_per_rumor: float) -> Cols:
    """The first posts of every rumor: 1 + Poisson(virality-scaled) seed shares, the first at
    the rumor's start and the others within hours; sorted by time."""
    rng = stream(seed, Stream.SEEDS)
    count = 1 + rng.poisson(reach_per_rumor / ROWS_PER_SEED * lib.virality)
    rumor = np.repeat(np.arange(lib.n, dtype=np.int32), count)
    n = len(rumor)
    first = np.zeros(n, dtype=np.bool_)
    first[np.cumsum(count) - count] = True
    delay = (rng.exponential(SEED_SPREAD_H, n) * HOUR_US).astype(np.int64)
    seeds = {
        "rumor": rumor,
        "user": users.draw(users.seed_cum, rng, n),
        "item": lib.item_base[rumor],
        "ts": lib.t0[rumor] + np.where(first, 0, delay),
        "surface": np.full(n, SURFACES.index("feed"), dtype=np.int8),
        "action": np.full(n, SHARE, dtype=np.int8),
        "forced": np.ones(n, dtype=np.bool_),
    }
    return sort_by_ts(seeds)


def rumor_actions(cur: Cols, lib: Library, rng: np.random.Generator) -> np.ndarray:
    """Share with a probability that decays with the rumor's age; seeds always share."""
    n = len(cur["ts"])
    age_h = (cur["ts"] - lib.t0[cur["rumor"]]) / HOUR_US
    p_share = SHARE_P0 * np.exp(-np.maximum(age_h, 0.0) / SHARE_DECAY_H)
    other = _RUMOR_ACTION[rng.integers(0, LUT_SIZE, n)]
    return np.where(cur["forced"] | (rng.random(n) < p_share), SHARE, other).astype(np.int8)


def children(
    cur: Cols, lib: Library, users: Users, rng: np.random.Generator, window_end: int
) -> Cols:
    """The exposures that today's exposures cause, those after the window dropped:
    each share reaches Poisson(FANOUT x influence) other users hours later, and a viewer of a
    fresh rumor may come across it again (another friend, a search, a push) later on."""
    share = np.flatnonzero(cur["action"] == SHARE)
    k = rng.poisson(FANOUT * users.influence[cur["user"][share]])
    parent = np.repeat(share, k)
    user = users.draw(users.reach_cum, rng, len(parent))
    same = user == cur["user"][parent]
    user[same] = (user[same] + 1) % users.n
    delay = np.exp(rng.normal(math.log(DELAY_MEDIAN_H), DELAY_SIGMA, len(parent))) * HOUR_US

    age_h = (cur["ts"] - lib.t0[cur["rumor"]]) / HOUR_US
    p_again = REVISIT_P0 * np.exp(-np.maximum(age_h, 0.0) / REVISIT_DECAY_H)
    again = np.flatnonzero(rng.random(len(age_h)) < p_again)
    again_delay = np.exp(rng.normal(math.log(REVISIT_MEDIAN_H), 1.0, len(again))) * HOUR_US

    parent = np.concatenate([parent, again])
    user = np.concatenate([user, cur["user"][again]])
    delay = np.concatenate([delay, again_delay])
    m = len(parent)
    ts = cur["ts"][parent] + np.maximum(delay, 30 * SECOND_US).astype(np.int64)
    rumor = cur["rumor"][parent]
    other = lib.item_base[rumor] + (rng.random(m) * lib.item_count[rumor]).astype(np.int64)
    keep = (rng.random(m) < KEEP_ITEM_P) | (lib.item_created[other] > ts)
    children = {
        "rumor": rumor,
        "user": user,
        "item": np.where(keep, cur["item"][parent], other),
        "ts": ts,
        "surface": _RUMOR_SURFACE[rng.integers(0, LUT_SIZE, m)],
        "action": np.full(m, -1, dtype=np.int8),
        "forced": np.zeros(m, dtype=np.bool_),
    }
    return select(children, np.flatnonzero(ts < window_end))


def cascade_day(
    day: int, pending: Cols, lib: Library, users: Users, seed: int, day_end: int, window_end: int
) -> tuple[Cols, Cols]:
    """Play the cascades through one day, generation by generation: (today's rumor exposures
    sorted by time, exposures already scheduled for later days)."""
    done: list[Cols] = []
    later: list[Cols] = []
    gen = 0
    while len(pending["ts"]):
        today = pending["ts"] < day_end
        later.append(select(pending, ~today))
        cur = select(pending, today)
        if not len(cur["ts"]):
            break
        rng = stream(seed, Stream.CASCADE, day, gen)
        cur["action"] = rumor_actions(cur, lib, rng)
        done.append(cur)
        pending = children(cur, lib, users, rng, window_end)
        gen += 1
    return sort_by_ts(concat(done, EXPOSURE_DTYPES)), concat(later, EXPOSURE_DTYPES)
