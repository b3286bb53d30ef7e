"""Measure, on the tune half of the judged search rows only, the navigational rules of
docs/decisions/0062 (``ScoreParams.name_gate``, ``bare_scale``): for each setting, the `search`
threshold the documented rule picks, the tune rows answered there, and the tune rows read.

Run: ``python -m bench.navigation_sweep`` (``make sweep-navigation``); needs ``../shared/data/ced``
like ``make eval-search`` (prints the reason and exits 0 without it). The test half is never
scored here. The rule is ``bench.intent_sweep.rule_threshold``'s.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from bench import judged as judged_sets
from bench.eval_search import DATA
from bench.intent_sweep import counts, rule_threshold
from bench.search_scoring import right_answers
from bench.tune_half import load_tune_half
from matching import Thresholds

GRID = (
    ("intent", 1.0),  # decision 0058's scorer
    ("navigational", 1.0),  # the narrower gate alone
    *(("intent", scale) for scale in (0.75, 0.0)),
    *(("navigational", scale) for scale in (0.9, 0.75, 0.5, 0.0)),  # 0.0: adopted (0062)
)


def main(argv: list[str] | None = None) -> int:
    """Print each setting's tune-half counts; 0 also when the CED folder is absent."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--show", action="store_true", help="list the tune rows that change")
    args = ap.parse_args(argv)
    tune = load_tune_half(args.data, "navigation-sweep")
    if tune is None:
        return 0
    rows, shipped = tune.rows, Thresholds()
    print(f"tune half, {len(rows)} rows; text family at high {shipped.high}")
    base = None
    for gate, scale in GRID:
        names, score = tune.top1(name_gate=gate, bare_scale=scale)
        right = right_answers(rows, names)
        rule = rule_threshold(rows, right, score)
        print(f"gate {gate} bare_scale {scale:g}")
        print(f"  rule {rule:.4f}: {counts(rows, names, score, rule, shipped.high)}")
        at = shipped.search
        print(f"  main {at:.4f}: {counts(rows, names, score, at, shipped.high)}")
        th = np.array([rule if r.family == "search" else shipped.high for r in rows])
        answered = score >= th
        if base is None:
            base = answered, right
        elif args.show:
            for i, r in enumerate(rows):
                was, now = base[0][i] and base[1][i], answered[i] and right[i]
                neg = r.kind in judged_sets.NEGATIVE_KINDS
                if (neg and answered[i]) or (not neg and was != now):
                    print(f"    {r.id} {r.query} {score[i]:.4f} {'+' if now else '-'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
