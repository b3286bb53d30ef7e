"""The fused feed pass (ranking/fused.py: its C pass and its Python pass) against the reference
pipeline (ranking/pipeline.py) on seeded random worlds: the same Candidates, field for field
(scores to the bit, features, the debunk picked, the update mark), under every mix of delivery
state, dismissals, revisions, stored and missing logits, stale logits, claim clusters, arms
(model or rules) and limits; exposures as ExposureStates or as the plain tuples kept rows
are read as."""

from __future__ import annotations

import dataclasses
import random

import pytest

from domain.records import ExposureState
from ranking import fused
from ranking.fused import rank_feed_fused, rank_table
from ranking.pipeline import rank_feed
from tests.fixtures.feed_worlds import NOW, delivery, exposures, user_model, world


@pytest.mark.parametrize("seed", range(12))
def test_fused_pass_gives_the_reference_candidates(seed: int) -> None:
    rng = random.Random(seed)
    cat = world(rng)
    for user in range(300):
        exps = exposures(rng, cat)
        got_delivery, model = delivery(rng, cat), user_model(rng, cat)
        limit = rng.randint(1, 7)
        now = NOW + rng.randrange(0, 200_000)
        want = rank_feed(exps, cat, now=now, limit=limit, delivery=got_delivery, model=model)
        got = rank_feed_fused(exps, cat, now=now, limit=limit, delivery=got_delivery, model=model)
        assert got == want, (seed, user)
        alone = rank_feed_fused(exps, cat, now=now, limit=limit, delivery=got_delivery,
                                model=model, c_pass=False)  # fmt: skip
        assert alone == want, (seed, user)
        plain = [tuple(e) for e in exps]  # kept rows read as plain tuples (SnapshotRows)
        for c_pass in (True, False):
            got = rank_feed_fused(plain, cat, now=now, limit=limit, delivery=got_delivery,
                                  model=model, c_pass=c_pass)  # fmt: skip
            assert got == want, (seed, user, c_pass)
            assert all(type(c.exposure) is ExposureState for c in got)  # cards read by name


def test_the_c_pass_is_built_and_answers_most_users() -> None:
    """The install builds the C pass (setup.py), and it answers every user whose logits are
    all stored (the Python pass takes the rest)."""
    assert fused._fastrank is not None
    rng = random.Random(7)
    cat = dataclasses.replace(world(rng), stale_logits=frozenset())
    answered = 0
    for _ in range(200):
        exps = [e for e in exposures(rng, cat) if len(e.logits) == len(cat.debunks_by_rumor.get(
            e.rumor_id, ())) > 0]  # fmt: skip
        got = fused._c_pass(exps, cat, NOW, 5, delivery(rng, cat), cat.model)
        answered += got is not None
    assert answered == 200


def test_catalog_without_a_ranker_ranks_by_the_rules() -> None:
    rng = random.Random(99)
    cat = dataclasses.replace(world(rng), model=None)
    for _ in range(200):
        exps, model = exposures(rng, cat), user_model(rng, cat)
        d = delivery(rng, cat)
        want = rank_feed(exps, cat, now=NOW, limit=5, delivery=d, model=model)
        assert rank_feed_fused(exps, cat, now=NOW, limit=5, delivery=d, model=model) == want


def test_a_new_catalog_object_gets_a_new_table() -> None:
    rng = random.Random(5)
    cat = world(rng)
    withdrawn = dataclasses.replace(
        cat, rumors={r: dataclasses.replace(x, status="withdrawn") for r, x in cat.rumors.items()}
    )
    exps = exposures(rng, cat)
    assert rank_table(cat) is rank_table(cat)
    assert rank_table(withdrawn) is not rank_table(cat)
    assert rank_feed_fused(exps, withdrawn, now=NOW, limit=5) == []


def test_a_limit_below_one_gives_no_cards_on_every_path() -> None:
    """``limit`` 0 (or less) asks for nothing: the reference, the fused Python and C passes and
    the selector all answer [], not every card (the RPCs refuse such a limit before ranking)."""
    rng = random.Random(5)
    cat = world(rng)
    tried = 0
    for _ in range(100):
        exps, model, d = exposures(rng, cat), user_model(rng, cat), delivery(rng, cat)
        if not rank_feed(exps, cat, now=NOW, limit=5, delivery=d, model=model):
            continue
        tried += 1
        for limit in (0, -1):
            assert rank_feed(exps, cat, now=NOW, limit=limit, delivery=d, model=model) == []
            for c_pass in (True, False):
                got = rank_feed_fused(exps, cat, now=NOW, limit=limit, delivery=d, model=model,
                                      c_pass=c_pass)  # fmt: skip
                assert got == []
    assert tried > 20
