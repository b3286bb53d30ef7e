"""A deterministic, streaming synthetic world with every input contract of the nightly job.

``synthesize`` writes exposure logs (``dt=`` partitions), the rumor library (rumors, tagged items,
ClaimReview debunks), item texts, the platform's debunk events and the planted truth. Exposures
are generated day by day in chunks of at most about a million rows (one Parquet part per block
of users, written on a worker thread while the next block is generated). Between days only the
cascade frontier (rumor exposures already scheduled for later days), pending debunk events, the
(user, rumor) pairs already served and a bitmap of referenced items are carried, so worlds of
100M+ rows fit in bounded memory: per-user arrays plus a couple of chunks.

The shape of the world:
- users: lognormal activity (a heavy tail of very active users), a fanout multiplier
  (a few influencers), a preferred debunk format and a trust in official sources;
- background posts: new items every day, Zipf popularity within a day, fading with age;
- rumors: cascades from seed sharers; each share exposes Poisson(fanout) other users hours
  later; the chance to share decays with the rumor's age, so cascades die within a few days;
- debunk events: exposed users of confirmed rumors are served one of the rumor's published
  debunks at random, and click far more often on their preferred format and (when trusting)
  on official sources: the preferences a ranker should recover.

Determinism: every random draw comes from a PCG64 stream keyed by (seed, purpose, day, ...)
through ``SeedSequence(seed, spawn_key=...)``; nothing reads the clock; JSON keys are sorted.
The same parameters give byte-identical files.
"""

from __future__ import annotations

import json
import math
import os
import re
import sys
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from enum import IntEnum
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from domain.experiments import Arm, Experiment, parse_arms
from domain.vocab import (
    ACTIONS,
    AUTHORITIES,
    CATEGORIES,
    DEBUNK_EVENTS,
    FORMATS,
    SURFACES,
    VERDICTS,
)
from offline.io.contracts import (  # noqa: E402
    EVENT_SCHEMA,
    EXPOSURE_SCHEMA,
    ITEM_SCHEMA,
    TAG_SCHEMA,
    TS,
)
from offline.synth import texts

TRUTH_USER_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("preferred_format", pa.string()),
        ("trusts_official", pa.bool_()),
        ("activity", pa.float64()),
    ]
)
TRUTH_ITEM_SCHEMA = pa.schema(
    [
        ("item_id", pa.string()),
        ("rumor_id", pa.string()),
        ("kind", pa.string()),
        ("tagged", pa.bool_()),
    ]
)
PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}
PART_NAME = re.compile(r"^part-\d{5}\.parquet$")

CHUNK_ROWS = 1_000_000
SECOND_US = 1_000_000
HOUR_US = 3600 * SECOND_US
DAY_US = 24 * HOUR_US
NEVER = np.iinfo(np.int64).max
LUT_SIZE = 4096

# Users.
ACTIVITY_SIGMA = 1.5  # lognormal sigma of exposures/day: the top 1% make about a fifth of rows
ACTIVITY_CAP = 200.0  # no user above 200x the mean rate
INFLUENCE_SIGMA = 1.2  # lognormal sigma of the fanout multiplier: a few influencers
INFLUENCE_CAP = 50.0
FORMAT_P = (0.45, 0.30, 0.25)  # preferred debunk format, in FORMATS order
TRUSTS_OFFICIAL_P = 0.6
WEEKEND = 1.12  # Saturday and Sunday traffic factor

# Background items.
BACKLOG_DAYS = 3  # items may be up to this many days old
ITEM_AGE_P = (0.55, 0.25, 0.12, 0.08)  # exposures by item age in days
BG_SURFACE_P = {"feed": 0.74, "search": 0.09, "comment": 0.07, "group": 0.05, "push": 0.03}
BG_SURFACE_P["other"] = 1.0 - sum(BG_SURFACE_P.values())
BG_ACTION_P = {"impression": 0.80, "click": 0.11, "like": 0.05, "comment": 0.025}
BG_ACTION_P["share"] = 1.0 - sum(BG_ACTION_P.values())

# Rumors and cascades.
CATEGORY_P = {
    "policy": 0.14,
    "emergency": 0.12,
    "disaster": 0.12,
    "epidemic": 0.14,
    "public_safety": 0.16,
    "livelihood": 0.16,
    "economy": 0.10,
    "other": 0.06,
}
SEVERITY_BASE = {"emergency": 4, "disaster": 4, "epidemic": 4, "public_safety": 4, "other": 2}
VERDICT_P = (0.7, 0.2, 0.1)
WITHDRAWN_P = 0.05
OFFICIAL_P = 0.6  # share of rumors with an official debunk
DEBUNK_FORMAT_P = (0.45, 0.25, 0.30)
REACH = 0.2  # target rumor exposure rows per user over the whole window
ROWS_PER_SEED = 15.0  # mean cascade rows one seed share brings (measured; calibrates REACH)
VIRALITY_SIGMA = 0.9
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

# Debunk serving and the planted preferences.
SERVE_P = 0.8
SERVE_DELAY_H = 2.0
SERVE_SURFACE_P = {"feed": 0.6, "comment": 0.15, "search": 0.1, "group": 0.15}
IMPRESSION_P = 0.85
CLICK_BASE = 0.03
CLICK_PREFERRED_FORMAT = 0.20
CLICK_TRUSTED_OFFICIAL = 0.12
DISMISS_P = 0.35
DISMISS_PREFERRED_P = 0.15
SHARE_AFTER_CLICK_P = 0.15
MORE_CARDS_DELAY_H = 12.0  # with cards > 1: later cards of the same rumor come hours apart

SHARE = ACTIONS.index("share")
OFFICIAL = AUTHORITIES.index("official")
EVENT = {e: i for i, e in enumerate(DEBUNK_EVENTS)}

# "0000".."9999" as little-endian uint32: four ASCII digits written with one store.
_DIGITS4 = np.array([int.from_bytes(f"{i:04d}".encode(), "little") for i in range(10_000)], "<u4")


class _S(IntEnum):
    """Purposes of the random streams: each (purpose, key...) is an independent stream."""

    USERS = 1
    LIBRARY = 2
    RUMOR = 3
    SEEDS = 4
    POOL = 5
    ITEM_TIME = 6
    ITEM_TEXT = 7
    BACKGROUND = 8
    CASCADE = 9
    SERVE = 10
    SERVE_MORE = 11


def _rng(seed: int, purpose: _S, *key: int) -> np.random.Generator:
    """The stream for (seed, purpose, key): independent of every other and of chunk sizes."""
    ss = np.random.SeedSequence(seed, spawn_key=(int(purpose), *(int(k) for k in key)))
    return np.random.Generator(np.random.PCG64(ss))


def _lut(probs: dict[str, float], names: tuple[str, ...]) -> np.ndarray:
    """A lookup table for fast categorical draws: ``lut[integers(LUT_SIZE)]`` is a name index."""
    p = np.array([probs.get(n, 0.0) for n in names], dtype=np.float64)
    cdf = np.cumsum(p / p.sum())
    return np.minimum(
        np.searchsorted(cdf, (np.arange(LUT_SIZE) + 0.5) / LUT_SIZE, side="right"), len(names) - 1
    ).astype(np.int8)


_BG_SURFACE = _lut(BG_SURFACE_P, SURFACES)
_BG_ACTION = _lut(BG_ACTION_P, ACTIONS)
_RUMOR_SURFACE = _lut(RUMOR_SURFACE_P, SURFACES)
_RUMOR_ACTION = _lut(RUMOR_ACTION_P, ACTIONS)
_SERVE_SURFACE = _lut(SERVE_SURFACE_P, SURFACES)
_AGE = _lut({str(a): p for a, p in enumerate(ITEM_AGE_P)}, tuple(map(str, range(BACKLOG_DAYS + 1))))
_SURFACE_NAMES = pa.array(SURFACES, pa.string())
_ACTION_NAMES = pa.array(ACTIONS, pa.string())
_EVENT_NAMES = pa.array(DEBUNK_EVENTS, pa.string())
# Logs are written without the Arrow schema, so dictionary-encoded columns read back as plain
# strings: writing the codes directly skips hashing a million strings per chunk.
LOG_OPTIONS: dict[str, Any] = {
    "store_schema": False,
    "use_dictionary": ["surface", "action", "event"],
    "write_statistics": ["ts", "surface", "action", "event"],  # ids are random: no use
}


class _Diurnal:
    """Time of day of activity (UTC) for users in China (UTC+8): quiet at night, peaks at lunch
    and in the evening."""

    LOCAL = (2, 1, 0.6, 0.4, 0.4, 0.6, 1.5, 3, 4, 4.5, 4.5, 5, 6, 5.5, 4.5, 4.5, 4.5, 5, 5.5,
             6.5, 7.5, 8, 7, 4.5)  # fmt: skip

    GUIDE = 1 << 16  # finer than the smallest hour's share, so a bucket spans <= 1 boundary

    def __init__(self) -> None:
        w = np.roll(np.array(self.LOCAL, dtype=np.float64), -8)  # w[utc hour]
        self.cdf = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
        self.cdf[-1] = 1.0
        starts = np.arange(self.GUIDE) / self.GUIDE
        self.guide = np.searchsorted(self.cdf, starts, side="right") - 1

    def offsets_us(self, u: np.ndarray) -> np.ndarray:
        """Microseconds into the day for quantiles ``u`` in [0, 1); monotone in ``u``."""
        h = self.guide[(u * self.GUIDE).astype(np.int64)]
        h = np.minimum(h + (u >= self.cdf[h + 1]), 23)
        frac = (u - self.cdf[h]) / (self.cdf[h + 1] - self.cdf[h])
        return np.minimum(((h + frac) * HOUR_US).astype(np.int64), DAY_US - 1)

    def sorted_offsets_us(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` sorted times of day, drawn in O(n) from exponential spacings (no sort)."""
        c = np.cumsum(rng.standard_exponential(n + 1))
        return self.offsets_us(c[:n] / c[n])


DIURNAL = _Diurnal()


def fixed_ids(idx: np.ndarray, prefix: str, width: int) -> pa.Array:
    """Ids like ``u00000042`` written straight into an Arrow buffer: a packed record per id
    (prefix bytes, leading digits, 4-digit groups from a lookup table), no Python per row."""
    idx = np.asarray(idx, dtype=np.int64)
    n = len(idx)
    if n and (idx.min() < 0 or idx.max() >= 10**width):
        raise ValueError(f"id out of range for {prefix}{'9' * width}")
    lead, groups = width % 4, width // 4
    layout = np.dtype(
        [(f"p{j}", "u1") for j in range(len(prefix))]
        + [(f"l{j}", "u1") for j in range(lead)]
        + [(f"g{j}", "<u4") for j in range(groups)]
    )
    out = np.empty(n, dtype=layout)
    for j, byte in enumerate(prefix.encode()):
        out[f"p{j}"] = byte
    rest = idx
    for j in reversed(range(groups)):
        out[f"g{j}"] = _DIGITS4[rest % 10_000]
        rest = rest // 10_000
    for j in reversed(range(lead)):
        out[f"l{j}"] = rest % 10 + ord("0")
        rest = rest // 10
    offsets = np.arange(0, layout.itemsize * (n + 1), layout.itemsize, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(out.view(np.uint8)))


def user_ids(idx: np.ndarray) -> pa.Array:
    """``u%08d`` ids."""
    return fixed_ids(idx, "u", 8)


def item_ids(idx: np.ndarray) -> pa.Array:
    """``i%09d`` ids."""
    return fixed_ids(idx, "i", 9)


def rumor_ids(idx: np.ndarray) -> pa.Array:
    """``r%06d`` ids."""
    return fixed_ids(idx, "r", 6)


def debunk_ids(idx: np.ndarray) -> pa.Array:
    """``d%07d`` ids."""
    return fixed_ids(idx, "d", 7)


def _iso(us: int) -> str:
    """ISO 8601 UTC with a Z, to the second."""
    t = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=int(us))
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _to_minute(us: np.ndarray | int) -> Any:
    """Microsecond times truncated to the minute (library times read like an editor's)."""
    return us // (60 * SECOND_US) * (60 * SECOND_US)


# ---------------------------------------------------------------------------------------------
# Columns: a dict of equally long numpy arrays (one generation of a cascade, a day of events).

Cols = dict[str, np.ndarray]
_EXPOSURE_DTYPES = {
    "rumor": np.int32,
    "user": np.int64,
    "item": np.int64,
    "ts": np.int64,
    "surface": np.int8,
    "action": np.int8,
    "forced": np.bool_,
}
_EVENT_DTYPES = {
    "user": np.int64,
    "debunk": np.int64,
    "rumor": np.int32,
    "surface": np.int8,
    "event": np.int8,
    "ts": np.int64,
}


def _sel(cols: Cols, idx: np.ndarray) -> Cols:
    """The rows ``idx`` (indices or a mask) of every column."""
    return {k: v[idx] for k, v in cols.items()}


def _cat(parts: list[Cols], dtypes: dict[str, Any]) -> Cols:
    """Concatenate column sets; empty ones typed by ``dtypes``."""
    parts = [p for p in parts if len(p["ts"])]
    if not parts:
        return {k: np.empty(0, dtype=t) for k, t in dtypes.items()}
    return {k: np.concatenate([p[k] for p in parts]) for k in dtypes}


def _sort_by_ts(cols: Cols) -> Cols:
    """Rows in time order; ties keep their order, so the result is deterministic."""
    return _sel(cols, np.argsort(cols["ts"], kind="stable"))


# ---------------------------------------------------------------------------------------------
# Users.


class _Users:
    """Per-user arrays: activity, influence, planted preferences and the background blocks."""

    def __init__(self, n: int, mean_daily: float, seed: int) -> None:
        rng = _rng(seed, _S.USERS)
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


# ---------------------------------------------------------------------------------------------
# The rumor library: rumors, their items, their debunks.


class _Library:
    """Rumors with their items and debunks, as records for the files and arrays for the sim."""

    def __init__(self, seed: int, rumors: int, start_us: int, days: int) -> None:
        rng = _rng(seed, _S.LIBRARY)
        r_n = rumors
        self.category = rng.choice(len(CATEGORIES), size=r_n, p=[CATEGORY_P[c] for c in CATEGORIES])
        window = max(days * DAY_US - 6 * HOUR_US, HOUR_US)
        self.t0 = _to_minute(start_us + (rng.random(r_n) * window).astype(np.int64))
        withdrawn = rng.random(r_n) < WITHDRAWN_P
        if r_n >= 10 and not withdrawn.any():
            withdrawn[int(rng.integers(r_n))] = True
        self.confirmed = ~withdrawn
        virality = rng.lognormal(0.0, VIRALITY_SIGMA, r_n)
        self.virality = virality / virality.mean() if r_n else virality

        self.records: list[dict[str, Any]] = []
        self.claim_reviews: list[dict[str, Any]] = []
        self.item_text: list[str] = []
        self.item_kind: list[str] = []
        item_rumor: list[int] = []
        item_created: list[int] = []
        item_tagged: list[bool] = []
        self.item_base = np.zeros(r_n, dtype=np.int64)
        self.item_count = np.zeros(r_n, dtype=np.int64)
        self.pub = np.full((r_n, len(AUTHORITIES)), NEVER, dtype=np.int64)
        self.debunk = np.full((r_n, len(AUTHORITIES)), -1, dtype=np.int64)
        self.debunk_format = np.zeros((r_n, len(AUTHORITIES)), dtype=np.int8)
        self.debunk_authority = np.zeros((r_n, len(AUTHORITIES)), dtype=np.int8)
        seen: set[str] = set()
        for r in range(r_n):
            rr = _rng(seed, _S.RUMOR, r)
            category = CATEGORIES[self.category[r]]
            claim, keywords, city = self._claim(category, rr, seen)
            variants = texts.known_variants(claim, rr, int(rr.integers(2, 6)))
            t0 = int(self.t0[r])
            texts_r, created, tagged = self._items(claim, variants, city, t0, rr)
            self.item_base[r] = len(item_rumor)
            self.item_count[r] = len(texts_r)
            self.item_text += texts_r
            self.item_kind += ["original"] + ["variant"] * (len(texts_r) - 1)
            item_rumor += [r] * len(texts_r)
            item_created += created
            item_tagged += tagged
            severity = SEVERITY_BASE.get(category, 3) + int(rr.integers(-1, 2))
            confirmed_after = np.clip(rr.lognormal(math.log(10.0), 0.6), 1.0, 72.0) * HOUR_US
            self.records.append(
                {
                    "rumor_id": f"r{r:06d}",
                    "claim": claim,
                    "category": category,
                    "severity": int(min(max(severity, 1), 5)),
                    "keywords": keywords,
                    "verdict": VERDICTS[int(rr.choice(len(VERDICTS), p=VERDICT_P))],
                    "status": "confirmed" if self.confirmed[r] else "withdrawn",
                    "confirmed_at": _iso(_to_minute(t0 + int(confirmed_after))),
                    "variants": variants,
                }
            )
            self._debunks(r, claim, category, city, t0, rr)
        self.item_rumor = np.array(item_rumor, dtype=np.int32)
        self.item_created = np.array(item_created, dtype=np.int64)
        self.item_tagged = np.array(item_tagged, dtype=np.bool_)

    @staticmethod
    def _claim(
        category: str, rng: np.random.Generator, seen: set[str]
    ) -> tuple[str, list[str], str]:
        """A claim not used by an earlier rumor (redrawn on a collision)."""
        for _ in range(50):
            claim, keywords, city = texts.make_claim(category, rng)
            if claim not in seen:
                break
        else:
            claim += f"（{len(seen)}）"
        seen.add(claim)
        return claim, keywords, city

    @staticmethod
    def _items(
        claim: str, variants: list[str], city: str, t0: int, rng: np.random.Generator
    ) -> tuple[list[str], list[int], list[bool]]:
        """The rumor's posts: the original, then noisy reposts appearing over a day and a half;
        the original and about half of the others are tagged by hand."""
        n = 3 + min(int(rng.poisson(4.0)), 13)
        phrasings = [claim, *variants]
        out = [claim] + [
            texts.noisy_variant(texts.pick(rng, phrasings), rng, city) for _ in range(n - 1)
        ]
        created = [t0] + [
            t0 + int(x)
            for x in np.sort(rng.random(n - 1) * 36 * HOUR_US).astype(np.int64) + 300 * SECOND_US
        ]
        tagged = [True] + [bool(x) for x in rng.random(n - 1) < 0.5]
        if all(tagged):
            tagged[-1] = False
        return out, created, tagged

    def _debunks(
        self, r: int, claim: str, category: str, city: str, t0: int, rng: np.random.Generator
    ) -> None:
        """2-4 ClaimReviews from different authorities, published hours to days after t0."""
        others = [AUTHORITIES[i] for i in rng.permutation(np.arange(1, len(AUTHORITIES)))]
        want = int(rng.integers(2, 5))
        pool = ["official", *others] if rng.random() < OFFICIAL_P else others
        chosen = pool[: min(want, len(pool))]
        first = np.clip(rng.lognormal(math.log(6.0), 0.7), 1.0, 48.0) * HOUR_US
        gaps = np.clip(rng.exponential(10.0, len(chosen)), 0.5, 48.0) * HOUR_US
        gaps[0] = first
        published = _to_minute(t0 + np.cumsum(gaps).astype(np.int64))
        short = texts.claim_short(claim)
        for k, authority in enumerate(chosen):
            d = len(self.claim_reviews)
            if authority == "official":
                publisher = texts.official_publisher(category, city, rng)
            else:
                publisher = texts.pick(rng, texts.PUBLISHERS[authority])
            fmt = FORMATS[int(rng.choice(len(FORMATS), p=DEBUNK_FORMAT_P))]
            language = "en" if authority == "media" and rng.random() < 0.05 else "zh"
            self.pub[r, k] = published[k]
            self.debunk[r, k] = d
            self.debunk_format[r, k] = FORMATS.index(fmt)
            self.debunk_authority[r, k] = AUTHORITIES.index(authority)
            self.claim_reviews.append(
                {
                    "@context": "https://schema.org",
                    "@type": "ClaimReview",
                    "identifier": f"d{d:07d}",
                    "url": f"https://debunk.example/d/d{d:07d}",
                    "headline": texts.headline(short, publisher, rng, language),
                    "claimReviewed": claim,
                    "itemReviewed": {"@type": "Claim", "identifier": f"r{r:06d}"},
                    "reviewRating": {
                        "@type": "Rating",
                        "ratingValue": 1,
                        "bestRating": 5,
                        "worstRating": 1,
                        "alternateName": self.records[r]["verdict"],
                    },
                    "author": {
                        "@type": "Organization",
                        "name": publisher,
                        "additionalType": authority,
                    },
                    "additionalType": fmt,
                    "inLanguage": language,
                    "datePublished": _iso(int(published[k])),
                }
            )

    @property
    def n(self) -> int:
        """The number of rumors."""
        return len(self.records)


# ---------------------------------------------------------------------------------------------
# Background items: one pool of new posts per day, Zipf popularity, fading with age.


class _Pools:
    """Background items: pool k holds the posts created on day k - BACKLOG_DAYS."""

    def __init__(self, first_item: int, per_day: int, days: int, start_us: int, seed: int) -> None:
        self.first_item = first_item
        self.per_day = per_day
        self.count = days + BACKLOG_DAYS
        self.start_us = start_us
        self.seed = seed
        self.perm = _rng(seed, _S.POOL).permutation(per_day)  # popularity rank -> slot
        self.referenced = np.zeros(self.count * per_day, dtype=np.bool_)
        self._log_size = math.log(per_day + 1.0)

    def created(self, k: int) -> np.ndarray:
        """Creation times (us) of pool k's items, by slot."""
        day_start = self.start_us + (k - BACKLOG_DAYS) * DAY_US
        return day_start + DIURNAL.offsets_us(_rng(self.seed, _S.ITEM_TIME, k).random(self.per_day))

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


# ---------------------------------------------------------------------------------------------
# Rumor cascades.


def _seeds(lib: _Library, users: _Users, seed: int, reach_per_rumor: float) -> Cols:
    """The first posts of every rumor: 1 + Poisson(virality-scaled) seed shares, the first at
    the rumor's start and the others within hours; sorted by time."""
    rng = _rng(seed, _S.SEEDS)
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
    return _sort_by_ts(seeds)


def _rumor_actions(cur: Cols, lib: _Library, rng: np.random.Generator) -> np.ndarray:
    """Share with a probability that decays with the rumor's age; seeds always share."""
    n = len(cur["ts"])
    age_h = (cur["ts"] - lib.t0[cur["rumor"]]) / HOUR_US
    p_share = SHARE_P0 * np.exp(-np.maximum(age_h, 0.0) / SHARE_DECAY_H)
    other = _RUMOR_ACTION[rng.integers(0, LUT_SIZE, n)]
    return np.where(cur["forced"] | (rng.random(n) < p_share), SHARE, other).astype(np.int8)


def _children(
    cur: Cols, lib: _Library, users: _Users, rng: np.random.Generator, window_end: int
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
    return _sel(children, np.flatnonzero(ts < window_end))


def _cascade_day(
    day: int, pending: Cols, lib: _Library, users: _Users, seed: int, day_end: int, window_end: int
) -> tuple[Cols, Cols]:
    """Play the cascades through one day, generation by generation: (today's rumor exposures
    sorted by time, exposures already scheduled for later days)."""
    done: list[Cols] = []
    later: list[Cols] = []
    gen = 0
    while len(pending["ts"]):
        today = pending["ts"] < day_end
        later.append(_sel(pending, ~today))
        cur = _sel(pending, today)
        if not len(cur["ts"]):
            break
        rng = _rng(seed, _S.CASCADE, day, gen)
        cur["action"] = _rumor_actions(cur, lib, rng)
        done.append(cur)
        pending = _children(cur, lib, users, rng, window_end)
        gen += 1
    return _sort_by_ts(_cat(done, _EXPOSURE_DTYPES)), _cat(later, _EXPOSURE_DTYPES)


# ---------------------------------------------------------------------------------------------
# Debunk serving with planted preferences.


def _serve(
    day: int,
    rows: Cols,
    lib: _Library,
    users: _Users,
    handled: np.ndarray,
    seed: int,
    window_end: int,
    serve_p: np.ndarray | None = None,
    cards: int = 1,
) -> tuple[Cols, np.ndarray]:
    """Serve debunk cards to exposed users of confirmed rumors (``cards`` distinct debunks per
    user and rumor at most, the first after the rumor's first debunk is out), and play out
    impression, click, dismiss and share."""
    rng = _rng(seed, _S.SERVE, day)
    conf = np.flatnonzero(lib.confirmed[rows["rumor"]])
    keys = rows["user"][conf] * max(lib.n, 1) + rows["rumor"][conf]
    keys, first = np.unique(keys, return_index=True)
    new = ~np.isin(keys, handled, assume_unique=True)
    handled = np.union1d(handled, keys)
    idx = conf[first[new]]
    p = SERVE_P if serve_p is None else serve_p[rows["user"][idx]]
    idx = idx[rng.random(len(idx)) < p]
    n = len(idx)
    user, rumor = rows["user"][idx], rows["rumor"][idx]
    wait = (rng.exponential(SERVE_DELAY_H, n) * HOUR_US).astype(np.int64) + 60 * SECOND_US
    served_ts = np.maximum(rows["ts"][idx], lib.pub[rumor, 0]) + wait
    available = (lib.pub[rumor] <= served_ts[:, None]).sum(axis=1)
    k = np.minimum((rng.random(n) * available).astype(np.int64), np.maximum(available - 1, 0))
    if cards > 1:
        user, rumor, k, served_ts = _more_cards(
            _rng(seed, _S.SERVE_MORE, day), lib, user, rumor, k, served_ts, cards
        )
        n = len(user)
    fmt, authority = lib.debunk_format[rumor, k], lib.debunk_authority[rumor, k]
    preferred = fmt == users.pref_format[user]
    official = authority == OFFICIAL
    trusts = users.trusts[user]
    p_click = CLICK_BASE + CLICK_PREFERRED_FORMAT * preferred
    p_click = p_click + CLICK_TRUSTED_OFFICIAL * (official & trusts)
    p_click = np.where(official & ~trusts, p_click * 0.5, p_click)
    p_dismiss = np.where(preferred, DISMISS_PREFERRED_P, DISMISS_P)
    seen = rng.random(n) < IMPRESSION_P
    u = rng.random(n)
    click = seen & (u < p_click)
    dismiss = seen & ~click & (u < p_click + p_dismiss)
    share = click & (rng.random(n) < SHARE_AFTER_CLICK_P)
    imp_ts = served_ts + (rng.uniform(1, 30, n) * SECOND_US).astype(np.int64)
    click_ts = imp_ts + (rng.uniform(2, 90, n) * SECOND_US).astype(np.int64)
    dismiss_ts = imp_ts + (rng.uniform(1, 20, n) * SECOND_US).astype(np.int64)
    share_ts = click_ts + (rng.uniform(10, 600, n) * SECOND_US).astype(np.int64)
    card = {
        "user": user,
        "debunk": lib.debunk[rumor, k],
        "rumor": rumor,
        "surface": _SERVE_SURFACE[rng.integers(0, LUT_SIZE, n)],
    }
    parts = []
    for name, mask, ts in (
        ("served", np.ones(n, dtype=np.bool_), served_ts),
        ("impression", seen, imp_ts),
        ("click", click, click_ts),
        ("dismiss", dismiss, dismiss_ts),
        ("share", share, share_ts),
    ):
        part = _sel({**card, "ts": ts}, mask & (ts < window_end))
        part["event"] = np.full(len(part["ts"]), EVENT[name], dtype=np.int8)
        parts.append(part)
    return _cat(parts, _EVENT_DTYPES), handled


def _more_cards(
    rng: np.random.Generator,
    lib: _Library,
    user: np.ndarray,
    rumor: np.ndarray,
    k: np.ndarray,
    served_ts: np.ndarray,
    cards: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Up to ``cards - 1`` further distinct debunks of the same rumor, each hours after the
    previous card, chosen at random among those published by then; appended after the first."""
    used = np.zeros((len(k), lib.pub.shape[1]), dtype=np.bool_)
    used[np.arange(len(k)), k] = True
    parts = [(user, rumor, k, served_ts)]
    ts = served_ts
    for _ in range(cards - 1):
        ts = ts + (rng.exponential(MORE_CARDS_DELAY_H, len(ts)) * HOUR_US).astype(np.int64)
        key = rng.random(used.shape)
        key[used | (lib.pub[rumor] > ts[:, None])] = np.inf
        pick = key.argmin(axis=1)
        ok = np.isfinite(key[np.arange(len(pick)), pick])
        used[np.arange(len(pick)), pick] |= ok
        parts.append((user[ok], rumor[ok], pick[ok], ts[ok]))
    return tuple(np.concatenate(cols) for cols in zip(*parts, strict=True))  # type: ignore[return-value]


# ---------------------------------------------------------------------------------------------
# Writing.


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path next to ``path``; on success move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class _Writer:
    """Writes Parquet parts on one worker thread while the next chunk is generated (pyarrow
    encodes without the GIL). At most ``depth`` parts wait, so memory stays bounded; the
    first error is raised in the caller."""

    def __init__(self, depth: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth-writer")
        self._pending: deque[Future[None]] = deque()
        self._depth = depth

    def submit(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(fn, *args, **kwargs))

    def __enter__(self) -> _Writer:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def _write_parquet(table: pa.Table, path: Path, **options: Any) -> None:
    """One Parquet file, written aside and moved into place."""
    with _atomic(path) as tmp:
        pq.write_table(table, tmp, **{**PARQUET_OPTIONS, **options})


def _write_text(text: str, path: Path) -> None:
    """One UTF-8 text file, written aside and moved into place."""
    with _atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def _exposure_table(rows: Cols) -> pa.Table:
    """Exposure rows (integer codes) as the log table: ids, UTC times, surface and action."""
    return pa.Table.from_arrays(
        [
            user_ids(rows["user"]),
            item_ids(rows["item"]),
            pa.array(rows["ts"], type=TS),
            _codes(rows["surface"], _SURFACE_NAMES),
            _codes(rows["action"], _ACTION_NAMES),
        ],
        names=EXPOSURE_SCHEMA.names,
    )


def _event_table(ev: Cols, trial: _Trial | None) -> pa.Table:
    """Debunk events (integer codes) as the event table, labelled with the user's arm when the
    world runs an experiment (else experiment and arm are empty)."""
    n = len(ev["ts"])
    if trial is None:
        experiment = arm = pa.StringArray.from_buffers(
            n, pa.py_buffer(np.zeros(n + 1, np.int32)), pa.py_buffer(b"")
        )
    else:
        experiment = _codes(np.zeros(n, np.int8), pa.array([trial.experiment.name]))
        arm = _codes(trial.arm[ev["user"]], trial.arm_names)
    return pa.Table.from_arrays(
        [
            user_ids(ev["user"]),
            debunk_ids(ev["debunk"]),
            rumor_ids(ev["rumor"]),
            _codes(ev["surface"], _SURFACE_NAMES),
            _codes(ev["event"], _EVENT_NAMES),
            pa.array(ev["ts"], type=TS),
            experiment,
            arm,
        ],
        names=EVENT_SCHEMA.names,
    )


def _codes(codes: np.ndarray, names: pa.Array) -> pa.Array:
    """A dictionary column over ``names``; stored as plain strings (see LOG_OPTIONS)."""
    return pa.DictionaryArray.from_arrays(pa.array(codes, pa.int8()), names)


def _merge(bg: Cols, rumor: Cols) -> Cols:
    """Insert time-sorted rumor rows into time-sorted background rows, keeping the order."""
    m = len(rumor["ts"])
    if not m:
        return bg
    pos = np.searchsorted(bg["ts"], rumor["ts"], side="right") + np.arange(m)
    is_rumor = np.zeros(len(bg["ts"]) + m, dtype=np.bool_)
    is_rumor[pos] = True
    out = {}
    for k in bg:
        col = np.empty(len(is_rumor), dtype=bg[k].dtype)
        col[~is_rumor] = bg[k]
        col[is_rumor] = rumor[k]
        out[k] = col
    return out


def _write_day(
    folder: Path,
    day: int,
    day_start: int,
    rumor_rows: Cols,
    users: _Users,
    pools: _Pools,
    seed: int,
    dow: float,
    writer: _Writer,
) -> int:
    """Background rows of one day, block of users by block, merged with the day's rumor rows
    of those users; one Parquet part per block. Returns the rows written."""
    fresh = pools.created(day + BACKLOG_DAYS)
    block_of = np.searchsorted(users.blocks, rumor_rows["user"], side="right") - 1
    total = 0
    for b in range(len(users.blocks) - 1):
        lo, hi = int(users.blocks[b]), int(users.blocks[b + 1])
        rng = _rng(seed, _S.BACKGROUND, day, b)
        counts = rng.poisson(users.activity[lo:hi] * dow)
        n = int(counts.sum())
        user = rng.permutation(np.repeat(np.arange(lo, hi, dtype=np.int64), counts))
        ts = day_start + DIURNAL.sorted_offsets_us(rng, n)
        bg = {
            "user": user,
            "item": pools.draw(day, ts, fresh, rng),
            "ts": ts,
            "surface": _BG_SURFACE[rng.integers(0, LUT_SIZE, n)],
            "action": _BG_ACTION[rng.integers(0, LUT_SIZE, n)],
        }
        mine = _sel(rumor_rows, np.flatnonzero(block_of == b))
        rows = _merge(bg, {k: mine[k] for k in bg})
        table = _exposure_table(rows)
        writer.submit(_write_parquet, table, folder / f"part-{b:05d}.parquet", **LOG_OPTIONS)
        total += table.num_rows
    return total


def _write_items(out: Path, lib: _Library, pools: _Pools, seed: int) -> tuple[int, int]:
    """items.parquet: every rumor item, then every background item the logs reference.
    Returns (rumor items, background items)."""
    background = 0
    with (
        _atomic(out / "items.parquet") as tmp,
        pq.ParquetWriter(tmp, ITEM_SCHEMA, **PARQUET_OPTIONS) as writer,
    ):
        n = len(lib.item_text)
        writer.write_table(
            pa.Table.from_arrays(
                [
                    item_ids(np.arange(n)),
                    pa.array(lib.item_text, pa.string()),
                    pa.array(lib.item_created, type=TS),
                ],
                schema=ITEM_SCHEMA,
            )
        )
        for k in range(pools.count):
            used = pools.referenced[k * pools.per_day : (k + 1) * pools.per_day]
            if not used.any():
                continue
            slots = np.flatnonzero(used)
            text = texts.background_texts(_rng(seed, _S.ITEM_TEXT, k), pools.per_day)
            table = pa.Table.from_arrays(
                [
                    item_ids(pools.first_item + k * pools.per_day + slots),
                    text.filter(pa.array(used)),
                    pa.array(pools.created(k)[slots], type=TS),
                ],
                schema=ITEM_SCHEMA,
            )
            writer.write_table(table)
            background += table.num_rows
    return n, background


def _write_library(out: Path, lib: _Library) -> int:
    """rumors.jsonl, debunks.jsonld, tagged_items.parquet and truth/rumor_items.parquet;
    returns the number of tagged items."""
    lines = [json.dumps(r, ensure_ascii=False, sort_keys=True) + "\n" for r in lib.records]
    _write_text("".join(lines), out / "rumors.jsonl")
    _write_text(
        json.dumps(lib.claim_reviews, ensure_ascii=False, sort_keys=True, indent=1) + "\n",
        out / "debunks.jsonld",
    )
    items = np.arange(len(lib.item_rumor))
    tagged = items[lib.item_tagged]
    _write_parquet(
        pa.Table.from_arrays(
            [
                item_ids(tagged),
                rumor_ids(lib.item_rumor[tagged]),
                pa.array(["manual"] * len(tagged), pa.string()),
                pa.array(np.ones(len(tagged)), pa.float64()),
            ],
            schema=TAG_SCHEMA,
        ),
        out / "tagged_items.parquet",
    )
    _write_parquet(
        pa.Table.from_arrays(
            [
                item_ids(items),
                rumor_ids(lib.item_rumor),
                pa.array(lib.item_kind, pa.string()),
                pa.array(lib.item_tagged),
            ],
            schema=TRUTH_ITEM_SCHEMA,
        ),
        out / "truth" / "rumor_items.parquet",
    )
    return len(tagged)


def _write_truth_users(out: Path, users: _Users) -> None:
    """truth/users.parquet: the planted preferences, in blocks of CHUNK_ROWS users."""
    names = pa.array(FORMATS, pa.string())
    with (
        _atomic(out / "truth" / "users.parquet") as tmp,
        pq.ParquetWriter(tmp, TRUTH_USER_SCHEMA, **PARQUET_OPTIONS) as writer,
    ):
        for lo in range(0, users.n, CHUNK_ROWS):
            hi = min(lo + CHUNK_ROWS, users.n)
            writer.write_table(
                pa.Table.from_arrays(
                    [
                        user_ids(np.arange(lo, hi)),
                        pc.take(names, users.pref_format[lo:hi]),
                        pa.array(users.trusts[lo:hi]),
                        pa.array(users.activity[lo:hi], pa.float64()),
                    ],
                    schema=TRUTH_USER_SCHEMA,
                )
            )


def _prune(root: Path, keep: dict[str, set[str]]) -> None:
    """Remove part files (and leftover temporaries) of an earlier run that this run did not
    write, so a rerun into the same folder never mixes two worlds."""
    if not root.exists():
        return
    for folder in sorted(root.glob("dt=*")):
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            ours = PART_NAME.match(f.name) or (
                f.name.startswith(".part-") and f.name.endswith(".tmp")
            )
            if ours and f.name not in keep.get(folder.name, set()):
                f.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()


# ---------------------------------------------------------------------------------------------
# The public entry point.


def default_rumors(users: int) -> int:
    """The rumor count when none is given: one per thousand users, within [8, 30000]."""
    return min(max(users // 1000, 8), 30_000)


class _Tally:
    """What the day loop counts for the summary."""

    def __init__(self, users: int, rumors: int, days: int) -> None:
        self.exposure_rows = 0
        self.rumor_exposure_rows = 0
        self.exposed = np.zeros(users, dtype=np.bool_)
        self.first_day = np.full(rumors, days, dtype=np.int64)
        self.last_day = np.full(rumors, -1, dtype=np.int64)
        self.events = np.zeros(len(DEBUNK_EVENTS), dtype=np.int64)
        self.parts: dict[str, dict[str, set[str]]] = {"exposures": {}, "debunk_events": {}}

    def rumor_day(self, day: int, rows: Cols) -> None:
        self.rumor_exposure_rows += len(rows["ts"])
        self.exposed[rows["user"]] = True
        hit = np.unique(rows["rumor"])
        self.first_day[hit] = np.minimum(self.first_day[hit], day)
        self.last_day[hit] = np.maximum(self.last_day[hit], day)

    def spans(self) -> np.ndarray:
        """Days between each rumor's first and last exposure, inclusive (0: never seen)."""
        return np.where(self.last_day >= 0, self.last_day - self.first_day + 1, 0)


@dataclass(frozen=True)
class PlantedExperiment:
    """An A/B experiment the world runs: users split by the production hash, and each arm's
    chance of being served a debunk scaled by its planted lift (a holdout arm is never served),
    so the reach report has a known effect to recover."""

    name: str
    arms: str = "control:0.5,treatment:0.5"  # domain.experiments.parse_arms syntax
    lifts: dict[str, float] = field(default_factory=dict)  # arm -> relative serving lift
    salt: str = ""


class _Trial:
    """A planted experiment resolved for this world: every user's arm and serving chance."""

    def __init__(self, planted: PlantedExperiment, users: int, start: date, days: int) -> None:
        begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
        self.experiment = Experiment(
            planted.name, planted.salt or planted.name, parse_arms(planted.arms),
            begin.timestamp(), (begin + timedelta(days=days)).timestamp(),
            description="planted by debunk synth",
        )  # fmt: skip
        unknown = set(planted.lifts) - {a.name for a in self.experiment.arms}
        if unknown:
            raise ValueError(f"lifts name arms the experiment lacks: {sorted(unknown)}")
        self.lifts = planted.lifts
        self.arm_serve_p = np.array([self._serve_p(a, planted) for a in self.experiment.arms])
        self.arm = np.empty(users, dtype=np.int8)
        for lo in range(0, users, 1 << 20):
            hi = min(users, lo + (1 << 20))
            ids = user_ids(np.arange(lo, hi)).to_pylist()
            self.arm[lo:hi] = self.experiment.arm_indexes(ids)
        self.serve_p = self.arm_serve_p[self.arm]
        self.arm_names = pa.array([a.name for a in self.experiment.arms])

    @staticmethod
    def _serve_p(arm: Arm, planted: PlantedExperiment) -> float:
        if arm.policy == "holdout":
            return 0.0
        return min(1.0, SERVE_P * (1 + planted.lifts.get(arm.name, 0.0)))

    def planted(self) -> dict[str, Any]:
        """What the report should find: each arm's serving chance and its reach relative to
        the control arm (reach is proportional to the serving chance)."""
        control = [a.name for a in self.experiment.arms].index(self.experiment.control.name)
        base = self.arm_serve_p[control]
        return {
            "name": self.experiment.name,
            "arms": [a.name for a in self.experiment.arms],
            "lifts": dict(sorted(self.lifts.items())),
            "serve_p": dict(zip(self.arm_names.to_pylist(), self.arm_serve_p.round(6).tolist(),
                                strict=True)),
            "expected_relative_reach": {
                a.name: round(float(p / base), 6) if base else None
                for a, p in zip(self.experiment.arms, self.arm_serve_p, strict=True)
            },
        }  # fmt: skip


def _write_experiment(out: Path, trial: _Trial | None) -> None:
    """experiment.json: the planted experiment's config (what `debunk experiment create` takes)."""
    path = out / "experiment.json"
    if trial is None:
        path.unlink(missing_ok=True)
        return
    config = {**trial.experiment.to_dict(), "planted": trial.planted()}
    _write_text(json.dumps(config, indent=2, sort_keys=True) + "\n", path)


def _simulate(
    out: Path,
    start: date,
    days: int,
    seed: int,
    users: _Users,
    lib: _Library,
    pools: _Pools,
    progress: bool,
    trial: _Trial | None = None,
    reach: float = REACH,
    cards: int = 1,
) -> tuple[_Tally, int]:
    """The day loop: cascades, background, serving; writes the exposure and event partitions.
    Returns the tally and the number of seed shares."""
    start_us = (start - date(1970, 1, 1)).days * DAY_US
    window_end = start_us + days * DAY_US
    seeds = _seeds(lib, users, seed, reach * users.n / max(lib.n, 1))
    carry = _cat([], _EXPOSURE_DTYPES)
    events_carry = _cat([], _EVENT_DTYPES)
    handled = np.empty(0, dtype=np.int64)
    tally = _Tally(users.n, lib.n, days)
    parts = {f"part-{b:05d}.parquet" for b in range(len(users.blocks) - 1)}
    bar = tqdm(range(days), desc="synth", unit="day", file=sys.stderr, disable=not progress)
    with _Writer() as writer:
        for day in bar:
            the_date = start + timedelta(days=day)
            dt = f"dt={the_date.isoformat()}"
            day_start = start_us + day * DAY_US
            day_end = day_start + DAY_US
            lo, hi = np.searchsorted(seeds["ts"], [day_start, day_end])
            pending = _cat([carry, _sel(seeds, np.arange(lo, hi))], _EXPOSURE_DTYPES)
            rows, carry = _cascade_day(day, pending, lib, users, seed, day_end, window_end)
            tally.rumor_day(day, rows)

            dow = WEEKEND if the_date.weekday() >= 5 else 1.0
            folder = out / "exposures" / dt
            tally.exposure_rows += _write_day(
                folder, day, day_start, rows, users, pools, seed, dow, writer
            )
            tally.parts["exposures"][dt] = parts

            new_events, handled = _serve(
                day, rows, lib, users, handled, seed, window_end,
                None if trial is None else trial.serve_p, cards,
            )  # fmt: skip
            events = _sort_by_ts(_cat([events_carry, new_events], _EVENT_DTYPES))
            now = events["ts"] < day_end
            today, events_carry = _sel(events, now), _sel(events, ~now)
            path = out / "debunk_events" / dt / "part-00000.parquet"
            writer.submit(_write_parquet, _event_table(today, trial), path, **LOG_OPTIONS)
            tally.parts["debunk_events"][dt] = {"part-00000.parquet"}
            tally.events += np.bincount(today["event"], minlength=len(DEBUNK_EVENTS))
            bar.set_postfix(rows=f"{tally.exposure_rows:,}", refresh=False)
    return tally, len(seeds["ts"])


def synthesize(
    out: Path,
    users: int,
    days: int,
    seed: int,
    start: date = date(2026, 10, 1),
    rumors: int | None = None,
    mean_daily: float = 5.0,
    progress: bool = False,
    experiment: PlantedExperiment | None = None,
    reach: float = REACH,
    cards: int = 1,
) -> dict:
    """Write a synthetic world into ``out`` and return its summary (also ``out/world.json``).

    Same arguments, same bytes. Each file is written aside and moved into place, so a killed
    run never leaves a half-written file under a final name; part files of an earlier run in
    ``out`` that this run did not write are removed. ``reach`` (rumor exposure rows per user)
    and ``cards`` (distinct debunks served per user and rumor) make denser worlds for model
    evaluation; their defaults give the original world.
    """
    if isinstance(start, str):
        start = date.fromisoformat(start)
    n_rumors = default_rumors(users) if rumors is None else int(rumors)
    _check(users, days, seed, n_rumors, mean_daily, reach, cards)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    start_us = (start - date(1970, 1, 1)).days * DAY_US

    population = _Users(users, mean_daily, seed)
    lib = _Library(seed, n_rumors, start_us, days)
    tagged = _write_library(out, lib)
    _write_truth_users(out, population)
    per_day = min(max(users // 10, 100), 500_000)
    pools = _Pools(len(lib.item_rumor), per_day, days, start_us, seed)
    trial = None if experiment is None else _Trial(experiment, users, start, days)
    tally, seed_shares = _simulate(
        out, start, days, seed, population, lib, pools, progress, trial, reach, cards
    )
    _write_experiment(out, trial)
    for name, keep in tally.parts.items():
        _prune(out / name, keep)
    rumor_items, background_items = _write_items(out, lib, pools, seed)

    spans = tally.spans()
    summary = {
        "params": {
            "users": users,
            "days": days,
            "seed": seed,
            "start": start.isoformat(),
            "rumors": rumors,
            "mean_daily": mean_daily,
            **({"experiment": trial.planted()} if trial is not None else {}),
            **({"reach": reach} if reach != REACH else {}),
            **({"cards": cards} if cards != 1 else {}),
        },
        "format_version": 1,
        "start": start.isoformat(),
        "end": (start + timedelta(days=days - 1)).isoformat(),
        "users": users,
        "days": days,
        "seed": seed,
        "rumors": n_rumors,
        "withdrawn_rumors": int((~lib.confirmed).sum()),
        "debunks": len(lib.claim_reviews),
        "items": rumor_items + background_items,
        "rumor_items": rumor_items,
        "background_items": background_items,
        "tagged_items": tagged,
        "exposure_rows": tally.exposure_rows,
        "rumor_exposure_rows": tally.rumor_exposure_rows,
        "background_exposure_rows": tally.exposure_rows - tally.rumor_exposure_rows,
        "exposed_users": int(tally.exposed.sum()),
        "exposed_fraction": round(float(tally.exposed.mean()), 6),
        "rumor_seed_shares": seed_shares,
        "rumors_spanning_2_days": int((spans >= 2).sum()),
        "max_rumor_span_days": int(spans.max()) if n_rumors else 0,
        "exposure_parts_per_day": len(population.blocks) - 1,
        "debunk_event_rows": int(tally.events.sum()),
        "debunk_events": {e: int(c) for e, c in zip(DEBUNK_EVENTS, tally.events, strict=True)},
    }
    text = json.dumps(summary, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    _write_text(text, out / "world.json")
    return summary


def _check(
    users: int,
    days: int,
    seed: int,
    rumors: int,
    mean_daily: float,
    reach: float = REACH,
    cards: int = 1,
) -> None:
    """Refuse parameters the id formats or the model cannot take."""
    if not 1 <= users <= 10**8:
        raise ValueError(f"users must be in [1, 100000000], got {users}")
    if days < 1:
        raise ValueError(f"days must be >= 1, got {days}")
    if seed < 0:
        raise ValueError(f"seed must be >= 0, got {seed}")
    if not 0 <= rumors < 10**6:
        raise ValueError(f"rumors must be in [0, 999999], got {rumors}")
    if not mean_daily >= 0:
        raise ValueError(f"mean_daily must be >= 0, got {mean_daily}")
    if not 0 < reach <= 1000:
        raise ValueError(f"reach must be in (0, 1000], got {reach}")
    if not 1 <= cards <= 4:
        raise ValueError(f"cards must be in [1, 4], got {cards}")
