"""The unshared-term test of short typed searches (docs/decisions/0078): a search typed as
terms, holding no navigational or information-seeking word, does not answer a rumor when one
of its units that the rumor does not hold names an aspect of the rumor's subject (税率, 深度,
做法: the user asks about the subject); an unshared verb or state (死了 for 去世) still answers.
On by default since decision 0079 (the aspect lexicon, a unit held when the rumor holds one of
its words)."""

from __future__ import annotations

import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.navigation import aspect, aspect_words
from tests.fixtures.matching import LIBRARY, best_score

SUB = LibraryEntry("s1", "蛟龙号下潜到七千米海底，拍到了外星人的基地", ())
DEATH = LibraryEntry("d1", "网传郭美美昨天在澳门去世，家人证实消息", ())
SNAKE = LibraryEntry("k1", "埃及潜水员在红海抓到一条十米长的巨蛇", aliases=("巨型海蛇",))
BOOK = [*LIBRARY, SUB, DEATH, SNAKE]
MAIN = ScoreParams(claim_unshared="")  # main's scorer before 0079: no unshared-term test
ASPECT = ScoreParams()  # the default since 0079: 0078's claim_unshared=aspect claim_loose=true
NOUN = ScoreParams(claim_unshared="noun")
TEXTS = ["蛟龙号 下潜 深度", "蛟龙号 下潜深度", "蛟龙号 外星人 基地", "郭美美 死了",
         "今天 天气 不错"]  # fmt: skip


def _score(params: ScoreParams, text: str) -> float:
    return best_score(params, text, BOOK)


def test_the_modes_read_the_head_of_a_unit() -> None:
    assert {"税率", "深度", "政策", "发电量", "做法"} <= aspect_words()
    assert aspect("深度", "aspect") and aspect("最大深度", "aspect")
    assert not aspect("外星人", "aspect")
    assert aspect("外星人", "noun") and aspect("税率", "noun")
    assert not aspect("去世", "noun") and not aspect("死了", "noun")
    assert not aspect("北京", "noun") and aspect("北京", "names")
    with pytest.raises(ValueError):
        aspect("税率", "verbs")


def test_on_by_default_as_measured() -> None:
    """0079 turned on 0078's measured setting; 0078's ``--set`` spelling still means it."""
    assert (ASPECT.claim_unshared, ASPECT.unshared_loose) == ("aspect", True)
    assert not ASPECT.claim_loose  # 0072's and 0075's tests keep their own default
    texts = TEXTS
    plain = Matcher().build(BOOK)
    measured = Matcher(params=ScoreParams(claim_unshared="aspect", claim_loose=True)).build(BOOK)
    for text in texts:
        assert measured.match(text, k=3) == plain.match(text, k=3)


def test_off_nothing_changes() -> None:
    """With the test off, neither looseness setting reaches the score (0072's and 0075's tests
    are off too)."""
    texts = TEXTS
    plain = Matcher(params=MAIN).build(BOOK)
    for p in (ScoreParams(claim_unshared="", claim_loose=True),
              ScoreParams(claim_unshared="", unshared_loose=False)):  # fmt: skip
        same = Matcher(params=p).build(BOOK)
        for text in texts:
            assert same.match(text, k=3) == plain.match(text, k=3)


def test_the_unshared_test_reads_only_its_own_looseness() -> None:
    """A typed compound whose first word the rumor holds (下潜 of 下潜深度) is held with
    ``unshared_loose`` (the default) and unheld without it; ``claim_loose`` does not reach
    the unshared test."""
    assert _score(ASPECT, "蛟龙号 下潜深度") == pytest.approx(_score(MAIN, "蛟龙号 下潜深度"))
    assert _score(ASPECT, "蛟龙号 下潜深度") > 0.78
    assert _score(ScoreParams(unshared_loose=False), "蛟龙号 下潜深度") == 0.0
    tight = ScoreParams(unshared_loose=False, claim_loose=True)
    assert _score(tight, "蛟龙号 下潜深度") == 0.0


def test_an_unshared_aspect_noun_is_a_question_about_the_subject() -> None:
    assert _score(MAIN, "蛟龙号 下潜 深度") > 0.78  # main's scorer before 0079 answers it
    assert _score(ASPECT, "蛟龙号 下潜 深度") == 0.0
    assert _score(NOUN, "蛟龙号 下潜 深度") > 0.78  # jieba tags 深度 ns, a place name


def test_an_unshared_common_noun_by_the_tags() -> None:
    assert _score(MAIN, "蛟龙号 下潜 纪录") > 0.78  # MAIN is the scorer before 0079 (test off)
    assert _score(NOUN, "蛟龙号 下潜 纪录") == 0.0


def test_the_claim_still_answers() -> None:
    for text in ("蛟龙号 外星人 基地", "郭美美 澳门 去世"):
        assert _score(ASPECT, text) == pytest.approx(_score(MAIN, text))
        assert _score(ASPECT, text) > 0.78


def test_an_unshared_verb_is_the_claim_in_the_users_words() -> None:
    assert _score(ASPECT, "郭美美 死了") == pytest.approx(_score(MAIN, "郭美美 死了"))
    assert _score(NOUN, "郭美美 死了") == pytest.approx(_score(MAIN, "郭美美 死了"))


def test_an_aspect_noun_the_rumor_holds_does_not_count() -> None:
    """The limit, stated: a rumor that itself names the aspect (下潜 is in it, 深度 would be
    too) is still answered; what the search adds is all the test reads."""
    deep = LibraryEntry("s2", "蛟龙号最大下潜深度其实只有三千米，数据造假", ())
    book = [*LIBRARY, deep]
    assert best_score(ASPECT, "蛟龙号 下潜 深度", book) == pytest.approx(
        best_score(MAIN, "蛟龙号 下潜 深度", book)
    )


def test_a_moderators_alias_still_answers_a_swapped_noun() -> None:
    """By the noun tags an unshared swapped noun (巨型海蛇 for 巨蛇) reads as a question;
    the rumor's alias lets it answer, as it does for a bare search."""
    assert _score(NOUN, "红海 巨型海蛇 埃及") == pytest.approx(_score(MAIN, "红海 巨型海蛇 埃及"))
    plain = [*LIBRARY, SUB, DEATH, LibraryEntry("k1", SNAKE.claim, ())]
    assert best_score(NOUN, "红海 巨型海蛇 埃及", plain) == 0.0
