"""Claim predicates of a bare search (docs/decisions/0066): an information-seeking search on
a name a rumor holds goes unanswered, unless the rumor also holds what the search claims (a
number of it, or enough of its other non-name words)."""

from __future__ import annotations

import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.claimtext import ClaimText
from matching.navigation import bare, predicates

VISA = LibraryEntry("v1", "泰国旅游签证将免签，中国游客入境材料只需护照", ())
SHOW = LibraryEntry("t1", "焦点访谈主持人名单曝光，名嘴月薪二十六万", ())
SEEDS = LibraryEntry("s1", "恰恰瓜子在美国的价格只有国内的十分之一", ())
PIGS = LibraryEntry("p1", "萧山死猪被做成饲料，养鸭场曝光视频", ())
BOOK = [VISA, SHOW, SEEDS, PIGS]
NAV = ScoreParams(claim_words=0, claim_numbers=False, bare_words="navigational")
INFO = ScoreParams(claim_words=0, claim_numbers=False, bare_words="information")
OFF = ScoreParams(bare_scale=1.0)


def _score(params: ScoreParams, text: str) -> float:
    """The best score ``text`` gets over ``BOOK`` (0 when nothing matches)."""
    got = Matcher(params=params).build(BOOK).match(text, k=1)
    return got[0].score if got else 0.0


def test_which_rumors_hold_a_word_is_read_in_folded_text_per_rumor() -> None:
    claims = ClaimText(["簽證材料", "护照", "签证"], [0, 0, 2])
    holding = {w: [r for r in range(3) if claims.holds(r, w)] for w in ("签证", "护照", "航班")}
    assert holding == {"签证": [0, 2], "护照": [0], "航班": []}  # 簽證 is found as 签证; a
    # variant counts for its rumor
    assert not claims.holds(0, "材料护照")  # no word spans two documents
    assert not claims.holds(1, "")


def test_the_predicates_are_numbers_and_non_name_words_outside_the_class() -> None:
    nums, words = predicates("恰恰瓜子 美国 价格 十分之一", "information")
    assert nums == ["十分之一"]
    assert words == ["恰恰瓜子"]  # typed as one unit; 美国, a name, and 价格, of the class, out
    assert predicates("北京 房价 26万", "information") == (["26万"], ["房价"])
    assert predicates("萧山饲料曝光视频", "information")[1] == ["饲料", "曝光"]  # jieba's words


@pytest.mark.parametrize(
    ("text", "nav", "info"),
    [
        ("焦点访谈 主持人 名单", False, True),  # 名单: information-seeking, not navigational
        ("泰国 旅游 签证 材料", False, False),  # 签证 is tagged a verb: the tags say claim
        ("瑞典 移民 条件", False, True),
        ("恰恰瓜子 价格", True, True),
        ("焦点访谈 主持人 名单 造假", False, False),  # 造假: a verb
    ],
)
def test_the_information_class_widens_what_a_bare_search_may_hold(
    text: str, nav: bool, info: bool
) -> None:
    assert bare(text, "navigational") is nav
    assert bare(text, "information") is info


def test_an_information_search_on_a_rumors_names_goes_unanswered() -> None:
    text = "焦点访谈 主持人 名单"
    assert _score(OFF, text) > 0.9  # every word is the rumor's
    assert _score(NAV, text) == pytest.approx(_score(OFF, text))
    assert _score(INFO, text) == 0.0


def test_a_rumor_holding_the_searchs_claim_words_still_answers() -> None:
    claim = "萧山 死猪 饲料 养鸭场 曝光 视频"  # 曝光 is tagged a noun: bare by the tags alone
    assert bare(claim, "information")
    assert _score(INFO, claim) == 0.0
    two = ScoreParams(claim_words=2, claim_numbers=False, bare_words="information")
    assert _score(two, claim) == pytest.approx(_score(OFF, claim))
    assert _score(OFF, claim) > 0.9
    assert _score(ScoreParams(claim_words=5, bare_words="information"), claim) == 0.0


def test_the_default_is_the_adopted_rule() -> None:
    p = ScoreParams()
    assert (p.bare_words, p.bare_pos, p.claim_numbers, p.claim_words) == (
        "information",
        "untyped",
        True,
        2,
    )
    assert _score(p, "焦点访谈 名单") == 0.0  # one unit the rumor holds is a name looked up
    assert _score(p, "萧山 死猪 饲料 养鸭场 曝光 视频") > 0.9


def test_a_rumor_holding_the_searchs_number_still_answers() -> None:
    claim = "恰恰瓜子 美国 价格 十分之一"
    nums = ScoreParams(claim_numbers=True, claim_words=0, bare_words="information")
    assert _score(INFO, claim) == 0.0
    assert _score(nums, claim) == pytest.approx(_score(OFF, claim))
    assert _score(nums, "恰恰瓜子 美国 价格 一箱") == 0.0  # the rumor holds no 一箱


def test_a_sentence_typed_without_spaces_keeps_the_part_of_speech_test() -> None:
    post = "中国政府你在哪里钓鱼岛呼唤你"  # a posted sentence: 呼唤 is a verb in context
    assert not bare(post, "information", "untyped")
    assert bare(post, "information", "none")
    assert bare("萧山 死猪 饲料 养鸭场 曝光 视频", "information", "untyped")  # typed terms
