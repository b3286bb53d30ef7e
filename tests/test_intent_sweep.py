"""The documented `search` rule as ``make sweep-intent`` applies it (docs/decisions/0048): the
lowest score with search-family precision 0.95 that answers at most 1 % of the everyday rows,
counted in whole rows."""

from __future__ import annotations

import numpy as np

from bench.intent_sweep import above, rule_threshold
from bench.judged import Judged


def rows(n_everyday: int, n_search: int) -> list[Judged]:
    """Everyday rows then search rows (each search row expects post p<i>)."""
    every = [Judged(f"e{i}", "everyday", "q", None, "tune", "") for i in range(n_everyday)]
    search = [Judged(f"s{i}", "search", "q", f"p{i}", "tune", "") for i in range(n_search)]
    return every + search


def test_one_everyday_row_in_a_hundred_may_be_answered_and_the_next_may_not() -> None:
    r = rows(150, 100)  # precision stays above 0.95 whichever everyday rows are answered
    score = np.r_[np.linspace(0.1, 0.5, 148), 0.70, 0.90, np.full(100, 0.95)]
    right = np.r_[np.zeros(150, bool), np.ones(100, bool)]
    assert rule_threshold(r, right, score) == above(0.70)  # 0.90 allowed (1 of 150), 0.70 not
    few = rows(99, 100)
    score = np.r_[np.linspace(0.1, 0.5, 98), 0.90, np.full(100, 0.95)]
    right = np.r_[np.zeros(99, bool), np.ones(100, bool)]
    assert rule_threshold(few, right, score) == above(0.90)  # 1 % of 99 is no whole row


def test_precision_binds_when_it_is_higher() -> None:
    r = rows(100, 20)
    score = np.r_[np.full(100, 0.1), np.linspace(0.6, 0.99, 20)]
    right = np.r_[np.zeros(100, bool), np.arange(20) >= 10]  # the ten lowest search rows wrong
    assert rule_threshold(r, right, score) >= score[100 + 10] - 1e-9
