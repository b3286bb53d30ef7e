"""Offline evaluation, time-split, every ranker measured in the same run.

- ``evaluate_ranker``: on a synthetic world, the debunks shown to a user after the split,
  labelled by that user's clicks (1) and shares (2); popularity, the rule-only ranker,
  LightFM alone and the serving blend, per user (feed) and per (user, rumor) (which debunk);
  P@k, R@k, NDCG@k, per-user AUC and whether the first-ranked debunk was read.
- ``evaluate_at_risk``: on CED (Weibo cascades), a per-cascade split (each post's early
  engagers known), who engages with each rumor post later; the at-risk scorer (ALS blended
  with co-engagement, its weight tuned on half of the posts) against ALS alone, popularity
  and co-engagement on the other half, recall@k and HR@k.
"""

from __future__ import annotations

import json
import tempfile
import time
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import scipy.sparse as sp

from domain.records import Catalog, ExposureState
from offline.io import catalog as inputs
from offline.io.contracts import TAG_SCHEMA
from offline.join.engine import join_exposures
from offline.models.features import labelled_pairs, read_events
from offline.models.train import (
    AtRiskConfig,
    RankerConfig,
    at_risk_parts,
    at_risk_scores,
    co_engagement,
    fit_als,
    risk_scales,
    train_ranker,
)
from offline.nightly.match import run_match
from offline.nightly.tags import item_texts, matched_items, resolve_tags
from ranking.candidates import Candidate
from ranking.clusters import assign_clusters
from ranking.models import sigmoid
from ranking.pipeline import score_feed_candidates


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


def train_partitions(logs: Path, start: datetime, train_days: int) -> list[str]:
    """The ``dt`` values of the first ``train_days`` days present under ``logs``, as
    ``join_exposures`` takes them (without the folder name's ``dt=``)."""
    days = [(start + timedelta(days=d)).date().isoformat() for d in range(train_days)]
    return [d for d in days if (Path(logs) / f"dt={d}").is_dir()]


def evaluate_ranker(
    world: Path,
    *,
    train_days: int | None = None,
    k: int = 5,
    config: RankerConfig | None = None,
) -> dict[str, Any]:
    """Train on events before the split; rank what each test user was shown after it.

    Test lists are the debunks shown to a user after the split (impression, click, dismiss or
    share; not shown before it), labelled 2 shared, 1 clicked, 0 shown only. The synthetic
    platform serves debunks at random, so these lists are an unbiased sample of the choices
    and "shown, not clicked" is a real negative (an unshown debunk could not be clicked).
    Two views, every ranker in the same run:
    - ``feed``: per user, all their shown debunks (users with >= 2 and a click);
    - ``within_rumor``: per (user, rumor), that rumor's shown debunks: which debunk the user
      reads, the choice ``attach_preferred_debunk`` makes (rule-only = authority order).
    """
    summary = json.loads((world / "world.json").read_text())
    start = datetime.fromisoformat(summary["start"]).replace(tzinfo=UTC)
    days = int(summary["days"])
    train_days = train_days or max(1, round(days * 0.7))
    split = start + timedelta(days=train_days)
    end = start + timedelta(days=days)
    rumors = inputs.load_rumors(inputs.find_input(world, inputs.RUMOR_FILES))
    debunks = inputs.load_debunks(inputs.find_input(world, inputs.DEBUNK_FILES))
    cat = Catalog.build(rumors, debunks)
    tags = night_tags(world, cat)
    train_dates = train_partitions(world / "exposures", start, train_days)
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

    train_pairs = labelled_pairs(train_events)
    shown_before = set(zip(train_pairs["user_id"], train_pairs["debunk_id"], strict=True))
    popularity = train_pairs[train_pairs["label"] > 0].groupby("debunk_id").size().to_dict()
    test = labelled_pairs(test_events)
    keep = [(u, d) not in shown_before and d in cat.debunks for u, d in
            zip(test["user_id"], test["debunk_id"], strict=True)]  # fmt: skip
    test = test[np.array(keep, dtype=bool)] if len(test) else test
    test = test[test["user_id"].isin(test.loc[test["label"] > 0, "user_id"])]
    exposures = _exposures_by_user(state_all, set(test["user_id"]))
    now = end.timestamp()
    names = ("popularity", "rule_only", "random", "lightfm", "blend")
    feed: dict[str, list[dict[str, float]]] = {n: [] for n in names}
    within: dict[str, list[dict[str, float]]] = {n: [] for n in names if n != "blend"}
    rng = np.random.default_rng(0)
    doubtful = ranked = 0  # candidates, and those whose exposure's tag score is below 1
    for user, g in test.groupby("user_id", sort=True):
        by_rumor = {e.rumor_id: e for e in exposures.get(user, [])}
        cands: list[Candidate] = []
        for d in sorted(g["debunk_id"], key=lambda x: (cat.debunks[x].authority_rank, x)):
            deb = cat.debunks[d]
            rid = deb.rumor_ids[0] if deb.rumor_ids else ""
            rumor = cat.rumors.get(rid)
            if rumor is None:
                continue
            e = by_rumor.get(rid) or ExposureState(rid, 0, 0, 0, 0, 0)
            cands.append(Candidate(rumor=rumor, exposure=e, debunk=deb))
        if len(cands) < 2:
            continue
        doubtful += sum(c.exposure.tag_score < 1.0 for c in cands)
        ranked += len(cands)
        label = dict(zip(g["debunk_id"], g["label"], strict=True))
        ids = [c.debunk.debunk_id for c in cands]  # type: ignore[union-attr]
        y = np.array([label[d] for d in ids])
        if not (y > 0).any():
            continue
        # the service's own scoring (strength, recency, priority, tag score); candidates are
        # in authority order, and every sort below is stable: authority breaks ties, as in
        # the service
        score_feed_candidates(cands, now, None)
        scores = {
            "popularity": np.array([popularity.get(d, 0) for d in ids], dtype=np.float64),
            "rule_only": np.array([c.score for c in cands]),
            "random": rng.random(len(y)),
        }
        if model is not None:
            logits = model.logits(user_rows.get(user), ids)
            scores["lightfm"] = np.where(np.isnan(logits), -np.inf, logits)
            for c, z in zip(cands, scores["lightfm"], strict=True):
                c.features["affinity"] = sigmoid(float(z)) if np.isfinite(z) else 0.0
            score_feed_candidates(cands, now, model.weight)
            scores["blend"] = np.array([c.score for c in cands])
        for name, sc in scores.items():
            feed[name].append(ranking_metrics(sc, y, k))
        rumor_of = np.array([c.rumor.rumor_id for c in cands])
        for rid in sorted(set(rumor_of)):
            m = rumor_of == rid
            if m.sum() < 2 or not (y[m] > 0).any():
                continue
            for name, sc in scores.items():
                if name == "blend":
                    continue  # within one rumor the blend is the model's order
                # rule-only within a rumor: authority order (all candidates share the exposure)
                s_in = np.zeros(m.sum()) if name == "rule_only" else sc[m]
                within[name].append(ranking_metrics(s_in, y[m], k) | _pick(s_in, y[m]))
    views = {"feed": feed, "within_rumor": within}
    metrics = {v: {n: _mean(r) for n, r in rows.items() if r} for v, rows in views.items()}
    lifts = {}
    for v, result in metrics.items():
        base = result.get("rule_only", {}).get(f"ndcg@{k}", 0.0)
        for name, m in result.items():
            if base > 0 and name != "rule_only":
                lifts[f"{v}.{name}_ndcg@{k}_over_rule_only"] = round(m[f"ndcg@{k}"] / base, 3)
    return {
        "world": str(world),
        "split": split.isoformat(),
        "train_events": train_events.num_rows,
        "test_users": len(feed["rule_only"]),
        "test_user_rumors": len(within["rule_only"]),
        "train_seconds": train_seconds,
        "ranker": train_summary,
        "tags": {
            "manual": int(pc.sum(pc.equal(tags["source"], "manual")).as_py() or 0),
            "matched": int(pc.sum(pc.equal(tags["source"], "matched")).as_py() or 0),
            "feed_candidates": ranked,
            "feed_candidates_tag_score_below_1": doubtful,
        },
        "metrics": metrics,
        "lift": lifts,
    }


def night_tags(world: Path, catalog: Catalog) -> pa.Table:
    """The tag set the nightly job joins with (TAG_SCHEMA): the world's hand tags plus the
    matcher's auto tags of its ``items.parquet`` (scored, checked against their texts),
    resolved by tag precedence, so exposures carry the tag scores serving weighs."""
    rumors, clusters = assign_clusters(list(catalog.rumors.values()))
    tags = inputs.load_sourced_tags(inputs.find_input(world, inputs.TAG_FILES))
    items = world / "items.parquet"
    if items.exists():
        with tempfile.TemporaryDirectory() as out:
            run_match(items, world, Path(out), rumors=rumors,
                      titles=[d.title for d in catalog.debunks.values()])  # fmt: skip
            auto = pq.read_table(Path(out) / "matched_tags.parquet")
        tags = pa.concat_tables([tags, auto.select(TAG_SCHEMA.names).cast(TAG_SCHEMA)])
    claims = {r.rumor_id: r.claim for r in rumors}
    texts = item_texts([items], matched_items(tags))
    return resolve_tags(tags, clusters, texts, claims)[0]


def _pick(scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """Whether the first-ranked debunk (the one served) was clicked or shared."""
    return {"pick_clicked": float(labels[int(np.argmax(scores))] > 0)}


def _cols(table: Any, *names: str) -> list[list[Any]]:
    return [table[n].to_pylist() for n in names]


def _exposures_by_user(state: Any, users: set[str]) -> dict[str, list[ExposureState]]:
    """ExposureState records of ``users`` from an exposure-state table, with the pair's tag
    score (1.0 for a state without the column or a null, as the store reads them)."""

    from domain.vocab import ACTION_STRENGTH

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
                tag_score=_tag_score(r.get("tag_score")),
            )  # fmt: skip
        )
    return out


def _tag_score(value: float | None) -> float:
    """A state row's tag score as ExposureState holds it: 1.0 when absent."""
    return 1.0 if value is None else float(value)


# ---------------------------------------------------------------------------------------------
# The at-risk model on CED.


def evaluate_at_risk(
    ced: Path,
    *,
    known_fraction: float = 0.5,
    k: int = 100,
    min_targets: int = 5,
    config: AtRiskConfig | None = None,
    betas: tuple[float, ...] = (0.3, 1.0, 3.0, 10.0),
) -> dict[str, Any]:
    """Per-cascade time split: for every post (rumor or not) the earliest ``known_fraction``
    of its engagers are known, the rest are not. ALS is fitted on the known engagements of all
    posts (non-rumor posts are the background); for each rumor post with at least
    ``min_targets`` later engagers who are known users, every known user who is not one of
    its early engagers is ranked by the post's trained item factor, and the later engagers
    are the targets. Baselines in the same run: popularity (users by their number of known
    engagements) and co-engagement (users by how many early engagers of the post they
    shared other posts with: X (X^T x_post)). The at-risk model is the serving scorer
    (offline.models.train.at_risk_scores: ALS + beta x cosine co-engagement, each over its max), its
    beta chosen from ``betas`` on the tuning half of the posts; every number in ``metrics``
    and ``lift`` is measured on the other half only."""
    config = config or AtRiskConfig(factors=64, iterations=15, regularization=0.1, alpha=20.0)
    posts = pq.read_table(ced / "posts.parquet", columns=["post_id", "label"]).to_pandas()
    eng = pq.read_table(ced / "engagements.parquet", columns=["post_id", "uid", "ts"]).to_pandas()
    eng = eng.dropna(subset=["ts", "uid"])
    eng = eng.sort_values(["post_id", "ts", "uid"], kind="stable")
    eng = eng.drop_duplicates(["post_id", "uid"])  # a user's first engagement with a post
    size = eng.groupby("post_id")["uid"].transform("size").to_numpy()
    rank = eng.groupby("post_id").cumcount().to_numpy()
    early = rank < np.ceil(known_fraction * size)
    rumor_posts = set(posts.loc[posts["label"] == "rumor", "post_id"])
    train = eng[early]
    test = eng[~early & eng["post_id"].isin(rumor_posts).to_numpy()]
    users, ucode = np.unique(train["uid"].to_numpy(dtype=str), return_inverse=True)
    items, icode = np.unique(train["post_id"].to_numpy(dtype=str), return_inverse=True)
    matrix = sp.csr_matrix(
        (np.ones(len(ucode), np.float32), (ucode, icode)), shape=(len(users), len(items))
    )
    started = time.perf_counter()
    ufac, ifac = fit_als((matrix * (1.0 + config.alpha)).tocsr(), config)
    fit_seconds = round(time.perf_counter() - started, 2)
    activity = np.asarray(matrix.getnnz(axis=1), dtype=np.float64)
    item_row = {p: i for i, p in enumerate(items)}
    user_row = pd.Index(users)
    by_item = matrix.tocsc()
    by_post = matrix.T.tocsr()
    names = ("at_risk", "als", "popularity", "co_engagement")
    rows: dict[str, dict[str, list[dict[str, float]]]] = {"tune": {}, "held_out": {}}
    targets_total = {"tune": 0, "held_out": 0}
    for post, g in test.groupby("post_id", sort=True):
        if post not in item_row:
            continue
        i = item_row[post]
        engaged = by_item.indices[by_item.indptr[i] : by_item.indptr[i + 1]]
        idx = user_row.get_indexer(g["uid"].astype(str).unique())
        targets = np.setdiff1d(idx[idx >= 0], engaged)
        if len(targets) < min_targets:
            continue
        part = "tune" if _is_tuning_post(str(post)) else "held_out"
        targets_total[part] += len(targets)
        co = by_post @ np.asarray(by_item[:, i].todense()).ravel()
        co[i] = 0.0
        binary, cos_items = co_engagement(matrix, np.array([i]))
        als, cos = at_risk_parts(ufac, ifac[[i]], binary, cos_items)
        unexposed = np.ones((len(users), 1), dtype=bool)
        unexposed[engaged] = False
        scales = risk_scales(als, cos, unexposed)
        ranked = {"als": als[:, 0], "popularity": activity, "co_engagement": matrix @ co}
        for beta in betas:
            ranked[f"at_risk_{beta:g}"] = at_risk_scores(als, cos, scales, beta)[:, 0]
        for name, scores in ranked.items():
            scores = np.array(scores, dtype=np.float64)
            scores[engaged] = -np.inf
            top = np.argpartition(-scores, k)[:k]
            hits = np.isin(top, targets).sum()
            rows[part].setdefault(name, []).append(
                {f"recall@{k}": hits / len(targets), f"hr@{k}": float(hits > 0)}
            )
    tuned = {name: _mean(r) for name, r in rows["tune"].items()}
    beta = max(betas, key=lambda b: (tuned.get(f"at_risk_{b:g}", {}).get(f"recall@{k}", 0.0), -b))
    held = rows["held_out"]
    held["at_risk"] = held.get(f"at_risk_{beta:g}", [])
    rows_out = {name: held.get(name, []) for name in names}
    result = {name: _mean(r) for name, r in rows_out.items()}
    base = result["popularity"].get(f"recall@{k}", 0.0) if rows_out["popularity"] else 0.0
    tune_base = tuned.get("popularity", {}).get(f"recall@{k}", 0.0)
    return {
        "data": str(ced),
        "split": f"per cascade: first {known_fraction:.0%} of each post's engagers known",
        "posts_split": "tune: crc32(post_id) even (chooses beta); reported: the others",
        "train_engagements": len(train),
        "users": len(users),
        "posts": len(items),
        "test_rumors": len(rows_out["als"]),
        "test_targets": targets_total["held_out"],
        "tune_rumors": len(rows["tune"].get("als", [])),
        "tune_targets": targets_total["tune"],
        "co_weight": beta,
        "fit_seconds": fit_seconds,
        "als": {
            "factors": config.factors,
            "regularization": config.regularization,
            "alpha": config.alpha,
            "iterations": config.iterations,
        },  # fmt: skip
        "metrics": result,
        "tune_recall_over_popularity": {
            name: round(m.get(f"recall@{k}", 0.0) / tune_base, 3)
            for name, m in sorted(tuned.items())
            if tune_base
        },
        "lift": {
            f"{name}_recall@{k}_over_popularity": round(m.get(f"recall@{k}", 0.0) / base, 3)
            for name, m in result.items()
            if base and name != "popularity"
        },
    }


def _is_tuning_post(post_id: str) -> bool:
    """Half of the posts, fixed by their id: beta is chosen on these, never reported on."""
    return zlib.crc32(post_id.encode()) % 2 == 0
