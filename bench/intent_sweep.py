"""Measure, on the tune half of the judged search rows only, the intent charge of
docs/decisions/0048 (``ScoreParams.intent_cost``, ``intent_cap``, ``intent_size``): for each
setting, the `search` threshold the documented rule picks and the tune rows answered there.

Run: ``python -m bench.intent_sweep`` (``make sweep-intent``); needs ``../shared/data/ced`` like
``make eval-search`` (prints the reason and exits 0 without it). The test half is never scored
here. The rule: the lowest score whose search-family answers reach precision 0.95 and that
answers at most 1 % of the everyday tune rows (counted in whole rows, rounded down).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from bench import judged as judged_sets
from bench.eval_search import DATA
from bench.search_scoring import kind_metrics, pick_threshold, right_answers
from bench.tune_half import load_tune_half
from matching import Thresholds

GRID = (
    (0.0, 2.0, 12.0),  # no intent charge: main's scorer
    *((cost, 2.0, 12.0) for cost in (2.0, 3.0, 4.0, 5.0, 6.0)),
    *((4.0, 2.0, size) for size in (8.0, 16.0, 24.0)),
    (4.0, 1.0, 12.0),
)


def above(x: float) -> float:
    """The 4-decimal threshold just above score ``x`` (as the service's thresholds are written)."""
    return math.ceil((x + 1e-9) * 1e4) / 1e4


def rule_threshold(rows, right: np.ndarray, score: np.ndarray) -> float:
    """The documented `search` rule on the tune rows given (see the module docstring)."""
    family = np.array([r.family == "search" for r in rows])
    precise = pick_threshold(score[family], right[family], 0.95)["threshold"]
    everyday = np.sort(score[[r.kind == "everyday" for r in rows]])
    allowed = int(0.01 * len(everyday))
    return max(precise, above(float(everyday[-(allowed + 1)])))


def counts(rows, names, score: np.ndarray, search: float, high: float) -> str:
    """Per kind: right answers / rows (positive kinds) or answers / rows (negative kinds)."""
    parts = []
    for kind in judged_sets.KINDS:
        idx = [i for i, r in enumerate(rows) if r.kind == kind]
        th = np.array([search if rows[i].family == "search" else high for i in idx])
        m = kind_metrics([rows[i] for i in idx], [names[i] for i in idx], score[idx], th)
        n = m["answered"] - m["right"] if kind in judged_sets.NEGATIVE_KINDS else m["right"]
        parts.append(f"{kind[:5]} {n}/{m['rows']}")
    return "  ".join(parts)


def main(argv: list[str] | None = None) -> int:
    """Print each setting's tune-half counts; 0 also when the CED folder is absent."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    tune = load_tune_half(args.data, "intent-sweep")
    if tune is None:
        return 0
    rows, high = tune.rows, Thresholds().high
    print(f"tune half, {len(rows)} rows; text family at high {high}")
    for cost, cap, size in GRID:
        names, score = tune.top1(intent_cost=cost, intent_cap=cap, intent_size=size)
        rule = rule_threshold(rows, right_answers(rows, names), score)
        print(f"cost {cost:g} cap {cap:g} size {size:g}")
        print(f"  rule {rule:.4f}: {counts(rows, names, score, rule, high)}")
        print(f"  main {0.8134:.4f}: {counts(rows, names, score, 0.8134, high)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
