"""The fused feed pass (ranking/fused.py: its C pass and its Python pass) against the reference
pipeline (ranking/pipeline.py) on seeded random worlds: the same Candidates, field for field
(scores to the bit, features, the debunk picked, the update mark), under every mix of delivery
state, dismissals, revisions, stored and missing logits, stale logits, claim clusters, arms
(model or rules) and limits."""

from __future__ import annotations

import dataclasses
import math
import random

import numpy as np
import pytest

from domain.delivery import Delivery
from domain.models import FeedModel, UserModel
from domain.records import Catalog, Debunk, ExposureState, Rumor
from feature_store.codecs import TAG_SCORE_STEPS
from ranking import fused
from ranking.fused import rank_feed_fused, rank_feed_python, rank_table
from ranking.pipeline import rank_feed

NOW = 1_760_000_000
CATEGORIES = ("emergency", "epidemic", "policy", "economy", "other", "no-such-category")
AUTHORITIES = ("official", "platform", "fact_checker", "media")


def world(rng: random.Random, n_rumors: int = 40) -> Catalog:
    """Rumors (some withdrawn, some in claim clusters, some revised), their debunks (0-5 each,
    a few shared by two rumors) and a ranker that knows most debunks."""
    rids = [f"r{i:03d}" for i in range(n_rumors)]
    rumors = []
    for rid in rids:
        cluster = rng.choice(["", "", rids[rng.randrange(4)]])
        rumors.append(
            Rumor(
                rid,
                f"claim {rid}",
                rng.choice(CATEGORIES),
                rng.randint(1, 5),
                "false",
                "withdrawn" if rng.random() < 0.1 else "confirmed",
                cluster=cluster,
                revised_at=rng.choice([0, 0, NOW - rng.randrange(1, 400_000)]),
            )  # fmt: skip
        )
    debunks = []
    for rid in rids:
        for j in range(rng.choice([0, 1, 1, 1, 2, 3, 5])):
            also = (rng.choice(rids),) if rng.random() < 0.1 else ()
            debunks.append(
                Debunk(
                    f"d-{rid}-{j}",
                    (rid, *also),
                    "t",
                    "u",
                    "p",
                    rng.choice(AUTHORITIES),
                    published_at=f"2026-10-{rng.randint(1, 28):02d}T00:00:00Z",
                )  # fmt: skip
            )
    known = [d for d in debunks if rng.random() < 0.85]
    dim = 3
    np_rng = np.random.default_rng(rng.randrange(1 << 30))
    model = FeedModel(
        {d.debunk_id: i for i, d in enumerate(known)},
        np_rng.normal(size=(len(known), dim)).astype(np.float32),
        np_rng.normal(size=dim).astype(np.float32),
        weight=rng.choice([0.9, 0.5]),
    )
    cat = Catalog.build(rumors, debunks, model)
    stale = frozenset(r for r in rids if rng.random() < 0.1)
    return dataclasses.replace(cat, stale_logits=stale)


def exposures(rng: random.Random, cat: Catalog) -> list[ExposureState]:
    """A user's states: known rumors and a few unknown ones, logits stored, missing or of the
    wrong length, tag scores on the codec's steps (0 included)."""
    out = []
    rids = [*cat.rumors, "r-unknown-1", "r-unknown-2"]
    for rid in rng.sample(rids, rng.randint(0, min(25, len(rids)))):
        options = cat.debunks_by_rumor.get(rid, [])
        kind = rng.random()
        if kind < 0.6:
            logits = tuple(float(np.float32(rng.gauss(0, 2))) if rng.random() > 0.1 else math.nan
                           for _ in options)  # fmt: skip
        elif kind < 0.8:
            logits = ()
        else:
            logits = tuple(0.5 for _ in range(len(options) + 1))
        last = NOW - rng.randrange(-3_600, 900_000)
        score = rng.choice([TAG_SCORE_STEPS, TAG_SCORE_STEPS, rng.randrange(256), 0])
        out.append(ExposureState(rid, rng.randint(1, 9), last - rng.randrange(90_000), last,
                                 rng.randrange(5), rng.randrange(1, 64), logits,
                                 score / TAG_SCORE_STEPS))  # fmt: skip
    return out


def delivery(rng: random.Random, cat: Catalog) -> Delivery | None:
    """None, or served / seen / clicked debunks and dismissed rumors at random times."""
    if rng.random() < 0.25:
        return None
    debunks, rumors = list(cat.debunks), list(cat.rumors)

    def some(pool: list[str], p: float) -> dict[str, int]:
        return {x: NOW - rng.randrange(1, 600_000) for x in pool if rng.random() < p}

    return Delivery(served=some(debunks, 0.15), impression=some(debunks, 0.1),
                    click=some(debunks, 0.03), dismissed_rumors=some(rumors, 0.03),
                    served_today=rng.randrange(3))  # fmt: skip


def user_model(rng: random.Random, cat: Catalog) -> UserModel | None:
    """None (a rules arm), or factors (or none: the cold user) with prebunks."""
    if rng.random() < 0.3:
        return None
    vector = np.random.default_rng(rng.randrange(1 << 30)).normal(size=3).astype(np.float32)
    factors = None if rng.random() < 0.3 else vector
    pre = tuple((r, rng.random()) for r in rng.sample(list(cat.rumors), rng.randint(0, 3)))
    return UserModel(factors, pre)


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
        alone = rank_feed_python(exps, cat, now=now, limit=limit, delivery=got_delivery,
                                 model=model)  # fmt: skip
        assert alone == want, (seed, user)


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
