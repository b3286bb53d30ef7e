"""The general-language equivalents table (matching/synonyms.py): a query naming a rumor's
subject by another name meets it, the table never splits a word it does not own, and a batch
grams each text as it would alone (the offsets move with the replacements)."""

from __future__ import annotations

import numpy as np

from matching import LibraryEntry, Matcher
from matching.chinese import cut
from matching.grams import batch_grams, text_block
from matching.synonyms import canonical, groups, rules

LIBRARY = [
    LibraryEntry("s1", "红十字会被曝挪用捐款，善款流向不明"),
    LibraryEntry("s2", "三星赔偿苹果10亿美元，全部用5分硬币支付"),
    LibraryEntry("s3", "明天全市停水停电，赶紧囤水"),
    LibraryEntry("s4", "喝板蓝根可以预防流感"),
]


def replaced(text: str) -> str:
    """``text`` after the table, alone in its batch."""
    block, starts = text_block([text])
    return canonical(block, cut(block), starts)[0]


def test_every_variant_has_one_canonical_form_and_is_reachable() -> None:
    table = rules()
    for members in groups():
        form = min(members, key=len)
        assert all(len(form) <= len(m) for m in members)
        for variant in members:
            if variant != form:
                tokens = tuple(cut(variant))
                assert any(v == tokens for v, _ in table[tokens[0]]), variant


def test_abbreviations_and_foreign_names_meet_the_rumor() -> None:
    matcher = Matcher().build(LIBRARY)
    assert matcher.match("红会 挪用 捐款", k=1)[0].rumor_id == "s1"
    plain = Matcher().build(LIBRARY).match("Samsung 赔偿 Apple 硬币", k=1)[0]
    assert plain.rumor_id == "s2"
    assert plain.score >= matcher.thresholds.search


def test_the_table_replaces_whole_tokens_only() -> None:
    assert replaced("施工行为") == "施工行为"  # 工行 is not a token of it
    assert replaced("工商银行 工行") == "工行 工行"
    assert replaced("pineapple") == "pineapple"
    assert replaced("Samsung赔偿") == "三星赔偿"


def test_a_batch_grams_each_text_as_it_would_alone() -> None:
    texts = ["红十字会 工商银行", "今天天气很好", "", "Samsung 苹果公司 红会", "阿斯匹林 心肌梗塞"]
    owner, grams, counts = batch_grams(texts)
    for i, text in enumerate(texts):
        _, alone, alone_counts = batch_grams([text])
        assert np.array_equal(grams[owner == i], alone)
        assert np.array_equal(counts[owner == i], alone_counts)
