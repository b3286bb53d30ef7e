"""The retelling term's charge for what a text says that the rumor does not explain
(docs/decisions/0035): proportional to the unexplained mass, capped, nothing when all is
explained, and it lowers a query the rumor explains only in part."""

from __future__ import annotations

import numpy as np
import pytest

from matching import Matcher
from matching.scoring import PairFeatures, ScoreParams, combine, unexplained_charge
from tests.fixtures.matching import LIBRARY


def features(coverage: list[float], shared: float = 3.0, bm: float = 4.5) -> PairFeatures:
    """Cells alike but for how much of the text the document explains (the retelling term
    decides: containment and evidence for the query term are kept low)."""
    n = len(coverage)
    return PairFeatures(
        text=np.arange(n),
        doc=np.zeros(n, dtype=np.int64),
        coverage=np.array(coverage),
        containment=np.zeros(n),
        shared=np.full(n, shared),
        wording=np.zeros(n),
        bm=np.full(n, bm),
        intent=np.zeros(n),
    )


def test_the_charge_is_the_unexplained_mass_up_to_the_cap() -> None:
    p = ScoreParams()
    f = features([1.0, 0.75, 0.5, 0.05])
    charge = unexplained_charge(f, p)
    # shared 3 units: unexplained 0, 1, 3 and 57 units
    assert charge.tolist() == pytest.approx(
        [0.0, 1.0 * p.unexplained_cost, p.unexplained_cap, p.unexplained_cap]
    )


def test_an_unexplained_part_lowers_the_score_and_a_whole_explanation_does_not() -> None:
    p = ScoreParams()
    f = features([1.0, 0.8, 0.6])
    score = combine(f, p)
    assert score[0] > score[1] > score[2]
    free = ScoreParams(unexplained_cost=0.0)
    assert combine(f, free)[0] == pytest.approx(score[0])  # nothing to charge when all explained
    assert combine(f, free)[2] > score[2]


def test_a_long_retelling_pays_no_more_than_the_cap() -> None:
    p = ScoreParams()
    long_post = features([0.4, 0.4], shared=12.0, bm=14.0)  # 18 units unexplained
    expected = 1.0 - np.exp(-(14.0 - p.unexplained_cap) / p.mass_grams)
    assert combine(long_post, p)[0] == pytest.approx(expected)


def test_a_query_with_an_unexplained_intent_word_scores_below_one_the_rumor_explains() -> None:
    charged = Matcher().build(LIBRARY)
    free = Matcher(params=ScoreParams(unexplained_cost=0.0)).build(LIBRARY)
    whole = charged.match("成都万达广场 爆炸 死了好几十个人", k=1)
    asked = "成都万达广场 停车场 收费"  # the place of a rumor, asked about something else
    got, uncharged = charged.match(asked, k=1), free.match(asked, k=1)
    assert whole and whole[0].rumor_id == "r3" and whole[0].score == pytest.approx(1.0)
    assert got and uncharged and got[0].rumor_id == uncharged[0].rumor_id == "r3"
    assert got[0].score < uncharged[0].score - 0.01
    # a five-rumor library's idf is not CED's, so the threshold is not asserted here: the
    # tune-half numbers are in docs/evaluation-search.md
