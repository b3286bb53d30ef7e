"""eval-matching's claim-level rows (decision 0056): a sibling rumor of the quoted claim counts
as right at claim level only, and the auto-tagger's objections remove a refuting text."""

from __future__ import annotations

import numpy as np

from bench import eval_matching_claims as emc
from matching import LibraryEntry

LIBRARY = [
    LibraryEntry("r1", "微信收费将于7月1日开始，收费标准信息5分一条，语音1毛一条"),
    LibraryEntry("r2", "微信收费将于7月1日开始，收费标准信息5分一条，语音1毛一条！转"),
    LibraryEntry("r3", "黄果树瀑布早就没有多少水了，领导一来就开闸放水"),
]


def test_a_sibling_of_the_quoted_claim_is_right_at_claim_level_only():
    cluster = emc.cluster_index(LIBRARY)
    assert cluster[0] == cluster[1] != cluster[2]
    quoted = [(0,), (0,), (2,)]
    pred = np.array([1, 2, 2])
    assert emc.claim_hits(quoted, pred, cluster).tolist() == [True, False, True]


def test_at_high_counts_posts_claims_and_kept_tags():
    texts = [
        "转发：微信收费将于7月1日开始，收费标准信息5分一条",  # quotes r1, best r2 (sibling)
        "辟谣：微信收费将于7月1日开始的消息不实",  # quotes r1, refutes: the tagger drops it
        "今天天气很好，出去走走，顺便买点水果回家",  # a negative answered wrongly
        "领导一来就开闸放水，黄果树瀑布真会演",  # quotes r3, right
    ]
    quoted = [(0,), (0,), (), (2,)]
    pred = np.array([1, 0, 2, 2])
    score = np.array([0.99, 0.99, 0.98, 0.5])
    rows = np.ones(4, dtype=bool)
    post, claim, tag = emc.at_high(texts, quoted, pred, score, LIBRARY, rows, 0.97)
    assert (post["flagged"], post["false_positives"]) == (3, 2)
    assert (claim["flagged"], claim["false_positives"]) == (3, 1)
    assert (tag["flagged"], tag["false_positives"]) == (2, 1)
    assert tag["recall"] == round(1 / 3, 4)
    assert "auto-tag" in emc.table([post, claim, tag], 0.97)


def test_levels_count_each_half_and_level_at_each_threshold():
    quoted = [(0,), (0,), (), (2,)]
    pred = np.array([1, 0, 2, 2])
    score = np.array([0.99, 0.97, 0.98, 0.96])
    halves = {
        "tune": np.array([True, True, False, False]),
        "test": np.array([False, False, True, True]),
    }
    rows = emc.levels(quoted, pred, score, LIBRARY, halves, thresholds=(0.96, 0.985))
    got = {(r["high"], r["half"], r["level"]): (r["flagged"], r["false_positives"]) for r in rows}
    assert got[(0.96, "tune", "post")] == (2, 1) and got[(0.96, "tune", "claim")] == (2, 0)
    assert got[(0.96, "test", "post")] == (2, 1)  # the negative answered, r3 right
    assert got[(0.985, "tune", "post")] == (1, 1) and got[(0.985, "test", "claim")] == (0, 0)
    assert "0.985" in emc.levels_table(rows)
