"""Thresholds and metrics of the search evaluation: answer = top-1 rumor when its score reaches
the threshold; a right answer names the expected rumor (or a post of the same claim).

Per kind (test half): precision@1 = right answers / answers; recall@1 = right answers / rows
(positive kinds); false-answer rate = wrong answers / rows (on negative kinds every answer is
wrong). For ``same_topic`` also the rate of answers naming the near rumor itself.

A threshold is chosen per method and family on the tune half: the lowest score whose answers
reach the family's precision target (negative rows count: any answer there is a wrong one).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from bench.judged import NEGATIVE_KINDS, Judged
from matching import ScoreParams

# The targets: search-style p@1 >= 0.95, paraphrases >= 0.90.
PRECISION_TARGET = {"search": 0.95, "text": 0.90}


def right_answers(rows: Sequence[Judged], names: Sequence[str | None]) -> np.ndarray:
    """Whether each predicted post id (None: no candidate) is accepted for its row."""
    hits = [n is not None and n in r.accepted for r, n in zip(rows, names, strict=True)]
    return np.array(hits, dtype=bool)


def pick_threshold(score: np.ndarray, right: np.ndarray, target: float) -> dict:
    """The lowest score whose answers (score >= it) have precision >= ``target``.

    When no cut reaches the target, the cut with the best precision (then the lowest) is taken
    and ``reached`` is False. Only cuts between distinct scores are considered."""
    order = np.lexsort((~right, -score))  # best first; among equal scores, right ones first
    s, h = score[order], right[order]
    keep = s > 0
    s, h = s[keep], h[keep]
    if len(s) == 0:
        return {"threshold": float("inf"), "precision": None, "reached": False}
    last = np.ones(len(s), dtype=bool)
    last[:-1] = s[1:] != s[:-1]
    prec = np.cumsum(h) / np.arange(1, len(h) + 1)
    ok = np.flatnonzero((prec >= target) & last)
    if len(ok):
        i = int(ok[-1])
        return {"threshold": float(s[i]), "precision": round(float(prec[i]), 4), "reached": True}
    cuts = np.flatnonzero(last)
    i = int(cuts[prec[cuts] == prec[cuts].max()][-1])  # the lowest of the most precise cuts
    return {"threshold": float(s[i]), "precision": round(float(prec[i]), 4), "reached": False}


def kind_metrics(
    rows: Sequence[Judged],
    names: Sequence[str | None],
    score: np.ndarray,
    threshold: np.ndarray,
) -> dict:
    """p@1, r@1, false-answer rate and top-1 rate of one kind's rows (thresholds per row)."""
    answered = score >= threshold
    top_right = right_answers(rows, names)
    right = top_right & answered
    n, n_ans, n_right = len(rows), int(answered.sum()), int(right.sum())
    negative = bool(rows) and rows[0].kind in NEGATIVE_KINDS
    out = {
        "rows": n,
        "answered": n_ans,
        "right": n_right,
        "p_at_1": None if negative else (round(n_right / n_ans, 4) if n_ans else None),
        "r_at_1": None if negative else (round(n_right / n, 4) if n else None),
        "false_answer_rate": round((n_ans - n_right) / n, 4) if n else None,
        # how often the top-1 candidate is right whatever its score: ranking, not calibration
        "top1_right_rate": None if negative else (round(float(top_right.mean()), 4) if n else None),
    }
    if rows and rows[0].kind == "same_topic":
        near = np.array([nm == r.near for r, nm in zip(rows, names, strict=True)])
        out["near_answer_rate"] = round(float((near & answered).sum()) / n, 4) if n else None
    return out


def score_params(settings: list[str]) -> ScoreParams:
    """ScoreParams' defaults with ``name=value`` settings (true/false, ints, floats, words;
    a word may be empty: ``claim_unshared=`` turns decision 0078's test off)."""
    fields = {f.name: f.type for f in dataclasses.fields(ScoreParams)}
    out = {}
    for item in settings:
        name, sep, raw = item.partition("=")
        kind = type(getattr(ScoreParams(), name)) if name in fields else None
        if kind is None or not sep or (not raw and kind is not str):
            raise SystemExit(f"round-thresholds: --set {item!r}: not a ScoreParams name=value")
        out[name] = raw == "true" if kind is bool else kind(raw)
    return dataclasses.replace(ScoreParams(), **out)
