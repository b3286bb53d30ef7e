"""Measure, on the tune half of the judged search rows only, the navigational rules of
docs/decisions/0062 (``ScoreParams.name_gate``, ``bare_scale``) and the claim predicates of
0066 (``bare_words``, ``claim_numbers``, ``claim_words``) and 0069 (``claim_counts``,
``claim_rare``, ``claim_names``): for each setting, the `search` threshold the documented rule
picks, the tune rows answered there, and the tune rows read (``--show``: against the first
setting of its grid).

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
from bench.tune_half import TuneHalf, load_tune_half
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
ADOPTED_0066 = {"bare_words": "information", "bare_pos": "untyped", "claim_numbers": True,
                "claim_words": 2, "claim_counts": True, "claim_rare": 0, "claim_names": False,
                "claim_generic": 0, "claim_specific": 0}  # fmt: skip
# decision 0069: a count with its measure word is no claim number; a content unit counts only
# when few rumors hold it (a document-frequency cap); the rumor must hold the search's names
GRID_0069: tuple[dict[str, float | str | bool], ...] = (
    ADOPTED_0066,  # the base the others are read against
    *(
        {**ADOPTED_0066, "claim_counts": counts, "claim_rare": rare, "claim_names": names}
        for counts in (True, False)
        for names in (False, True)
        for rare in (0, 2, 3, 5, 10, 20, 50)
        if (counts, names, rare) != (True, False, 0)
    ),
    # distinctiveness by the language instead of the library: jieba's dictionary counts
    *(
        {**ADOPTED_0066, "claim_counts": False, "claim_names": names, mode: cap}
        for names in (False, True)
        for mode in ("claim_generic", "claim_specific")
        for cap in (250, 500, 1000, 2000, 4000, 8000)
    ),
)
ADOPTED_0069 = {"bare_words": "information", "bare_pos": "untyped", "claim_numbers": True,
                "claim_words": 2, "claim_counts": False, "claim_names": True,
                "claim_specific": 2000}  # fmt: skip
# decision 0072: a short typed search with no word of the class answers a rumor only when it
# shares this many units with it, or (predicate) one that states something
GRID_0072: tuple[dict[str, float | str | bool], ...] = (
    {**ADOPTED_0069, "claim_shared": 0},  # the base: main's scorer
    *(
        {**ADOPTED_0069, "claim_shared": shared, "claim_predicate": pred, "claim_loose": loose}
        for shared in (2, 3, 4)
        for pred in (False, True)
        for loose in (False, True)
    ),
)
# decision 0075: ... only when a unit it shares is rarer in ordinary posts (CED's non-rumor
# posts) than in the library: the ratio of their rates below claim_background
GRID_0075: tuple[dict[str, float | str | bool], ...] = (
    {**ADOPTED_0069, "claim_background": 0.0},  # the base: main's scorer
    *(
        {
            **ADOPTED_0069,
            "claim_background": ratio,
            "background_prior": prior,
            "background_numbers": nums,
            "claim_loose": loose,
        }
        for ratio in (0.1, 0.2, 0.3, 0.5, 1.0)
        for prior in (0.5, 2.0)
        for nums in (True, False)
        for loose in (False, True)
    ),
)
# decision 0078: ... not when a unit it types and the rumor does not hold names an aspect of
# the subject (a lexicon, or jieba's noun tags); alone, with 0072's predicate test, with 0075's
WITH_0072 = {"claim_loose": True, "claim_shared": 2, "claim_predicate": True}
WITH_0075 = {"claim_loose": True, "claim_background": 0.3, "background_prior": 0.5,
             "background_numbers": True}  # fmt: skip
GRID_0078: tuple[dict[str, float | str | bool], ...] = (
    {**ADOPTED_0069, "claim_unshared": ""},  # the base: main's scorer
    *(
        {**ADOPTED_0069, "claim_unshared": mode, "unshared_loose": loose}
        for mode in ("aspect", "noun", "names")
        for loose in (False, True)
    ),
    *({**ADOPTED_0069, **WITH_0072, "claim_unshared": m} for m in ("aspect", "noun")),
    *({**ADOPTED_0069, **WITH_0075, "claim_unshared": m} for m in ("aspect", "noun")),
)
GRIDS = {"0066": GRID, "0069": GRID_0069, "0072": GRID_0072, "0075": GRID_0075,
         "0078": GRID_0078}  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Print each setting's tune-half counts; 0 also when the CED folder is absent."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--show", action="store_true", help="list the tune rows that change")
    ap.add_argument("--grid", choices=sorted(GRIDS), action="append",
                    help="which decision's grid (default: all)")  # fmt: skip
    ap.add_argument("--upto", type=int, choices=judged_sets.ROUNDS,
                    help="only the rows of this round and earlier ones")  # fmt: skip
    args = ap.parse_args(argv)
    tune = load_tune_half(args.data, "navigation-sweep")
    if tune is None:
        return 0
    if args.upto:
        tune.rows = [r for r in tune.rows if r.round <= args.upto]
    print(f"tune half, {len(tune.rows)} rows; text family at high {Thresholds().high}")
    for grid in args.grid or sorted(GRIDS):
        print(f"grid of decision {grid}")
        _sweep(tune, GRIDS[grid], args.show)
    return 0


def _sweep(tune: TuneHalf, grid: tuple[dict[str, float | str | bool], ...], show: bool) -> None:
    """Print each setting's counts at its rule (and main's `search`), and with ``show`` the
    tune rows that change against the grid's first setting."""
    rows, shipped = tune.rows, Thresholds()
    base = None
    for setting in grid:
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
        elif show:
            for i, r in enumerate(rows):
                was, now = base[0][i] and base[1][i], answered[i] and right[i]
                neg = r.kind in judged_sets.NEGATIVE_KINDS
                if (neg and answered[i]) or (not neg and was != now):
                    print(f"    {r.id} {r.query} {score[i]:.4f} {'+' if now else '-'}")


if __name__ == "__main__":
    sys.exit(main())
