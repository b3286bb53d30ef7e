"""Offline evaluation, time-split, every ranker measured in the same run.

- ``evaluate_ranker``: on a synthetic world, the debunks a user could be shown after the split
  (every debunk of the confirmed rumors they were exposed to, minus those shown before it),
  labelled by that user's clicks (1) and shares (2) after the split; popularity, the rule-only
  ranker, LightFM alone and the serving blend; P@k, R@k, NDCG@k and per-user AUC.
- ``evaluate_at_risk``: on CED (Weibo cascades), from engagement before a time cut, who
  engages with each rumor post after it; ALS against popularity, recall@k and HR@k.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from feature_store.records import Catalog, ExposureState
from offline import catalog as inputs
from offline.exposures import join_exposures
from offline.features import read_events
from offline.train import AtRiskConfig, RankerConfig, fit_als, train_ranker
from ranking.candidates import Candidate
from ranking.models import combine_policy_and_affinity, sigmoid
from ranking.scorers import score_exposure_recency, score_exposure_strength


def ranking_metrics(scores: np.ndarray, labels: np.ndarray, k: int) -> dict[str, float]:
    """P@k, R@k, NDCG@k (graded gains 2^rel - 1) and AUC for one user's candidates; ties are
    broken by position, so callers order candidates deterministically."""
    order = np.argsort(-scores, kind="stable")
    rel = labels[order]
    hits = rel[:k] > 0
    gains = (2.0**rel - 1)[:k] / np.log2(np.arange(2, min(k, len(rel)) + 2))
    ideal = np.sort(2.0**labels - 1)[::-1][:k] / np.log2(np.arange(2, min(k, len(rel)) + 2))
    pos = labels > 0
    out = {
        f"precision@{k}": float(hits.sum() / k),
        f"recall@{k}": float(hits.sum() / max(pos.sum(), 1)),
        f"ndcg@{k}": float(gains.sum() / ideal.sum()) if ideal.sum() > 0 else 0.0,
    }
    if pos.any() and (~pos).any():
        ranks = pd.Series(scores).rank(method="average").to_numpy()
        n_pos, n_neg = pos.sum(), (~pos).sum()
        out["auc"] = float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return out


def _mean(rows: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for r in rows for k in r})
    return {k: round(float(np.mean([r[k] for r in rows if k in r])), 4) for k in keys}


def evaluate_ranker(
    world: Path,
    *,
    train_days: int | None = None,
    k: int = 5,
    config: RankerConfig | None = None,
) -> dict[str, Any]:
    """Train on events before the split, rank each test user's candidates four ways."""
    summary = json.loads((world / "world.json").read_text())
    start = datetime.fromisoformat(summary["start"]).replace(tzinfo=UTC)
    days = int(summary["days"])
    train_days = train_days or max(1, round(days * 0.7))
    split = start + timedelta(days=train_days)
    end = start + timedelta(days=days)
    rumors = inputs.load_rumors(inputs.find_input(world, inputs.RUMOR_FILES))
    debunks = inputs.load_debunks(inputs.find_input(world, inputs.DEBUNK_FILES))
    tags = inputs.load_tags(inputs.find_input(world, inputs.TAG_FILES))
    cat = Catalog.build(rumors, debunks)
    train_dates = [
        f"dt={(start + timedelta(days=d)).date().isoformat()}" for d in range(train_days)
    ]
    train_dates = [d for d in train_dates if (world / "exposures" / d).exists()]
    state_train, _ = join_exposures(world / "exposures", tags, dates=train_dates)
    state_all, _ = join_exposures(world / "exposures", tags)
    events = read_events(world / "debunk_events")
    train_events = events.filter(pc.less(events["ts"], pa.scalar(split, events["ts"].type)))
    test_events = events.filter(pc.greater_equal(events["ts"], pa.scalar(split, events["ts"].type)))
    started = time.perf_counter()
    model, user_rows, train_summary = train_ranker(
        train_events, debunks, rumors, state_train, config
    )
    train_seconds = round(time.perf_counter() - started, 3)

    shown_before = set(zip(*_cols(train_events, "user_id", "debunk_id"), strict=True))
    popularity: dict[str, float] = {}
    for d, e in zip(*_cols(train_events, "debunk_id", "event"), strict=True):
        if e in ("click", "share"):
            popularity[d] = popularity.get(d, 0.0) + 1.0
    labels: dict[str, dict[str, int]] = {}
    for u, d, e in zip(*_cols(test_events, "user_id", "debunk_id", "event"), strict=True):
        if e in ("click", "share"):
            cur = labels.setdefault(u, {})
            cur[d] = max(cur.get(d, 0), 2 if e == "share" else 1)
    exposures = _exposures_by_user(state_all, set(labels))
    now = end.timestamp()
    end_iso = end.strftime("%Y-%m-%dT%H:%M:%SZ")
    rows: dict[str, list[dict[str, float]]] = {"popularity": [], "rule_only": [], "lightfm": [],
                                               "blend": [], "random": []}  # fmt: skip
    rng = np.random.default_rng(0)
    for user in sorted(labels):
        cands: list[Candidate] = []
        for e in exposures.get(user, []):
            rumor = cat.rumors.get(e.rumor_id)
            if rumor is None or not rumor.confirmed:
                continue
            for d in cat.debunks_by_rumor.get(e.rumor_id, ()):
                if d.published_at < end_iso and (user, d.debunk_id) not in shown_before:
                    cands.append(Candidate(rumor=rumor, exposure=e, debunk=d))
        y = np.array([labels[user].get(c.debunk.debunk_id, 0) for c in cands])  # type: ignore[union-attr]
        if len(cands) < 2 or not (y > 0).any():
            continue
        ids = [c.debunk.debunk_id for c in cands]  # type: ignore[union-attr]
        score_exposure_strength(cands)
        score_exposure_recency(cands, now)
        auth = np.array([c.debunk.authority_rank for c in cands])  # type: ignore[union-attr]
        rule = np.array([c.features["strength"] + c.features["recency"] for c in cands])
        rule = rule - 1e-3 * auth
        pop = np.array([popularity.get(d, 0.0) for d in ids]) - 1e-6 * auth
        rows["popularity"].append(ranking_metrics(pop, y, k))
        rows["rule_only"].append(ranking_metrics(rule, y, k))
        rows["random"].append(ranking_metrics(rng.random(len(y)), y, k))
        if model is None:
            continue
        logits = model.logits(user_rows.get(user), ids)
        rows["lightfm"].append(ranking_metrics(logits, y, k))
        for c, z in zip(cands, logits, strict=True):
            c.features["affinity"] = sigmoid(float(z))
        combine_policy_and_affinity(cands, model.weight)
        rows["blend"].append(
            ranking_metrics(np.array([c.score for c in cands]) - 1e-6 * auth, y, k)
        )
    result = {name: _mean(r) for name, r in rows.items() if r}
    base = result["rule_only"][f"ndcg@{k}"] if rows["rule_only"] else 0.0
    lifts = {
        f"{name}_ndcg@{k}_over_rule_only": round(m[f"ndcg@{k}"] / base, 3)
        for name, m in result.items()
        if base > 0
    }
    return {
        "world": str(world),
        "split": split.isoformat(),
        "train_events": train_events.num_rows,
        "test_users": len(rows["rule_only"]),
        "train_seconds": train_seconds,
        "ranker": train_summary,
        "metrics": result,
        "lift": lifts,
    }


def _cols(table: Any, *names: str) -> list[list[Any]]:
    return [table[n].to_pylist() for n in names]


def _exposures_by_user(state: Any, users: set[str]) -> dict[str, list[ExposureState]]:
    """ExposureState records of ``users`` from an exposure-state table."""

    from feature_store.vocab import ACTION_STRENGTH

    t = state.filter(pc.is_in(state["user_id"], pa.array(sorted(users), pa.string())))
    out: dict[str, list[ExposureState]] = {}
    for r in t.to_pylist():
        out.setdefault(r["user_id"], []).append(
            ExposureState(
                r["rumor_id"],
                int(r["exposures"]),
                int(r["first_ts"].timestamp()),
                int(r["last_ts"].timestamp()),
                ACTION_STRENGTH[r["strongest_action"]],
                int(r["surface_mask"]),
            )  # fmt: skip
        )
    return out


# ---------------------------------------------------------------------------------------------
# The at-risk model on CED.


def evaluate_at_risk(
    ced: Path,
    *,
    cut_quantile: float = 0.8,
    k: int = 100,
    min_targets: int = 5,
    config: AtRiskConfig | None = None,
) -> dict[str, Any]:
    """Fit ALS on engagements before the cut; for each rumor post with engagement on both
    sides, rank known users who had not engaged with it; targets: those who engage after."""
    config = config or AtRiskConfig(factors=64, iterations=15, regularization=0.05, alpha=10.0)
    posts = pq.read_table(ced / "posts.parquet", columns=["post_id", "label"]).to_pandas()
    eng = pq.read_table(ced / "engagements.parquet", columns=["post_id", "uid", "ts"]).to_pandas()
    eng = eng.dropna(subset=["ts", "uid"])
    rumor_posts = set(posts.loc[posts["label"] == "rumor", "post_id"])
    cut = eng.loc[eng["post_id"].isin(rumor_posts), "ts"].quantile(cut_quantile)
    train = eng[eng["ts"] < cut].drop_duplicates(["uid", "post_id"])
    test = eng[(eng["ts"] >= cut) & eng["post_id"].isin(rumor_posts)]
    users, ucode = np.unique(train["uid"].to_numpy(dtype=str), return_inverse=True)
    items, icode = np.unique(train["post_id"].to_numpy(dtype=str), return_inverse=True)
    matrix = sp.csr_matrix(
        (np.full(len(ucode), 1.0 + config.alpha, np.float32), (ucode, icode)),
        shape=(len(users), len(items)),
    )
    started = time.perf_counter()
    ufac, ifac = fit_als(matrix, config)
    fit_seconds = round(time.perf_counter() - started, 2)
    activity = np.asarray(matrix.getnnz(axis=1), dtype=np.float64)
    item_row = {p: i for i, p in enumerate(items)}
    user_row = pd.Index(users)
    by_item = matrix.tocsc()
    rows: dict[str, list[dict[str, float]]] = {"als": [], "popularity": []}
    for post, g in test.groupby("post_id", sort=True):
        if post not in item_row:
            continue
        i = item_row[post]
        engaged = by_item.indices[by_item.indptr[i] : by_item.indptr[i + 1]]
        idx = user_row.get_indexer(g["uid"].astype(str).unique())
        targets = np.setdiff1d(idx[idx >= 0], engaged)
        if len(targets) < min_targets:
            continue
        for name, scores in (("als", ufac @ ifac[i]), ("popularity", activity.copy())):
            scores = scores.astype(np.float64)
            scores[engaged] = -np.inf
            top = np.argpartition(-scores, k)[:k]
            hits = np.isin(top, targets).sum()
            rows[name].append({f"recall@{k}": hits / len(targets), f"hr@{k}": float(hits > 0)})
    result = {name: _mean(r) for name, r in rows.items()}
    base = result["popularity"].get(f"recall@{k}", 0.0) if rows["popularity"] else 0.0
    return {
        "data": str(ced),
        "cut": str(cut),
        "train_engagements": len(train),
        "users": len(users),
        "posts": len(items),
        "test_rumors": len(rows["als"]),
        "fit_seconds": fit_seconds,
        "factors": config.factors,
        "metrics": result,
        "lift": {
            f"als_recall@{k}_over_popularity": round(
                result["als"].get(f"recall@{k}", 0.0) / base, 3
            )
            if base
            else None
        },  # fmt: skip
    }
