"""Measure, on the tune half of the judged search rows only, changes to the retelling term that
touch short texts alone (docs/decisions/0047): each variant's `search` threshold by the
documented rule, and the tune rows it answers there, at main's 0.8134, and at the threshold
that lets the same number of everyday tune rows through as main does (two).

Run: ``python -m bench.short_query_sweep`` (``make sweep-short-queries``); needs
``../shared/data/ced`` like ``make eval-search`` (prints the reason and exits 0 without it).
The test half is never scored here. A variant replaces ``matching.scoring.combine`` for its run
only; ``M`` is the text's total mass (``shared / coverage``, units of ``idf_max``), so every
variant leaves a text of ``M >= Q`` scored exactly as main scores it.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

import matching.scoring as scoring
from bench import judged as judged_sets
from bench.eval_search import DATA
from bench.search_scoring import kind_metrics, pick_threshold, right_answers
from bench.tune_half import TuneHalf, load_tune_half
from matching.scoring import PairFeatures, ScoreParams

MAIN_SEARCH = 0.8134  # main's Thresholds().search
MAIN_HIGH = 0.9702  # main's Thresholds().high (the text family answers there)
MAIN_COMBINE = scoring.combine
Combine = Callable[[PairFeatures, ScoreParams], np.ndarray]


def _score(f: PairFeatures, p: ScoreParams, knee: np.ndarray | float, cap: np.ndarray | float):
    """main's combine with the coverage knee and the unexplained cap given per cell (the intent
    charge of docs/decisions/0048 as main has it)."""
    query = f.coverage**p.sharpness * np.minimum(1.0, f.shared / p.conf_grams)
    contained = f.containment**p.sharpness * np.minimum(1.0, f.wording / p.contain_grams)
    focus = np.minimum(1.0, f.coverage / knee) ** p.mass_focus
    charge = p.unexplained_cost * np.minimum(_unexplained(f), cap) + scoring.intent_charge(f, p)
    mass = 1.0 - np.exp(-np.maximum(f.bm * focus - charge, 0.0) / p.mass_grams)
    return np.clip(np.maximum(np.maximum(query, contained), mass), 0.0, 1.0)


def _mass(f: PairFeatures) -> np.ndarray:
    """The text's total mass in units of ``idf_max`` (what the coverage divides by)."""
    return f.shared / np.maximum(f.coverage, 1e-9)


def _unexplained(f: PairFeatures) -> np.ndarray:
    """The text's mass the document does not explain."""
    return np.maximum(_mass(f) - f.shared, 0.0)


def uncapped_below(q: float) -> Combine:
    """A text lighter than ``q`` units (a query) pays its whole unexplained mass."""
    return lambda f, p: _score(
        f, p, p.mass_coverage, np.where(_mass(f) < q, np.inf, p.unexplained_cap)
    )


def cap_grows_below(q: float) -> Combine:
    """The cap grows by what the text lacks of ``q`` units (continuous at ``q``)."""
    return lambda f, p: _score(
        f, p, p.mass_coverage, p.unexplained_cap + np.maximum(0.0, q - _mass(f))
    )


def cap_grows_with_share(q: float, k: float) -> Combine:
    """Below ``q`` units, the cap is at least ``k`` times the unexplained mass times its share."""

    def combine(f: PairFeatures, p: ScoreParams) -> np.ndarray:
        """The variant's score."""
        grown = np.maximum(p.unexplained_cap, k * _unexplained(f) * (1.0 - f.coverage))
        return _score(f, p, p.mass_coverage, np.where(_mass(f) < q, grown, p.unexplained_cap))

    return combine


def share_below(q: float, c_min: float, smooth: bool) -> Combine:
    """Below ``q`` units, the coverage knee rises to ``c_min`` (a short query must be explained
    by that share before the retelling term counts in full); ``smooth``: reached at ``q/2``."""

    def combine(f: PairFeatures, p: ScoreParams) -> np.ndarray:
        """The variant's score."""
        m = _mass(f)
        if smooth:
            rise = np.minimum(1.0, 2.0 * np.clip((q - m) / q, 0.0, 1.0))
        else:
            rise = (m < q).astype(float)
        return _score(f, p, p.mass_coverage + (c_min - p.mass_coverage) * rise, p.unexplained_cap)

    return combine


VARIANTS: dict[str, Combine] = {
    "main": MAIN_COMBINE,
    **{f"uncapped M<{q:g}": uncapped_below(q) for q in (8, 10, 12, 16)},
    **{f"cap+(Q-M) Q={q:g}": cap_grows_below(q) for q in (10, 15, 20)},
    **{f"cap>=k·u·(1-c) M<12 k={k:g}": cap_grows_with_share(12, k) for k in (1, 2)},
    **{
        f"knee {c:g} M<{q:g}": share_below(q, c, False)
        for q, c in ((10, 0.6), (12, 0.7), (12, 0.8))
    },
    **{f"knee {c:g} smooth Q={q:g}": share_below(q, c, True) for q, c in ((16, 0.7), (20, 0.8))},
}


@contextmanager
def scored_with(combine: Combine) -> Iterator[None]:
    """``matching.scoring.combine`` replaced for the block only."""
    scoring.combine = combine
    try:
        yield
    finally:
        scoring.combine = MAIN_COMBINE


def _above(x: float) -> float:
    """The 4-decimal threshold just above score ``x`` (as the service's thresholds are written)."""
    return math.ceil((x + 1e-9) * 1e4) / 1e4


def _counts(rows, names, score: np.ndarray, search: float) -> str:
    """Per kind and round: right answers / rows (positive kinds) or answers / rows (negative)."""
    parts = []
    for kind in judged_sets.KINDS:
        for rnd in judged_sets.ROUNDS:
            idx = [i for i, r in enumerate(rows) if r.kind == kind and r.round == rnd]
            if not idx:
                continue
            th = np.array([search if rows[i].family == "search" else MAIN_HIGH for i in idx])
            m = kind_metrics([rows[i] for i in idx], [names[i] for i in idx], score[idx], th)
            negative = kind in judged_sets.NEGATIVE_KINDS
            n = m["answered"] - m["right"] if negative else m["right"]
            parts.append(f"{kind[:5]}{rnd} {n}/{m['rows']}")
    return "  ".join(parts)


def measure(tune: TuneHalf) -> list[str]:
    """The report lines of one variant (the one ``scoring.combine`` is now)."""
    rows = tune.rows
    names, score = tune.top1()
    right = right_answers(rows, names)
    family = np.array([r.family == "search" for r in rows])
    everyday = np.sort(score[[r.kind == "everyday" for r in rows]])
    precise = pick_threshold(score[family], right[family], 0.95)["threshold"]
    rule = max(precise, _above(float(everyday[-1])))  # p >= 0.95 and no everyday tune row
    two = max(precise, _above(float(everyday[-3])))  # as many everyday answers as main's 0.8134
    return [
        f"  rule {rule:.4f}: {_counts(rows, names, score, rule)}",
        f"  main {MAIN_SEARCH:.4f}: {_counts(rows, names, score, MAIN_SEARCH)}",
        f"  two  {two:.4f}: {_counts(rows, names, score, two)}",
    ]


def main(argv: list[str] | None = None) -> int:
    """Print every variant's tune-half counts; 0 also when the CED folder is absent."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args(argv)
    tune = load_tune_half(args.data, "short-query-sweep")
    if tune is None:
        return 0
    print(f"tune half, {len(tune.rows)} rows; text family at high {MAIN_HIGH}")
    for name, combine in VARIANTS.items():
        with scored_with(combine):
            print(name, *measure(tune), sep="\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
