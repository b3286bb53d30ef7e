"""Feed cards as wire bytes (service/cards.py: the C encoder and its Python reference) against
``to_card``'s messages: merged into a RankFeedResponse or a batch's UserFeed, the reply
serializes to the very bytes the reference gives, for every card the seeded worlds rank
(exposed, re-pushed updates, prebunks, any surface mask, tag scores and affinities)."""

from __future__ import annotations

import random

import pytest

from debunk.v1 import debunk_pb2 as pb
from ranking.pipeline import rank_feed
from service import cards
from service.cards import (
    USER_FEED_CARDS,
    feed_cards_wire,
    feed_cards_wire_python,
    to_card,
)
from tests.fixtures.feed_worlds import NOW, delivery, exposures, user_model, world


def _ranked(seed: int) -> list[list]:
    rng = random.Random(seed)
    cat = world(rng)
    out = []
    for _ in range(200):
        exps, d, m = exposures(rng, cat), delivery(rng, cat), user_model(rng, cat)
        out.append(rank_feed(exps, cat, now=NOW, limit=rng.randint(1, 7), delivery=d, model=m))
    return out


@pytest.mark.parametrize("seed", range(4))
def test_wire_cards_serialize_as_the_reference(seed: int) -> None:
    assert cards._cardwire is not None, "the install builds the C encoder (setup.py)"
    kinds = set()
    for ranked in _ranked(seed):
        want = pb.RankFeedResponse(snapshot_version="v1", experiment="e", arm="a")
        for c in ranked:
            to_card(c, want.cards.add())
            kinds.add((c.prebunk, c.update))
        for encode in (feed_cards_wire, feed_cards_wire_python):
            got = pb.RankFeedResponse(snapshot_version="v1", experiment="e", arm="a")
            got.MergeFromString(encode(ranked))
            assert got.SerializeToString() == want.SerializeToString()
        feed = pb.UserFeed(user_id="u1")
        feed.MergeFromString(feed_cards_wire(ranked, USER_FEED_CARDS))
        assert list(feed.cards) == list(want.cards)
    assert kinds >= {(False, False), (False, True), (True, False)}


def test_extreme_values_round_trip() -> None:
    """Big counts and timestamps (multi-byte varints), a zero first exposure, no surface."""
    (ranked,) = [r for r in _ranked(9) if r][:1]
    c = ranked[0]
    e = c.exposure._replace(exposures=2**32 - 1, first_ts=0, last_ts=2**33, surface_mask=0)
    c.exposure, c.score = e, 0.0
    want = pb.RankFeedResponse()
    to_card(c, want.cards.add())
    for encode in (feed_cards_wire, feed_cards_wire_python):
        got = pb.RankFeedResponse()
        got.MergeFromString(encode([c]))
        assert got.SerializeToString() == want.SerializeToString()
