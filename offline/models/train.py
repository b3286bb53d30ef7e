"""Training: the LightFM hybrid ranker (which debunk a user reads) and the implicit ALS at-risk
model (who will meet a rumor the logs have not shown them yet). Seeds fixed, threads bounded;
too few events degrade to the rule ranker with a warning, never a crash."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from domain.models import MAX_PREBUNKS, FeedModel
from domain.records import Debunk, Rumor
from offline.models.engagement import State, engagement, rows_of_users, state_rows
from offline.models.features import (
    COMMON_USER_FEATURE,
    FeatureRows,
    debunk_features,
    labelled_pairs,
    taste_features,
    user_features,
)
from offline.models.prebunk_table import PrebunkTable

log = logging.getLogger("debunk.train")

SEED = 20261007
MAX_THREADS = 2
MIN_PAIRS = 50  # shown (user, debunk) pairs below which the ranker is not trained
MIN_POSITIVES = 10
MIN_AT_RISK_PAIRS = 50
PROFILE_COLUMNS = ["user_id", "rumor_id", "exposures", "strongest_action"]
Picks = tuple[np.ndarray, np.ndarray, np.ndarray]  # (user rows, rumor columns, scores)


@dataclass(frozen=True)
class RankerConfig:
    """LightFM settings: logistic loss on shown pairs (clicks/shares +1, the rest -1)."""

    components: int = 16
    epochs: int = 10
    learning_rate: float = 0.1
    alpha: float = 1e-6  # L2 on user and item features (1e-5 already erases user identity)
    loss: str = "logistic"
    threads: int = 1  # LightFM is Hogwild with more: only one thread gives the same factors
    weight: float = 0.9  # the serving blend (see ranking.models.combine_policy_and_affinity)
    seed: int = SEED
    taste: bool = True  # per-user click history by format and authority (taste_features)
    identity: bool = True  # a feature per user (its own factors) besides the shared ones
    profile: bool = True  # exposure volume, strongest action, categories met
    taste_split: float = 0.5  # > 0: fit on the pairs after this quantile of time, with taste
    # from the pairs before it (no label leaks into its own feature); served rows use all


@dataclass(frozen=True)
class AtRiskConfig:
    """implicit ALS settings and the prebunk caps."""

    factors: int = 32
    iterations: int = 15
    regularization: float = 0.05
    alpha: float = 4.0  # confidence = 1 + alpha x engagement
    threads: int = MAX_THREADS
    max_per_rumor: int = 10_000  # and never more at-risk users than exposed ones
    max_rumors: int = 1_000  # prebunk only the rumors with the most exposed users (spreading)
    min_score: float = 0.05
    co_weight: float = 1.0  # beta in the blend (at_risk_scores); 0: ALS alone (chosen on CED)
    seed: int = SEED


@dataclass
class TrainedModels:
    """What a training run hands the snapshot writer; ``feed`` None means rules only."""

    feed: FeedModel | None = None
    user_factors: dict[str, np.ndarray] = field(default_factory=dict)
    prebunks: Mapping[str, list[tuple[str, float]]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _bounded_threads(threads: int) -> int:
    return max(1, min(threads, MAX_THREADS, os.cpu_count() or 1))


def train_ranker(
    events: pa.Table,
    debunks: list[Debunk],
    rumors: list[Rumor],
    exposures: State | None = None,
    config: RankerConfig | None = None,
) -> tuple[FeedModel | None, dict[str, np.ndarray], dict[str, Any]]:
    """Fit the hybrid ranker on shown pairs; (model, user rows, summary), model None when the
    log is too small (the service then ranks by the rules alone)."""
    from lightfm import LightFM  # offline only: the service never imports a model library

    config = config or RankerConfig()
    started = time.perf_counter()
    known = {d.debunk_id for d in debunks}
    pairs = labelled_pairs(events)
    pairs = pairs[pairs["debunk_id"].isin(known)]
    positives = int((pairs["label"] > 0).sum())
    summary: dict[str, Any] = {
        "pairs": len(pairs),
        "positives": positives,
        "events": events.num_rows,
    }
    if len(pairs) < MIN_PAIRS or positives < MIN_POSITIVES or positives == len(pairs):
        log.warning(
            "ranker not trained: %d shown pairs, %d positives (need %d and %d); rules only",
            len(pairs), positives, MIN_PAIRS, MIN_POSITIVES,
        )  # fmt: skip
        return None, {}, {**summary, "trained": False, "reason": "too few events"}
    rumor_map = {r.rumor_id: r for r in rumors}
    items = debunk_features(debunks, rumor_map)
    user_ids = sorted(pairs["user_id"].unique().tolist())
    profile = (rows_of_users(exposures, user_ids, PROFILE_COLUMNS)
               if config.profile and exposures is not None else None)  # fmt: skip
    fit_pairs, history = pairs, pairs
    if config.taste and config.taste_split > 0:
        cut = pairs["ts"].quantile(config.taste_split)
        fit_pairs, history = pairs[pairs["ts"] >= cut], pairs[pairs["ts"] < cut]
    taste = taste_features(history, debunks, user_ids) if config.taste else None
    users = user_features(user_ids, profile, rumor_map, taste, identity=config.identity)
    serve_users = users
    if history is not pairs:
        all_taste = taste_features(pairs, debunks, user_ids)
        full = user_features(user_ids, profile, rumor_map, all_taste, identity=config.identity)
        serve_users = _align(full, users.names)
    pairs = fit_pairs
    summary["history_pairs"] = len(history) if history is not pairs else 0
    urow = pd.Series(np.arange(len(user_ids)), index=user_ids)
    irow = pd.Series(np.arange(len(items.ids)), index=items.ids)
    r = urow[pairs["user_id"]].to_numpy()
    c = irow[pairs["debunk_id"]].to_numpy()
    label = pairs["label"].to_numpy()
    values = np.where(label > 0, 1.0, -1.0).astype(np.float32)
    shape = (len(user_ids), len(items.ids))
    interactions = sp.coo_matrix((values, (r, c)), shape=shape)
    weights = sp.coo_matrix((np.where(label > 1, 2.0, 1.0).astype(np.float32), (r, c)), shape)
    model = LightFM(
        no_components=config.components, loss=config.loss, learning_rate=config.learning_rate,
        item_alpha=config.alpha, user_alpha=config.alpha, random_state=config.seed,
    )  # fmt: skip
    if config.loss in ("warp", "bpr", "warp-kos"):
        keep = values > 0
        interactions = sp.coo_matrix((values[keep], (r[keep], c[keep])), shape=shape)
        weights = sp.coo_matrix((weights.data[keep], (r[keep], c[keep])), shape=shape)
    model.fit(
        interactions, user_features=users.matrix, item_features=items.matrix,
        sample_weight=weights, epochs=config.epochs, num_threads=_bounded_threads(config.threads),
    )  # fmt: skip
    ubias, uemb = model.get_user_representations(serve_users.matrix)
    ibias, iemb = model.get_item_representations(items.matrix)
    common = sp.csr_matrix(
        ([1.0], ([0], [users.names.index(COMMON_USER_FEATURE)])), shape=(1, len(users.names))
    )
    dbias, demb = model.get_user_representations(common)
    user_rows = np.hstack([ubias[:, None], np.ones((len(user_ids), 1)), uemb]).astype(np.float32)
    debunk_rows = np.hstack([np.ones((len(items.ids), 1)), ibias[:, None], iemb]).astype(np.float32)
    default = np.concatenate([[dbias[0], 1.0], demb[0]]).astype(np.float32)
    seconds = round(time.perf_counter() - started, 3)
    meta = {"ranker": "lightfm", "loss": config.loss, "components": config.components,
            "epochs": config.epochs, "seed": config.seed, "pairs": len(pairs),
            "taste": config.taste, "taste_split": config.taste_split,
            "positives": positives, "users": len(user_ids), "train_seconds": seconds}  # fmt: skip
    feed = FeedModel(
        debunk_row={d: i for i, d in enumerate(items.ids)},
        factors=debunk_rows,
        default_user=default,
        weight=config.weight,
        meta=meta,
    )
    user_map = {u: user_rows[i] for i, u in enumerate(user_ids)}
    return feed, user_map, {**summary, "trained": True, **meta}


def _align(rows: FeatureRows, names: list[str]) -> FeatureRows:
    """``rows`` with the columns ``names`` (in that order; features not in it dropped)."""
    col = {n: i for i, n in enumerate(names)}
    keep = np.array([n in col for n in rows.names], dtype=bool)
    target = np.array([col.get(n, -1) for n in rows.names], dtype=np.int64)
    m = rows.matrix.tocoo()
    ok = keep[m.col]
    matrix = sp.csr_matrix((m.data[ok], (m.row[ok], target[m.col[ok]])),
                           shape=(m.shape[0], len(names)))  # fmt: skip
    return FeatureRows(rows.ids, list(names), matrix)


def engagement_matrix(exposures: State, alpha: float) -> tuple[list[str], list[str], sp.csr_matrix]:
    """users x rumors confidence: 1 + alpha x (log1p(exposures) + strongest action strength);
    a state file is streamed (offline.models.engagement)."""
    e = engagement(exposures, alpha)
    return e.users.to_pylist(), e.rumors, e.matrix


def fit_als(matrix: sp.csr_matrix, config: AtRiskConfig) -> tuple[np.ndarray, np.ndarray]:
    """implicit ALS with BLAS held at one thread; (user factors, item factors)."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, "blas"):
        als = AlternatingLeastSquares(
            factors=config.factors, regularization=config.regularization,
            iterations=config.iterations, num_threads=_bounded_threads(config.threads),
            random_state=config.seed,
        )  # fmt: skip
        als.user_factors, als.item_factors = _initial_factors(matrix.shape, config)
        als.fit(matrix, show_progress=False)
    return np.asarray(als.user_factors), np.asarray(als.item_factors)


def _initial_factors(shape: tuple[int, int], config: AtRiskConfig) -> tuple[np.ndarray, np.ndarray]:
    """implicit's own start (uniform x 0.01 from default_rng(seed): users, then items), scaled in
    place: its ``random(...) * 0.01`` holds a second users x factors array at the fit's peak."""
    rng = np.random.default_rng(config.seed)
    users = rng.random((shape[0], config.factors), dtype=np.float32)
    users *= np.float32(0.01)
    items = rng.random((shape[1], config.factors), dtype=np.float32)
    items *= np.float32(0.01)
    return users, items


def train_at_risk(
    exposures: State | None,
    rumors: list[Rumor],
    debunks: list[Debunk],
    config: AtRiskConfig | None = None,
) -> tuple[Mapping[str, list[tuple[str, float]]], dict[str, Any]]:
    """Prebunk rumors per user: the likeliest rumors (ALS blended with co-engagement,
    at_risk_scores) a user is not logged as exposed to, at most MAX_PREBUNKS per user and,
    per rumor, never more users than it has exposed ones."""
    config = config or AtRiskConfig()
    started = time.perf_counter()
    n = state_rows(exposures)
    if exposures is None or n < MIN_AT_RISK_PAIRS:
        log.warning("at-risk model not trained: %d exposed pairs (need %d)", n, MIN_AT_RISK_PAIRS)
        return {}, {"trained": False, "pairs": n, "reason": "too few exposures"}
    e = engagement(exposures, config.alpha)
    users, rumor_ids, matrix = e.users, e.rumors, e.matrix  # users kept as Arrow: 2M strs cost
    if len(rumor_ids) < 2 or len(users) < 2:
        log.warning("at-risk model not trained: %d rumors, %d users", len(rumor_ids), len(users))
        return {}, {"trained": False, "pairs": matrix.nnz, "reason": "too few rumors or users"}
    nnz = int(matrix.nnz)
    ufac, rfac = fit_als(matrix, config)
    with_debunk = {r for d in debunks for r in d.rumor_ids}
    confirmed = {r.rumor_id for r in rumors if r.confirmed}
    eligible = np.array([r in confirmed and r in with_debunk for r in rumor_ids])
    exposed_count = np.bincount(matrix.indices, minlength=matrix.shape[1])  # users per rumor
    eligible &= _most_exposed(exposed_count, eligible, config.max_rumors)
    if config.co_weight > 0:
        prebunks = _top_blended(ufac, rfac, matrix, eligible, config)
    else:
        prebunks = _top_unexposed(ufac, rfac, matrix, eligible, config.min_score, config.threads)
    del e, matrix, ufac, rfac  # the picks are all the rest needs (~0.6 GB at 2M users)
    prebunks = _cap_per_rumor(prebunks, exposed_count, config.max_per_rumor)
    out = _per_user(prebunks, users, rumor_ids)
    seconds = round(time.perf_counter() - started, 3)
    return out, {"trained": True, "pairs": nnz, "users": len(users),
                 "rumors": len(rumor_ids), "prebunk_users": len(out),
                 "prebunk_pairs": len(prebunks[0]), "factors": config.factors,
                 "co_weight": config.co_weight,
                 "seed": config.seed, "train_seconds": seconds}  # fmt: skip


def _most_exposed(exposed: np.ndarray, eligible: np.ndarray, limit: int) -> np.ndarray:
    """Mask of the ``limit`` eligible rumors with the most exposed users (ties: lower index):
    scoring every user against every rumor of a large library would cost minutes."""
    order = np.lexsort((np.arange(len(exposed)), -exposed))
    order = order[eligible[order]][:limit]
    mask = np.zeros(len(exposed), dtype=bool)
    mask[order] = True
    return mask


def _top_unexposed(
    ufac: np.ndarray,
    rfac: np.ndarray,
    matrix: sp.csr_matrix,
    eligible: np.ndarray,
    min_score: float,
    threads: int = 1,
    block: int = 65_536,
) -> Picks:
    """(user, rumor, score) for each user's best MAX_PREBUNKS eligible unexposed rumors, by
    implicit's C++ top-k (exposed and ineligible rumors filtered inside it), block by block."""
    from implicit.cpu.topk import topk
    from threadpoolctl import threadpool_limits

    out = _Collected()
    k = min(MAX_PREBUNKS, int(eligible.sum()))
    if k == 0:
        return out.picks()
    keep = np.flatnonzero(eligible)
    items = np.ascontiguousarray(rfac[keep], dtype=np.float32)
    exposed = matrix[:, keep].tocsr()
    with threadpool_limits(1, "blas"):
        for lo in range(0, len(ufac), block):
            hi = min(lo + block, len(ufac))
            query = np.ascontiguousarray(ufac[lo:hi], dtype=np.float32)
            top, best = topk(items, query, k, filter_query_items=exposed[lo:hi],
                             num_threads=_bounded_threads(threads))  # fmt: skip
            uu, jj = np.nonzero(np.isfinite(best) & (best >= min_score))
            out.add(uu + lo, keep[top[uu, jj]], best[uu, jj])
    return out.picks()


def co_engagement(
    matrix: sp.csr_matrix, keep: np.ndarray, block: int = 1 << 18, *, in_place: bool = False
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(binary users x rumors, rumors x kept rumors cosine co-engagement): users shared by
    rumor j and kept rumor r over sqrt(users of j x users of r), a rumor with itself 0. The
    binary matrix shares ``matrix``'s indices (``in_place``: it is ``matrix``, its values
    overwritten with ones, for a caller done with the confidences: 4 bytes a pair less); the
    product is summed over blocks of users (whole counts, so exact), never a second whole copy."""
    if in_place:
        matrix.data.fill(1.0)
        binary = matrix
    else:
        binary = sp.csr_matrix(
            (np.ones(matrix.nnz, np.float32), matrix.indices, matrix.indptr), shape=matrix.shape
        )
    users = np.maximum(np.bincount(matrix.indices, minlength=matrix.shape[1]), 1).astype(np.float32)
    c = sp.csr_matrix((binary.shape[1], len(keep)), dtype=np.float32)
    for lo in range(0, binary.shape[0], block):
        part = binary[lo : lo + block]
        c = c + part.T @ part[:, keep]
    c = c.tocoo()
    w = c.data / np.sqrt(users[c.row] * users[keep[c.col]])
    w[c.row == keep[c.col]] = 0.0
    co = sp.csr_matrix((w.astype(np.float32), (c.row, c.col)), shape=(binary.shape[1], len(keep)))
    return binary, co


def at_risk_parts(
    ufac: np.ndarray, rfac: np.ndarray, binary: sp.csr_matrix, co: sp.csr_matrix
) -> tuple[np.ndarray, np.ndarray]:
    """(ALS dot products, co-engagement) of these users x the kept rumors, both dense."""
    als = np.asarray(ufac, dtype=np.float32) @ np.asarray(rfac, dtype=np.float32).T
    return als, np.asarray((binary @ co).todense(), dtype=np.float32)


def at_risk_scores(
    als: np.ndarray, co: np.ndarray, scales: tuple[np.ndarray, np.ndarray], beta: float
) -> np.ndarray:
    """The at-risk score: ALS / its per-rumor max |.| + beta x co-engagement / its per-rumor
    max, the maxima taken over the users not exposed to the rumor (risk_scales; 0 reads 1)."""
    a, c = (np.where(x > 0, x, 1.0).astype(np.float32) for x in scales)
    return als / a + beta * (co / c)


def risk_scales(
    als: np.ndarray, co: np.ndarray, unexposed: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Per-rumor (column) max |ALS| and max co-engagement over the unexposed cells."""
    a = np.where(unexposed, np.abs(als), 0.0).max(axis=0, initial=0.0)
    c = np.where(unexposed, co, 0.0).max(axis=0, initial=0.0)
    return a.astype(np.float32), c.astype(np.float32)


def _top_blended(
    ufac: np.ndarray,
    rfac: np.ndarray,
    matrix: sp.csr_matrix,
    eligible: np.ndarray,
    config: AtRiskConfig,
    cells: int = 1 << 20,
) -> Picks:
    """(user, rumor, score) for each user's best MAX_PREBUNKS eligible unexposed rumors by
    at_risk_scores; users in blocks of at most ``cells`` user x rumor cells (two passes: the
    per-rumor maxima, then the scores and a partial sort), so memory stays bounded (a block's
    dense temporaries are ~40 bytes a cell; 1Mi cells cost no time against 4Mi, decision 0065).
    ``matrix``'s values are overwritten with ones (only who engaged matters from here on)."""
    from threadpoolctl import threadpool_limits

    out = _Collected()
    k = min(MAX_PREBUNKS, int(eligible.sum()))
    if k == 0:
        return out.picks()
    keep = np.flatnonzero(eligible)
    binary, co = co_engagement(matrix, keep, in_place=True)
    items = rfac[keep]
    block = max(1, cells // len(keep))
    spans = [(lo, min(lo + block, len(ufac))) for lo in range(0, len(ufac), block)]
    a_max = np.zeros(len(keep), np.float32)
    c_max = np.zeros(len(keep), np.float32)
    with threadpool_limits(1, "blas"):
        for lo, hi in spans:
            part = binary[lo:hi]
            als, cos = at_risk_parts(ufac[lo:hi], items, part, co)
            a, c = risk_scales(als, cos, part[:, keep].toarray() == 0)
            a_max, c_max = np.maximum(a_max, a), np.maximum(c_max, c)
        scales = (a_max, c_max)
        for lo, hi in spans:
            part = binary[lo:hi]
            als, cos = at_risk_parts(ufac[lo:hi], items, part, co)
            s = at_risk_scores(als, cos, scales, config.co_weight)
            s[part[:, keep].toarray() > 0] = -np.inf
            top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < s.shape[1] else \
                np.tile(np.arange(s.shape[1]), (len(s), 1))  # fmt: skip
            best = np.take_along_axis(s, top, axis=1)
            uu, jj = np.nonzero(np.isfinite(best) & (best >= config.min_score))
            out.add(uu + lo, keep[top[uu, jj]], best[uu, jj])
    return out.picks()


class _Collected:
    """Picks gathered block by block as arrays (not a tuple per pick: millions at 2M users)."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []

    def add(self, users: np.ndarray, rumors: np.ndarray, scores: np.ndarray) -> None:
        self.parts.append((users.astype(np.int32), rumors.astype(np.int32),
                           scores.astype(np.float32)))  # fmt: skip

    def picks(self) -> Picks:
        if not self.parts:
            return np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0, np.float32)
        u, r, s = zip(*self.parts, strict=True)
        return np.concatenate(u), np.concatenate(r), np.concatenate(s)


def _cap_per_rumor(picks: Picks, exposed: np.ndarray, cap: int) -> Picks:
    """Per rumor, only the highest-scored users (ties: lower user row), at most
    min(exposed users, cap)."""
    u, r, s = picks
    order = np.lexsort((r, u, -s))
    rs = r[order]
    by_rumor = np.argsort(rs, kind="stable")
    grouped = rs[by_rumor]
    starts = np.searchsorted(grouped, grouped, side="left")
    rank = np.empty(len(rs), dtype=np.int64)
    rank[by_rumor] = np.arange(len(rs)) - starts
    kept = order[rank < np.minimum(exposed[rs], cap)]
    return u[kept], r[kept], s[kept]


def _per_user(picks: Picks, users: pa.StringArray, rumors: list[str]) -> PrebunkTable:
    """Each user's prebunks, best first (ties: rumor order), as one table of arrays."""
    u, r, s = picks
    order = np.lexsort((r, -s, u))
    rows, starts = np.unique(u[order], return_index=True)
    bounds = np.append(starts, len(order)).astype(np.int64)
    return PrebunkTable(users.take(pa.array(rows)).to_pylist(), bounds, rumors,
                        r[order].astype(np.int32), s[order])  # fmt: skip


def train_models(
    events: pa.Table,
    exposures: State | None,
    rumors: list[Rumor],
    debunks: list[Debunk],
    *,
    ranker: RankerConfig | None = None,
    at_risk: AtRiskConfig | None = None,
) -> TrainedModels:
    """Both models for one night; each one that cannot be trained is simply absent."""
    started = time.perf_counter()
    feed, user_rows, ranker_summary = train_ranker(events, debunks, rumors, exposures, ranker)
    prebunks, risk_summary = train_at_risk(exposures, rumors, debunks, at_risk)
    summary = {"ranker": ranker_summary, "at_risk": risk_summary,
               "seconds": round(time.perf_counter() - started, 3)}  # fmt: skip
    return TrainedModels(feed, user_rows, prebunks, summary)
