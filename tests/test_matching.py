"""The rumor matcher, specified by example: copies, noisy reposts, quotes, queries, English."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from domain.records import Rumor
from matching import LibraryEntry, Matcher, Thresholds, matcher_library, normalize
from matching.grams import batch_grams
from tests.fixtures.matching import LIBRARY, UNRELATED


@pytest.fixture(scope="module")
def matcher() -> Matcher:
    return Matcher().build(LIBRARY)


def top(matcher: Matcher, text: str | None):
    found = matcher.match(text, k=1)
    return found[0] if found else None


def test_exact_copy_scores_about_one(matcher: Matcher) -> None:
    for entry in LIBRARY:
        m = top(matcher, entry.claim)
        assert m is not None and m.rumor_id == entry.rumor_id
        assert m.score == pytest.approx(1.0, abs=1e-6)
        assert m.matched_text == entry.claim


def test_noisy_reposts_auto_tag(matcher: Matcher) -> None:
    noisy = [
        (
            "r2",
            "转发微博//@爱吃鱼的猫咪:真的假的//@北漂小王2023: "
            "北京将于明天起实行单双号限行 违者罚款两千元！！[怒][doge] http://t.cn/A6x8YzQ",
        ),
        ("r3", "@快乐的小王 【紧急通知】成都万达广场发生爆炸，已经死了好几十个人，各位千万别过去"),
        ("r1", "听说喝板蓝根可以预防流感,医生都在偷偷喝!!!转给家人！"),
        ("r4", "武汉商业银行即将倒闭，存款只能取出五万，赶快去取款 //@阿强: 转需"),
    ]  # fmt: skip
    for rumor_id, text in noisy:
        m = top(matcher, text)
        assert m is not None and m.rumor_id == rumor_id, text
        assert matcher.decide(m.score) == "auto", (text, m.score)


def test_long_commentary_quoting_a_rumor_matches(matcher: Matcher) -> None:
    text = (
        "今天在家族群里看到我二舅发了一大段话，说是内部消息：“成都万达广场发生爆炸，已经死了好几十个人，"
        "大家千万别过去”，我打电话问了在那边上班的同学，他说根本没有这回事，商场今天照常营业，"
        "大家不要再乱转了，这种东西到底是谁编出来的？有没有官方出来说一下的？真的很离谱。"
    )
    m = top(matcher, text)
    assert m is not None and m.rumor_id == "r3"
    assert matcher.decide(m.score) == "auto"


def test_unrelated_texts_score_below_low(matcher: Matcher) -> None:
    for text in UNRELATED:
        m = top(matcher, text)
        assert m is None or m.score < matcher.thresholds.low, (text, m)


def test_english_claims_match(matcher: Matcher) -> None:
    m = top(
        matcher, "RT @someone: drinking BLEACH cures covid-19, doctors confirm!!! https://x.co/a"
    )
    assert m is not None and m.rumor_id == "r5" and matcher.decide(m.score) == "auto"
    q = top(matcher, "does drinking bleach cure covid")
    assert q is not None and q.rumor_id == "r5" and q.score >= matcher.thresholds.low


def test_short_keyword_query_matches(matcher: Matcher) -> None:
    for query, rumor_id in (
        ("板蓝根 预防流感", "r1"),
        ("单双号限行 北京", "r2"),
        ("商业银行 倒闭", "r4"),
    ):
        m = top(matcher, query)
        assert m is not None and m.rumor_id == rumor_id, query
        assert m.score >= matcher.thresholds.low, (query, m.score)


def test_thresholds_decide_auto_review_none() -> None:
    t = Thresholds(high=0.6, low=0.3)
    assert [t.decide(s) for s in (1.0, 0.6, 0.59, 0.3, 0.29, 0.0)] == [
        "auto", "auto", "review", "review", "none", "none",
    ]  # fmt: skip
    assert Matcher(thresholds=t).decide(0.45) == "review"


def test_scores_lie_in_unit_interval_and_sorted(matcher: Matcher) -> None:
    texts = [e.claim for e in LIBRARY] + UNRELATED + ["板蓝根", "北京 爆炸 限行 倒闭"]
    for found in matcher.match_batch(texts, k=5):
        scores = [m.score for m in found]
        assert all(0.0 <= s <= 1.0 for s in scores)
        assert scores == sorted(scores, reverse=True)


def test_batch_equals_single(matcher: Matcher) -> None:
    texts = [e.claim for e in LIBRARY] + UNRELATED + ["", None, "板蓝根 预防流感"]
    assert matcher.match_batch(texts, k=3) == [matcher.match(t, k=3) for t in texts]


def test_top_arrays_are_match_batch(matcher: Matcher) -> None:
    texts = ([e.claim for e in LIBRARY] + UNRELATED + ["", None, "板蓝根 预防流感"]) * 200
    for k in (1, 3):
        top = matcher.top(texts, k)  # crosses the 512-text chunks
        rows = [
            (t, matcher.rumor_ids[r], s)
            for t, r, s in zip(
                top.text.tolist(), top.rumor.tolist(), top.score.tolist(), strict=True
            )
        ]
        expected = [
            (t, m.rumor_id, m.score)
            for t, ms in enumerate(matcher.match_batch(texts, k))
            for m in ms
        ]
        assert rows == expected and len(rows) >= len(LIBRARY) * 200  # every claim copy has a row


def test_empty_text_has_no_match(matcher: Matcher) -> None:
    for text in ("", None, "   ", "[泪][doge]", "http://t.cn/A6x8Yz", "@某人 ", "！！！"):
        assert matcher.match(text) == []


def test_empty_library_matches_nothing() -> None:
    assert Matcher().build([]).match("北京将于明天起实行单双号限行") == []


def test_normalize_removes_platform_noise() -> None:
    text = "转发微博//@小王: 真的吗//@老李：[泪]ＡＢＣ北京限行！ http://t.cn/A6x8Yz @张三 看看"
    assert normalize(text) == "转发微博\n真的吗\nabc北京限行!     看看"


GRAMS_SCRIPT = (
    "from matching.grams import batch_grams;"
    "print(batch_grams(['北京将于明天起实行单双号限行', 'Drinking bleach cures COVID'])[1].sum())"
)


def test_plain_texts_skip_the_noise_patterns_and_noisy_ones_do_not() -> None:
    from matching.normalize import segments

    assert segments("  板蓝根 预防流感  ") == ["板蓝根 预防流感"]
    assert segments("   ") == []
    # each marker sends a text through the noise patterns, full-width and upper case included
    assert segments("ＨＴＴＰ://t.cn/Ab1 看看") == ["看看"]
    assert segments("Ｗｗｗ.example.com 看看") == ["看看"]
    assert segments("看看 T.CN/Ab1") == ["看看"]
    assert segments("[泪]看看") == ["看看"]
    assert segments("回复@某人:看看//@别人: 原文") == ["看看", "原文"]


def test_gram_ids_are_stable_across_processes() -> None:
    """Gram ids must not depend on PYTHONHASHSEED (no salted hash())."""
    outs = set()
    for seed in ("1", "2"):
        env = {"PYTHONHASHSEED": seed}
        done = subprocess.run(
            [sys.executable, "-c", GRAMS_SCRIPT],
            capture_output=True,
            text=True,
            env=env,
            check=True,
        )
        outs.add(done.stdout.strip())
    assert len(outs) == 1
    local = batch_grams(["北京将于明天起实行单双号限行", "Drinking bleach cures COVID"])[1].sum()
    assert outs == {str(np.uint64(local))}


def test_the_library_holds_confirmed_rumors_with_a_claim_in_id_order() -> None:
    rumors = [
        Rumor("r3", "明天全市停水", "livelihood", 2, "false", "confirmed", ("停水",)),
        Rumor("r1", "喝板蓝根能预防新冠", "epidemic", 4, "false", "confirmed", variants=("v",)),
        Rumor("r2", "地震预报", "disaster", 5, "false", "withdrawn"),
        Rumor("r4", " ", "other", 1, "false", "confirmed", ("无题",)),
    ]
    library = matcher_library(rumors)
    assert library == [
        LibraryEntry("r1", "喝板蓝根能预防新冠", (), ("v",)),
        LibraryEntry("r3", "明天全市停水", ("停水",), ()),
    ]
    assert matcher_library(reversed(rumors)) == library


def test_match_batch_chunks_by_characters_and_answers_as_one_pass() -> None:
    """Long batches are scored in runs of at most CHUNK_CHARS characters (a serving thread
    holds the GIL for short stretches only), with the same answers as text by text."""
    from matching import matcher as matcher_module
    from matching.matcher import CHUNK_CHARS, _chunks

    texts = ["x" * 7000, None, "y" * 7000, "z" * 7000, "w" * (CHUNK_CHARS + 5), "v"]
    runs = list(_chunks(texts))
    assert [len(r) for r in runs] == [3, 1, 1, 1]
    assert [t for r in runs for t in r] == texts
    assert all(sum(len(t or "") for t in r) <= CHUNK_CHARS or len(r) == 1 for r in runs)
    assert len(list(_chunks(["a"] * (matcher_module.BATCH + 1)))) == 2


def test_a_long_batch_answers_as_text_by_text(matcher: Matcher) -> None:
    texts = [e.claim + "。" + "的" * 6000 for e in LIBRARY[:4]] + [e.claim for e in LIBRARY[:4]]
    assert matcher.match_batch(texts, 3) == [matcher.match_batch([t], 3)[0] for t in texts]
