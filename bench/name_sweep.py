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
import dataclasses
import sys
from pathlib import Path

from bench import judged as judged_sets
from bench.eval_search import DATA, load_library
from bench.intent_sweep import counts, rule_threshold
from bench.retrievers import MatcherRetriever
from bench.search_scoring import right_answers
from matching import ScoreParams, Thresholds

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
    if not (args.data / "posts.parquet").exists():
        print(f"name-sweep: skipped, no CED data at {args.data}")
        return 0
    rows = [r for r in judged_sets.load(judged_sets.FOLDER) if r.half == "tune"]
    library = load_library(args.data)
    retriever = MatcherRetriever(library)
    post_ids = [e.rumor_id for e in library]
    shipped = Thresholds()
    print(f"tune half, {len(rows)} rows; text family at high {shipped.high}")
    for weight, floor in GRID:
        retriever.matcher.params = dataclasses.replace(
            ScoreParams(), name_weight=weight, name_floor=floor
        )
        pred, score = retriever.top1([r.query for r in rows])
        names = [post_ids[i] if i >= 0 else None for i in pred.tolist()]
        rule = rule_threshold(rows, right_answers(rows, names), score)
        print(f"weight {weight:g} floor {floor:g}")
        print(f"  rule {rule:.4f}: {counts(rows, names, score, rule, shipped.high)}")
        at = shipped.search
        print(f"  main {at:.4f}: {counts(rows, names, score, at, shipped.high)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
