"""Claim-level precision of the auto-tag threshold for ``make eval-matching`` (decision 0056).

The quote rule names only the rumor posts a text quotes, so a repost whose best rumor is another
post of the same claim counts as a false positive there. Issue 17 counts a matcher tag to a
sibling rumor as the same claim (claim clusters, ``ranking/clusters.py``), and the nightly job
drops a tag its text objects to (``offline/nightly/provenance.py: tag_objection``: refutations,
fragments). This module reports, at the shipped ``high``, the post-level figure, the claim-level
one, and the claim-level one of the tags the auto-tagger would actually keep.
"""

from __future__ import annotations

import numpy as np

from matching import LibraryEntry
from offline.nightly.provenance import tag_objection
from ranking.clusters import cluster_claims


def cluster_index(library: list[LibraryEntry]) -> np.ndarray:
    """Each library entry's claim cluster as a small integer (the nightly job's clusters)."""
    clusters = cluster_claims({e.rumor_id: e.claim for e in library})
    ids = {c: i for i, c in enumerate(sorted(set(clusters.values())))}
    return np.array([ids[clusters[e.rumor_id]] for e in library], dtype=np.int64)


def claim_hits(quoted: list[tuple[int, ...]], pred: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    """Whether each top prediction is in the claim cluster of a rumor the text quotes."""
    out = np.zeros(len(quoted), dtype=bool)
    for i, (p, q) in enumerate(zip(pred.tolist(), quoted, strict=True)):
        out[i] = bool(q) and any(cluster[p] == cluster[x] for x in q)
    return out


def kept_by_tagger(
    texts: list[str], pred: np.ndarray, library: list[LibraryEntry], rows: np.ndarray
) -> np.ndarray:
    """Rows (of ``rows``) whose tag to the predicted rumor ``tag_objection`` lets through."""
    keep = np.zeros(len(texts), dtype=bool)
    for i in np.flatnonzero(rows):
        keep[i] = tag_objection(texts[i], library[int(pred[i])].claim) is None
    return keep


def _row(name: str, flagged: np.ndarray, hit: np.ndarray, n_positive: int) -> dict:
    n_flag, correct = int(flagged.sum()), int((flagged & hit).sum())
    return {
        "level": name,
        "flagged": n_flag,
        "false_positives": n_flag - correct,
        "precision": round(correct / n_flag, 4) if n_flag else 1.0,
        "recall": round(correct / n_positive, 4) if n_positive else 0.0,
    }


def at_high(
    texts: list[str],
    quoted: list[tuple[int, ...]],
    pred: np.ndarray,
    score: np.ndarray,
    library: list[LibraryEntry],
    rows: np.ndarray,
    high: float,
) -> list[dict]:
    """Post-level, claim-level and auto-tagger (claim-level, objections applied) precision and
    recall of ``score >= high`` on ``rows``."""
    positive = np.array([len(q) > 0 for q in quoted])
    n_pos = int((positive & rows).sum())
    post_hit = np.array([p in q for p, q in zip(pred.tolist(), quoted, strict=True)])
    claim_hit = claim_hits(quoted, pred, cluster_index(library))
    flagged = (score >= high) & rows
    kept = flagged & kept_by_tagger(texts, pred, library, flagged)
    return [
        _row("post", flagged, post_hit, n_pos),
        _row("claim", flagged, claim_hit, n_pos),
        _row("auto-tag", kept, claim_hit, n_pos),
    ]


def table(rows: list[dict], high: float) -> str:
    """The three rows as plain text."""
    lines = [f"matcher at high={high} (test half): level, flagged, false positives, P, R"]
    for r in rows:
        lines.append(
            f"  {r['level']:<9} {r['flagged']:>6} {r['false_positives']:>5} "
            f"{r['precision']:>7.4f} {r['recall']:>7.4f}"
        )
    return "\n".join(lines)


LEVELS = (0.9554, 0.9702, 0.975, 0.98, 0.985, 0.99, 1.0)  # the rules' picks and above (0057)


def levels(
    quoted: list[tuple[int, ...]],
    pred: np.ndarray,
    score: np.ndarray,
    library: list[LibraryEntry],
    halves: dict[str, np.ndarray],
    thresholds: tuple[float, ...] = LEVELS,
) -> list[dict]:
    """Post- and claim-level precision/recall of ``score >= t`` per half, for each ``t``: what
    a higher `high` would buy at each level (decision 0057)."""
    positive = np.array([len(q) > 0 for q in quoted])
    post_hit = np.array([p in q for p, q in zip(pred.tolist(), quoted, strict=True)])
    claim_hit = claim_hits(quoted, pred, cluster_index(library))
    out = []
    for t in thresholds:
        for half, rows in halves.items():
            n_pos = int((positive & rows).sum())
            for name, hit in (("post", post_hit), ("claim", claim_hit)):
                out.append({"high": t, "half": half, **_row(name, (score >= t) & rows, hit, n_pos)})
    return out


def levels_table(rows: list[dict]) -> str:
    """The rows of ``levels`` as plain text, one line a threshold."""
    lines = ["matcher over high: threshold, then per half and level P / R (false positives)"]
    for t in dict.fromkeys(r["high"] for r in rows):
        cells = [
            f"{r['half']} {r['level']} {r['precision']:.4f}/{r['recall']:.4f} "
            f"({r['false_positives']})"
            for r in rows
            if r["high"] == t
        ]
        lines.append(f"  {t:<7} " + "  ".join(cells))
    return "\n".join(lines)
