"""The unmet-name charge (docs/decisions/0058): in a navigational text (one holding an intent
word), each rare word (no rumor holds it, or few do) that the document does not hold counts as
``name_weight`` unmet intent words inside the one score: 「<host> 主持 节目 视频」 asks for that
host's show, not for a rumor about another host's. A name the rumor holds costs nothing, and a
text with no intent word pays nothing for its names."""

from __future__ import annotations

import numpy as np
import pytest

from matching import LibraryEntry, Matcher, ScoreParams
from matching.grams import PAIR_BIT, WORD_BASE, batch_grams
from matching.scoring import _rare_words
from tests.fixtures.matching import LIBRARY

# the charge alone: 0066's bare rule leaves 「康辉 主持 节目 视频」 unanswered, which
# tests/test_matching_claim_predicates.py pins
OFF = ScoreParams(name_weight=0.0, bare_scale=1.0)
ON = ScoreParams(name_weight=1.5, name_floor=0.9, bare_scale=1.0)
HOST = LibraryEntry("h1", "视频：陈佩斯主持《焦点访谈》，早期的焦点访谈曾经是由陈佩斯主持的", ())
BOOK = [*LIBRARY, HOST]


def _top(params: ScoreParams, text: str) -> tuple[str, float]:
    """The best rumor and its score for ``text`` under ``params``."""
    got = Matcher(params=params).build(BOOK).match(text, k=1)
    assert got, text
    return got[0].rumor_id, got[0].score


def test_rare_words_are_the_unknown_and_rare_word_grams_only() -> None:
    _, grams, _ = batch_grams(["康辉 主持"])
    known = np.array([g != grams[-1] for g in grams])  # pretend the last gram is unknown
    weight = np.where(known, 0.5, 0.0)
    rare = _rare_words(grams, known, weight, floor=0.9)
    word = (grams >= WORD_BASE) & (grams < PAIR_BIT)
    assert rare.tolist() == (word & ~known).astype(float).tolist()
    assert _rare_words(grams, np.ones(len(grams), bool), np.ones(len(grams)), 0.9).tolist() == (
        word.astype(float).tolist()
    )


def test_a_host_the_rumor_lacks_costs_evidence_in_a_navigational_query() -> None:
    other = "康辉 主持 节目 视频"  # another host's show: 视频 is an intent word
    (r_off, s_off), (r_on, s_on) = _top(OFF, other), _top(ON, other)
    assert r_off == r_on == "h1"
    assert s_on < s_off - 0.05


def test_the_rumors_own_names_and_texts_without_intent_words_pay_nothing() -> None:
    own = "陈佩斯 主持 焦点访谈 视频"  # every name is the rumor's
    assert _top(ON, own) == pytest.approx(_top(OFF, own))
    plain = "康辉 主持 焦点访谈"  # no intent word: not a navigational search
    assert _top(ON, plain) == pytest.approx(_top(OFF, plain))


def test_the_bare_rule_leaves_another_hosts_show_unanswered() -> None:
    assert not Matcher().build(BOOK).match("康辉 主持 节目 视频", k=1)
    assert Matcher().build(BOOK).match("陈佩斯 主持 焦点访谈 视频", k=1)  # the rumor's claim


def test_every_caller_scores_with_the_charge() -> None:
    m = Matcher(params=ON).build(BOOK)
    texts = ["康辉 主持 节目 视频", "陈佩斯 主持 焦点访谈 视频"]
    top = m.top(texts, k=1)
    batch = m.match_batch(texts, k=1)
    assert [round(float(s), 6) for s in top.score] == [b[0].score for b in batch]
