"""Measure, on the tune half of the judged search rows only, the unmet-name charge
(``ScoreParams.name_weight``, ``name_floor``; docs/decisions/0058): for each setting, the
`search` threshold the documented rule picks and the tune rows answered there.

Run: ``python -m bench.name_sweep`` (``make sweep-names``); needs ``../shared/data/ced`` like
``make eval-search`` (prints the reason and exits 0 without it). The test half is never scored
here. The rule is ``bench.intent_sweep.rule_threshold``'s: the lowest score whose search-family
answers reach precision 0.95 and that answers at most 1 % of the everyday tune rows.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.eval_search import DATA
from bench.intent_sweep import counts, rule_threshold
from bench.search_scoring import right_answers
from bench.tune_half import load_tune_half
from matching import Thresholds

GRID = (
    (0.0, 0.9),  # no name charge (this branch's intent words: 视频, 新剧, 节目单 added)
    *((weight, 0.9) for weight in (0.25, 0.5, 0.75)),
    *((1.0, floor) for floor in (0.7, 0.8, 0.9, 1.0)),
    (1.5, 0.9),  # adopted
    (2.0, 0.9),
)


def main(argv: list[str] | None = None) -> int:
    """Print each setting's tune-half counts; 0 also when the CED folder is absent."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    tune = load_tune_half(args.data, "name-sweep")
    if tune is None:
        return 0
    rows, shipped = tune.rows, Thresholds()
    print(f"tune half, {len(rows)} rows; text family at high {shipped.high}")
    for weight, floor in GRID:
        names, score = tune.top1(name_weight=weight, name_floor=floor)
        rule = rule_threshold(rows, right_answers(rows, names), score)
        print(f"weight {weight:g} floor {floor:g}")
        print(f"  rule {rule:.4f}: {counts(rows, names, score, rule, shipped.high)}")
        at = shipped.search
        print(f"  main {at:.4f}: {counts(rows, names, score, at, shipped.high)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
