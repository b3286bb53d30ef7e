"""Equal scores are ordered by the retelling term's unsaturated evidence, then by rumor id
(decision 0056): many rumors score 1.0 for a short query, and the one that shares more of it
should answer, whatever the library's order."""

from __future__ import annotations

import numpy as np

from matching import LibraryEntry, Matcher
from matching.scoring import _best_per_rumor

QUERY = "微信 7月1日 开始收费"
# both hold every term of the query, so both score 1.0; b's wording is the query's own
LIBRARY = [
    LibraryEntry(
        "a",
        "据传移动9月1日开始对微信微博收费：包月10元，7天内超过100条另计，"
        "联通电信另有安排，1日起执行，详见营业厅公告",
    ),
    LibraryEntry("b", "微信收费将于7月1日开始，收费标准信息5分一条，语音1毛一条"),
    LibraryEntry("c", "黄果树瀑布早就没有多少水了，领导一来就开闸放水"),
]


def test_equal_scores_go_to_the_stronger_evidence_then_to_the_lower_rumor_id():
    text = np.zeros(4, dtype=np.int64)
    rumor = np.array([0, 1, 2, 3])
    doc = np.arange(4)
    score = np.array([1.0, 1.0, 1.0, 0.9], dtype=np.float32)
    evidence = np.array([2.0, 5.0, 2.0, 9.0])
    rank = np.array([0, 1, 2, 3], dtype=np.int32)
    got = _best_per_rumor(text, rumor, doc, score, rank, evidence)
    assert got.rumor.tolist() == [1, 0, 2, 3]  # 1.0 by evidence, then rumor id; 0.9 last


def test_the_answer_does_not_depend_on_the_library_order():
    answers = set()
    for order in (LIBRARY, LIBRARY[::-1], [LIBRARY[1], LIBRARY[2], LIBRARY[0]]):
        found = Matcher().build(order).match(QUERY, k=2)
        assert [m.score for m in found] == [1.0, 1.0]
        answers.add(tuple(m.rumor_id for m in found))
    assert answers == {("b", "a")}  # by rumor id alone it would be ("a", "b")
