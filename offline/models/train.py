"""Training: the LightFM hybrid ranker (which debunk a user reads) and the implicit ALS at-risk
model (who will meet a rumor the logs have not shown them yet). Seeds fixed, threads bounded;
too few events degrade to the rule ranker with a warning, never a crash."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import scipy.sparse as sp

from domain.models import MAX_PREBUNKS, FeedModel
from domain.records import Debunk, Rumor
from offline.models.features import (
    COMMON_USER_FEATURE,
    FeatureRows,
    debunk_features,
    labelled_pairs,
    taste_features,
    user_features,
)

log = logging.getLogger("debunk.train")

SEED = 20261007
MAX_THREADS = 2
MIN_PAIRS = 50  # shown (user, debunk) pairs below which the ranker is not trained
MIN_POSITIVES = 10
MIN_AT_RISK_PAIRS = 50


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
    prebunks: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)


def _bounded_threads(threads: int) -> int:
    return max(1, min(threads, MAX_THREADS, os.cpu_count() or 1))


def train_ranker(
    events: pa.Table,
    debunks: list[Debunk],
    rumors: list[Rumor],
    exposures: pa.Table | None = None,
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
    profile = exposures if config.profile else None
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


def engagement_matrix(
    exposures: pa.Table, alpha: float
) -> tuple[list[str], list[str], sp.csr_matrix]:
    """users x rumors confidence: 1 + alpha x (log1p(exposures) + strongest action strength)."""
    df = exposures.select(["user_id", "rumor_id", "exposures", "strongest_action"]).to_pandas()
    action = df["strongest_action"]
    if action.dtype == object or str(action.dtype) in ("string", "str", "category"):
        from domain.vocab import ACTION_STRENGTH

        strength = action.map(ACTION_STRENGTH).fillna(0).to_numpy(np.float32)
    else:
        strength = action.to_numpy(np.float32)
    users, ucode = np.unique(df["user_id"].to_numpy(dtype=object), return_inverse=True)
    rumors, rcode = np.unique(df["rumor_id"].to_numpy(dtype=object), return_inverse=True)
    conf = 1.0 + alpha * (np.log1p(df["exposures"].to_numpy(np.float32)) + strength / 4.0)
    m = sp.csr_matrix((conf.astype(np.float32), (ucode, rcode)), shape=(len(users), len(rumors)))
    m.sum_duplicates()
    return users.tolist(), rumors.tolist(), m


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
        als.fit(matrix, show_progress=False)
    return np.asarray(als.user_factors), np.asarray(als.item_factors)


def train_at_risk(
    exposures: pa.Table | None,
    rumors: list[Rumor],
    debunks: list[Debunk],
    config: AtRiskConfig | None = None,
) -> tuple[dict[str, list[tuple[str, float]]], dict[str, Any]]:
    """Prebunk rumors per user: the likeliest rumors (ALS blended with co-engagement,
    at_risk_scores) a user is not logged as exposed to, at most MAX_PREBUNKS per user and,
    per rumor, never more users than it has exposed ones."""
    config = config or AtRiskConfig()
    started = time.perf_counter()
    if exposures is None or exposures.num_rows < MIN_AT_RISK_PAIRS:
        n = 0 if exposures is None else exposures.num_rows
        log.warning("at-risk model not trained: %d exposed pairs (need %d)", n, MIN_AT_RISK_PAIRS)
        return {}, {"trained": False, "pairs": n, "reason": "too few exposures"}
    users, rumor_ids, matrix = engagement_matrix(exposures, config.alpha)
    if len(rumor_ids) < 2 or len(users) < 2:
        log.warning("at-risk model not trained: %d rumors, %d users", len(rumor_ids), len(users))
        return {}, {"trained": False, "pairs": matrix.nnz, "reason": "too few rumors or users"}
    ufac, rfac = fit_als(matrix, config)
    with_debunk = {r for d in debunks for r in d.rumor_ids}
    confirmed = {r.rumor_id for r in rumors if r.confirmed}
    eligible = np.array([r in confirmed and r in with_debunk for r in rumor_ids])
    exposed_count = np.diff(matrix.tocsc().indptr)
    eligible &= _most_exposed(exposed_count, eligible, config.max_rumors)
    if config.co_weight > 0:
        prebunks = _top_blended(ufac, rfac, matrix, eligible, config)
    else:
        prebunks = _top_unexposed(ufac, rfac, matrix, eligible, config.min_score, config.threads)
    prebunks = _cap_per_rumor(prebunks, exposed_count, config.max_per_rumor)
    out: dict[str, list[tuple[str, float]]] = {}
    for u, r, s in sorted(prebunks, key=lambda x: (x[0], -x[2], x[1])):
        out.setdefault(users[u], []).append((rumor_ids[r], float(s)))
    seconds = round(time.perf_counter() - started, 3)
    return out, {"trained": True, "pairs": int(matrix.nnz), "users": len(users),
                 "rumors": len(rumor_ids), "prebunk_users": len(out),
                 "prebunk_pairs": len(prebunks), "factors": config.factors,
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
) -> list[tuple[int, int, float]]:
    """(user, rumor, score) for each user's best MAX_PREBUNKS eligible unexposed rumors, by
    implicit's C++ top-k (exposed and ineligible rumors filtered inside it), block by block."""
    from implicit.cpu.topk import topk
    from threadpoolctl import threadpool_limits

    out: list[tuple[int, int, float]] = []
    k = min(MAX_PREBUNKS, int(eligible.sum()))
    if k == 0:
        return out
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
            out += zip((uu + lo).tolist(), keep[top[uu, jj]].tolist(), best[uu, jj].tolist(),
                       strict=True)  # fmt: skip
    return out


def co_engagement(matrix: sp.csr_matrix, keep: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """(binary users x rumors, rumors x kept rumors cosine co-engagement): users shared by
    rumor j and kept rumor r over sqrt(users of j x users of r), a rumor with itself 0."""
    binary = matrix.tocsr(copy=True).astype(np.float32)
    binary.data[:] = 1.0
    users = np.maximum(np.asarray(binary.getnnz(axis=0), dtype=np.float32), 1.0)
    c = (binary.T @ binary[:, keep]).tocoo()
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
    cells: int = 1 << 22,
) -> list[tuple[int, int, float]]:
    """(user, rumor, score) for each user's best MAX_PREBUNKS eligible unexposed rumors by
    at_risk_scores; users in blocks of at most ``cells`` user x rumor cells (two passes: the
    per-rumor maxima, then the scores and a partial sort), so memory stays bounded."""
    from threadpoolctl import threadpool_limits

    out: list[tuple[int, int, float]] = []
    k = min(MAX_PREBUNKS, int(eligible.sum()))
    if k == 0:
        return out
    keep = np.flatnonzero(eligible)
    binary, co = co_engagement(matrix, keep)
    exposed = binary[:, keep].tocsr()
    items = rfac[keep]
    block = max(1, cells // len(keep))
    spans = [(lo, min(lo + block, len(ufac))) for lo in range(0, len(ufac), block)]
    a_max = np.zeros(len(keep), np.float32)
    c_max = np.zeros(len(keep), np.float32)
    with threadpool_limits(1, "blas"):
        for lo, hi in spans:
            als, cos = at_risk_parts(ufac[lo:hi], items, binary[lo:hi], co)
            a, c = risk_scales(als, cos, exposed[lo:hi].toarray() == 0)
            a_max, c_max = np.maximum(a_max, a), np.maximum(c_max, c)
        scales = (a_max, c_max)
        for lo, hi in spans:
            als, cos = at_risk_parts(ufac[lo:hi], items, binary[lo:hi], co)
            s = at_risk_scores(als, cos, scales, config.co_weight)
            s[exposed[lo:hi].toarray() > 0] = -np.inf
            top = np.argpartition(-s, k - 1, axis=1)[:, :k] if k < s.shape[1] else \
                np.tile(np.arange(s.shape[1]), (len(s), 1))  # fmt: skip
            best = np.take_along_axis(s, top, axis=1)
            uu, jj = np.nonzero(np.isfinite(best) & (best >= config.min_score))
            out += zip((uu + lo).tolist(), keep[top[uu, jj]].tolist(), best[uu, jj].tolist(),
                       strict=True)  # fmt: skip
    return out


def _cap_per_rumor(
    pairs: list[tuple[int, int, float]], exposed: np.ndarray, cap: int
) -> list[tuple[int, int, float]]:
    """Per rumor, only the highest-scored users, at most min(exposed users, cap)."""
    kept: list[tuple[int, int, float]] = []
    taken = np.zeros(len(exposed), dtype=np.int64)
    for u, r, s in sorted(pairs, key=lambda x: (-x[2], x[0], x[1])):
        if taken[r] < min(int(exposed[r]), cap):
            taken[r] += 1
            kept.append((u, r, s))
    return kept


def train_models(
    events: pa.Table,
    exposures: pa.Table | None,
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
