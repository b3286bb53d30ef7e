"""The intent charge (docs/decisions/0048): a text's intent word the rumor does not hold (an unmet
need: tickets, an episode list, a phone number) costs evidence inside the one score, an intent
word the rumor holds costs nothing, and a long post pays less for one such word."""

from __future__ import annotations

import numpy as np
import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.grams import word_id
from matching.intent import intent_ids, words
from matching.scoring import PairFeatures, combine, intent_charge
from tests.fixtures.matching import LIBRARY

CHARGED = ScoreParams(bare_scale=1.0)  # the intent charge alone (no bare-search rule, 0062)
FREE = ScoreParams(intent_cost=0.0, bare_scale=1.0)
PHISHING = LibraryEntry(
    "r6", "高考成绩查询入口是钓鱼网站，输入准考证号就会被盗号", ("高考", "钓鱼网站")
)


def cells(intent: list[float], shared: float, coverage: float = 0.8) -> PairFeatures:
    """Cells alike but for their unmet intent words (the retelling term decides)."""
    n = len(intent)
    return PairFeatures(
        text=np.arange(n),
        doc=np.zeros(n, dtype=np.int64),
        coverage=np.full(n, coverage),
        containment=np.zeros(n),
        shared=np.full(n, shared),
        wording=np.zeros(n),
        bm=np.full(n, shared * 1.2),
        intent=np.array(intent),
    )


def test_the_intent_words_are_word_grams_sorted_and_stable() -> None:
    ids = intent_ids()
    assert len(ids) > 100 and np.all(ids[1:] > ids[:-1])
    for w in ("全集", "在线", "门票", "入口", "怎么"):
        assert w in words() and np.uint64(word_id(w)) in ids
    assert "真的吗" not in words() and "辟谣" not in words()  # asking about the claim


def test_the_charge_counts_unmet_words_up_to_the_cap_and_shrinks_for_long_texts() -> None:
    p = ScoreParams()
    short = intent_charge(cells([0.0, 1.0, 2.0, 5.0], shared=4.0), p)
    assert short.tolist() == pytest.approx(
        [0.0, p.intent_cost, 2 * p.intent_cost, 2 * p.intent_cost]
    )
    long_post = intent_charge(cells([1.0], shared=16.0, coverage=0.5), p)  # 32 units of text
    assert long_post[0] == pytest.approx(p.intent_cost * (p.intent_size / 32.0) ** 2)
    scores = combine(cells([0.0, 1.0], shared=4.0), p)
    assert scores[0] > scores[1]


def test_an_unmet_intent_word_lowers_a_query_and_a_held_one_costs_nothing() -> None:
    library = [*LIBRARY, PHISHING]
    charged, free = Matcher(params=CHARGED).build(library), Matcher(params=FREE).build(library)
    asked = "成都万达广场 门票 价格"  # the rumor's place, asked for tickets
    got, uncharged = charged.match(asked, k=1), free.match(asked, k=1)
    assert got and uncharged and got[0].rumor_id == uncharged[0].rumor_id == "r3"
    assert got[0].score < uncharged[0].score - 0.05
    claim = charged.match("成都万达广场 爆炸 门票", k=1)  # the same need beside the claim's event
    assert claim and claim[0].rumor_id == "r3" and claim[0].score > got[0].score + 0.05
    held = "高考 成绩 查询 入口 钓鱼网站"  # 查询 and 入口 are the rumor's own words
    a, b = charged.match(held, k=1), free.match(held, k=1)
    assert a and b and a[0].rumor_id == b[0].rumor_id == "r6"
    assert a[0].score == pytest.approx(b[0].score)


def test_every_caller_scores_with_the_charge() -> None:
    m = Matcher().build([*LIBRARY, PHISHING])
    texts = ["成都万达广场 爆炸 门票", "喝板蓝根 预防流感 怎么 买"]
    top = m.top(texts, k=1)
    batch = m.match_batch(texts, k=1)
    assert [round(float(s), 6) for s in top.score] == [b[0].score for b in batch]
