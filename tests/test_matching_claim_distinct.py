"""The bare rule's distinctiveness, names and counts tests (docs/decisions/0069): a bare search
is a claim search for a rumor only when the rumor holds a claim number of it (a digit, fraction,
rank or percentage, not a count with its measure word such as 一箱), or two of its words with
one uncommon in the language, and every name it types."""

from __future__ import annotations

import dataclasses

import pytest

from matching import LibraryEntry, Matcher, ScoreParams, Thresholds
from matching.claimtext import ClaimText
from matching.navigation import BareRule, Units, claim_number, frequency, units

SEEDS = LibraryEntry("s1", "恰恰瓜子在美国1.99美元买一箱，折合人民币12.4元一箱，一箱有18包", ())
VISA = LibraryEntry("v1", "泰国签证最新动态：明年起泰国严格区分旅游团体签证和个人签证", ())
EXAM = LibraryEntry("e1", "衡阳四中高考成绩被调包，695分变成229分", ())
LUNCH = LibraryEntry("l1", "铁道部官方回应：火车盒饭只要5元，新闻联播记者亲身体验", ())
BOOK = [SEEDS, VISA, EXAM, LUNCH]
OLD = ScoreParams(claim_counts=True, claim_names=False, claim_specific=0)  # decision 0066
OFF = ScoreParams(bare_scale=1.0)
SEARCH = Thresholds().search  # what SearchTop answers at


def _score(params: ScoreParams, text: str) -> float:
    """The best score ``text`` gets over ``BOOK`` (0 when nothing matches)."""
    got = Matcher(params=params).build(BOOK).match(text, k=1)
    return got[0].score if got else 0.0


@pytest.mark.parametrize(
    ("unit", "claims"),
    [
        ("26万", True), ("18包", True), ("1.2%", True), ("十分之一", True), ("第一", True),
        ("百分之八十", True), ("一箱", False), ("一斤", False), ("三天", False), ("两张", False),
    ],
)  # fmt: skip
def test_a_claim_number_is_a_digit_fraction_rank_or_percentage(unit: str, claims: bool) -> None:
    assert claim_number(unit) is claims


def test_the_units_split_counts_and_names_from_claim_numbers_and_words() -> None:
    assert units("恰恰瓜子 价格 一箱", "information") == Units([], ["一箱"], ["恰恰瓜子"], [])
    got = units("联合国 公民素质 排名 第167名", "information")
    assert (got.numbers, got.content, got.names) == (["第167名"], ["公民素质"], ["联合国"])
    assert units("伦敦 旅游 签证 材料", "information").names == ["伦敦"]


def test_common_words_of_the_language_count_high_and_typed_compounds_low() -> None:
    assert frequency("旅游") > frequency("成绩") > 2000 > frequency("签证") > frequency("外星人")
    assert frequency("火车盒饭") < 10  # not a dictionary word: a typed compound is specific


def test_a_count_with_its_measure_word_is_no_claim_number() -> None:
    search = "恰恰瓜子 价格 一箱"  # the rumor holds 一箱: a quantity of the price, not the claim
    assert _score(OFF, search) > SEARCH
    assert _score(OLD, search) == pytest.approx(_score(OFF, search))  # 0066 answered it
    assert _score(ScoreParams(), search) == 0.0
    claim = "恰恰瓜子 一箱 18包 价格"  # 18包, a digit: the claim's figure answers still
    assert _score(OFF, claim) > SEARCH
    assert _score(ScoreParams(), claim) == pytest.approx(_score(OFF, claim))


def test_two_common_words_a_rumor_holds_name_a_topic_not_a_claim() -> None:
    search = "衡阳四中 高考 成绩 排名"  # 高考 and 成绩: common words of the language
    assert _score(OLD, search) > SEARCH
    assert _score(ScoreParams(), search) == 0.0
    claim = "铁道部 火车盒饭 官方 价格"  # 火车盒饭 is uncommon; 官方 common: one is enough
    assert _score(OFF, claim) > SEARCH
    assert _score(ScoreParams(), claim) == pytest.approx(_score(OFF, claim))


def test_a_name_the_rumor_does_not_hold_leaves_the_bare_search_unanswered() -> None:
    other = "伦敦 旅游 签证 材料"  # 旅游 签证: the rumor's words; 伦敦: another country
    own = "泰国 旅游 签证 材料"
    # the names test alone (签证 is uncommon); 0058's unmet-name charge off on both sides
    old = dataclasses.replace(OLD, name_weight=0.0)
    names_only = ScoreParams(claim_specific=0, name_weight=0.0)
    assert _score(old, other) > SEARCH
    assert _score(names_only, other) == 0.0
    assert _score(old, own) > SEARCH
    assert _score(names_only, own) == pytest.approx(_score(old, own))


def test_the_rule_reads_holders_and_frequencies_only_as_configured() -> None:
    claims = ClaimText(["高考成绩", "高考", "成绩单"], [0, 1, 2])
    assert [claims.rumors_holding(w) for w in ("高考", "成绩", "调包", "")] == [2, 2, 0, 0]
    rule = BareRule("information", "untyped", True, 2, claims.holds, counts=False, names=True)
    exam = Units([], ["一箱"], ["高考", "成绩"], ["衡阳"])
    assert not rule.states(exam, 0)  # 衡阳 is no word of rumor 0
    assert rule.states(Units([], [], ["高考", "成绩"], []), 0)
    assert not BareRule(**{**rule.__dict__, "specific": 2000}).states(exam, 0)
    rare = BareRule(
        **{**rule.__dict__, "names": False, "rare": 1, "holding": claims.rumors_holding}
    )
    assert not rare.states(exam, 0)  # each word is held by two rumors: over the cap


def test_the_default_is_the_adopted_rule() -> None:
    p = ScoreParams()
    assert (p.claim_counts, p.claim_names, p.claim_specific, p.claim_rare, p.claim_generic) == (
        False,
        True,
        2000,
        0,
        0,
    )
