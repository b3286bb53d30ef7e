"""Measure, on the tune half of the judged search rows only, the navigational rules of
docs/decisions/0062 (``ScoreParams.name_gate``, ``bare_scale``) and the claim predicates of
0066 (``bare_words``, ``claim_numbers``, ``claim_words``): for each setting, the `search`
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

BARE_0062 = {
    "bare_words": "navigational",
    "bare_pos": "all",
    "claim_numbers": False,
    "claim_words": 0,
}
ADOPTED_0062 = {"name_gate": "navigational", "bare_scale": 0.0, **BARE_0062}
GRID: tuple[dict[str, float | str | bool], ...] = (
    ADOPTED_0062,  # the base every other setting is read against
    {"name_gate": "intent", "bare_scale": 1.0},  # decision 0058's scorer
    {"name_gate": "navigational", "bare_scale": 1.0},  # the narrower gate alone
    *({"name_gate": "intent", "bare_scale": s, **BARE_0062} for s in (0.75, 0.0)),
    *({"name_gate": "navigational", "bare_scale": s, **BARE_0062} for s in (0.9, 0.75, 0.5)),
    # decision 0066: the information-seeking class, and the claim predicates a rumor holds
    *(
        {**ADOPTED_0062, "bare_words": cls, "claim_numbers": nums, "claim_words": least}
        for cls in ("navigational", "information")
        for nums, least in ((False, 0), (True, 0), (True, 2), (True, 3), (False, 2), (False, 3))
        if (cls, nums, least) != ("navigational", False, 0)
    ),
    # the claim predicates without the part-of-speech test: for every text ("none"), or for
    # texts typed as terms only ("untyped": a text typed without spaces keeps the test)
    *(
        {
            **ADOPTED_0062,
            "bare_words": "information",
            "bare_pos": pos,
            "claim_numbers": nums,
            "claim_words": least,
        }
        for pos in ("none", "untyped")
        for nums, least in ((True, 1), (True, 2), (True, 3), (False, 1), (False, 2), (False, 3))
    ),  # "untyped", True, 2: adopted (decision 0066)
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
    for setting in GRID:
        names, score = tune.top1(**setting)
        right = right_answers(rows, names)
        rule = rule_threshold(rows, right, score)
        print(" ".join(f"{k} {v}" for k, v in setting.items()))
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
