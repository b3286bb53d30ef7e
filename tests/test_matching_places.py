"""The place charge (docs/decisions/0057, measured and off by default): a place a text names
that the rumor's text never mentions counts as an unmet intent word inside the one score; a
place the rumor mentions, even inside a longer name (「汕头市」 holds 汕头), costs nothing."""

from __future__ import annotations

import numpy as np
import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.grams import batch_grams
from matching.places import document_masks, names, text_masks, unmet

# the place charge alone: the unmet-name charge (decision 0058) and the bare rule's names test
# (0069) also see 「英国」 as a name the Thailand-visa rumor lacks, so they are off on both sides
NO_PLACES = ScoreParams(name_weight=0.0, claim_names=False)  # the place charge is off (0057)
PLACES = ScoreParams(place_weight=1.0, name_weight=0.0, claim_names=False)
VISA = LibraryEntry(
    "v1",
    "泰国签证最新动态：明年起泰国严格区分旅游团体签证和个人签证，个人签证须本人递交材料",
    ("泰国签证",),
)
SOAP = LibraryEntry("s1", "汕头市出现上门推销香皂的人，闻一下就会被迷晕然后被抢劫", ())
OTHER = LibraryEntry("o1", "喝板蓝根可以预防禽流感，专家称每天两包", ())
LIBRARY = [VISA, SOAP, OTHER]


def test_the_names_are_distinct_and_leave_out_the_home_country() -> None:
    assert len(names()) == len(set(names())) > 100
    assert "中国" not in names() and {"英国", "泰国", "汕头", "广东"} <= set(names())


def test_masks_count_places_a_document_never_mentions() -> None:
    owner, grams, _ = batch_grams(["英国 旅游 签证", "汕头 香皂", "签证 材料"])
    texts = text_masks(owner, grams, 3)
    docs = document_masks(["泰国签证", "汕头市香皂", "英国和泰国的签证"])
    assert unmet(texts[[0, 0, 0]], docs).tolist() == [1.0, 1.0, 0.0]
    assert unmet(texts[[1, 1]], docs[[0, 1]]).tolist() == [1.0, 0.0]  # 汕头市 holds 汕头
    assert unmet(texts[[2]], docs[[0]]).tolist() == [0.0]  # no place named: nothing unmet
    assert texts.dtype == np.uint64 and docs.shape == texts.shape


def test_another_country_s_visa_search_scores_lower_and_the_rumor_s_own_does_not() -> None:
    charged = Matcher(params=PLACES).build(LIBRARY)
    free = Matcher(params=NO_PLACES).build(LIBRARY)
    other = "英国 旅游 签证 材料"  # the rumor's words but another country's visa
    a, b = charged.match(other, k=1), free.match(other, k=1)
    assert b and b[0].rumor_id == "v1"
    assert not a or (a[0].score < b[0].score and a[0].evidence < b[0].evidence - 1.0)
    for own in ("泰国 个人签证 递交 材料", "汕头 推销 香皂 迷晕"):
        a, b = charged.match(own, k=1), free.match(own, k=1)
        assert a and b and a[0].rumor_id == b[0].rumor_id
        assert a[0].score == pytest.approx(b[0].score)


def test_every_caller_scores_with_the_place_charge() -> None:
    m = Matcher(params=PLACES).build(LIBRARY)
    texts = ["英国 旅游 签证 材料", "汕头 推销 香皂 迷晕"]
    top = m.top(texts, k=1)
    batch = m.match_batch(texts, k=1)
    assert [round(float(s), 6) for s in top.score] == [b[0].score for b in batch if b]
