"""The feed and the pinned cards under claim clusters, severity and category, and total orders:
on plain data (no servers)."""

from __future__ import annotations

import random

from domain.delivery import Delivery
from domain.models import UserModel
from domain.records import Catalog, Debunk, ExposureState, Rumor
from domain.vocab import ACTION_STRENGTH, SURFACE_BIT
from matching import Match
from ranking.candidates import Candidate
from ranking.pinned import (
    claim_rumor_count,
    claim_rumor_ids,
    exposed_to_claim,
    first_seen_first,
    pin_item_rumors,
    pin_matches,
)
from ranking.pipeline import rank_feed
from ranking.scorers import CATEGORY_WEIGHT, rumor_priority, score_rumor_priority
from ranking.selectors import combine_strength_then_within

NOW = 1_760_000_000
HOUR = 3600


def rumor(rid: str, severity: int = 3, category: str = "epidemic", cluster: str = "") -> Rumor:
    return Rumor(rid, f"claim {rid}", category, severity, "false", "confirmed", cluster=cluster)


def exposure(rid: str, action: str = "impression", hours_ago: float = 1) -> ExposureState:
    ts = int(NOW - hours_ago * HOUR)
    return ExposureState(rid, 1, ts - HOUR, ts, ACTION_STRENGTH[action], SURFACE_BIT["feed"])


def catalog(*rumors: Rumor) -> Catalog:
    debunks = [
        Debunk(f"d-{r.rumor_id}", (r.rumor_id,), "t", "https://x", "p", "media") for r in rumors
    ]
    return Catalog.build(list(rumors), debunks)


def feed(exposures: list[ExposureState], cat: Catalog, **kw) -> list[str]:
    return [c.rumor.rumor_id for c in rank_feed(exposures, cat, now=NOW, limit=10, **kw)]


# --- severity and category -------------------------------------------------------------------


def test_priority_is_severity_times_the_category_weight() -> None:
    assert rumor_priority(5, "emergency") == 1.0
    assert rumor_priority(5, "public_safety") == 1.0
    assert rumor_priority(1, "other") == 0.1
    assert rumor_priority(3, "unknown category") == rumor_priority(3, "other")
    assert rumor_priority(9, "emergency") == 1.0  # out of range: clamped to 1..5
    first = sorted(CATEGORY_WEIGHT, key=lambda c: -CATEGORY_WEIGHT[c])[:2]
    assert set(first) == {"emergency", "public_safety"}


def test_within_a_strength_a_severe_emergency_outranks_a_fresher_trivial_rumor() -> None:
    cat = catalog(rumor("r1", 5, "emergency"), rumor("r2", 1, "other"))
    exposures = [exposure("r1", "like", hours_ago=72), exposure("r2", "like", hours_ago=0)]
    assert feed(exposures, cat) == ["r1", "r2"]


def test_exposure_strength_still_decides_first() -> None:
    cat = catalog(rumor("r1", 5, "emergency"), rumor("r2", 1, "other"))
    exposures = [exposure("r1", "impression", hours_ago=0), exposure("r2", "click", hours_ago=500)]
    assert feed(exposures, cat) == ["r2", "r1"]


def test_equal_priority_is_ordered_by_recency() -> None:
    cat = catalog(rumor("r1"), rumor("r2"))
    assert feed([exposure("r1", hours_ago=5), exposure("r2", hours_ago=1)], cat) == ["r2", "r1"]


def test_the_score_stays_within_its_strength() -> None:
    for severity in (1, 5):
        for hours in (0, 10_000):
            c = Candidate(rumor("r1", severity, "emergency"), exposure("r1", "comment", hours))
            c.features["strength"] = 3.0
            c.features["recency"] = 0.5 ** (hours / 48)
            score_rumor_priority([c])
            combine_strength_then_within([c])
            assert 3.0 <= c.score <= 4.0


# --- claim clusters in the feed --------------------------------------------------------------


def siblings() -> Catalog:
    return catalog(rumor("r1", cluster="r1"), rumor("r2", cluster="r1"), rumor("r3", cluster="r3"))


def test_a_feed_shows_one_card_per_claim_the_strongest_exposures_rumor() -> None:
    exposures = [exposure("r1", "click"), exposure("r2", "share"), exposure("r3", "like")]
    assert feed(exposures, siblings()) == ["r2", "r3"]


def test_the_users_own_rumor_is_not_pushed_out_by_siblings() -> None:
    exposures = [exposure("r1", "share"), exposure("r2", "share", 2), exposure("r3")]
    got = [c.rumor.rumor_id for c in rank_feed(exposures, siblings(), now=NOW, limit=2)]
    assert got == ["r1", "r3"]


def test_dismissing_a_rumor_dismisses_its_claim() -> None:
    dismissed = Delivery(dismissed_rumors={"r1": NOW})
    exposures = [exposure("r2", "share"), exposure("r3")]
    assert feed(exposures, siblings(), delivery=dismissed) == ["r3"]


def test_no_prebunk_for_a_claim_the_user_already_met() -> None:
    model = UserModel(factors=(), prebunks=(("r2", 0.9), ("r3", 0.5)))
    assert feed([exposure("r1")], siblings(), model=model) == ["r1", "r3"]


def test_the_feed_order_is_total_whatever_the_input_order() -> None:
    rumors = [rumor(f"r{i}", 3, cluster=f"r{i}") for i in range(8)]
    exposures = [exposure(f"r{i}", "like", hours_ago=3) for i in range(8)]
    want = feed(exposures, catalog(*rumors))
    for seed in range(5):
        rng = random.Random(seed)
        rng.shuffle(rumors)
        rng.shuffle(exposures)
        assert feed(exposures, catalog(*rumors)) == want == [f"r{i}" for i in range(8)]


# --- pinned cards ---------------------------------------------------------------------------


def test_tied_matches_are_decided_by_severity_then_id_not_by_arrival_order() -> None:
    cat = catalog(rumor("r5", 2), rumor("r2", 4), rumor("r9", 4), rumor("r1", 1))
    matches = [Match(r, 0.9, "t") for r in ("r5", "r2", "r9", "r1")]
    for seed in range(6):
        random.Random(seed).shuffle(matches)
        assert [p.rumor.rumor_id for p in pin_matches(matches, cat, 0.35)] == [
            "r2",
            "r9",
            "r5",
            "r1",
        ]


def test_equal_scores_pin_the_stronger_evidence_before_the_more_severe_rumor() -> None:
    """Decision 0056: the matcher's order of equal scores (its unsaturated evidence) holds on
    the pinned surfaces; severity decides only between equal evidence."""
    cat = catalog(rumor("r1", 5), rumor("r2", 1), rumor("r3", 4))
    matches = [Match("r1", 1.0, "t", 3.0), Match("r2", 1.0, "t", 7.5), Match("r3", 1.0, "t", 3.0)]
    for seed in range(6):
        random.Random(seed).shuffle(matches)
        pinned = pin_matches(matches, cat, 0.35)
        assert [p.rumor.rumor_id for p in pinned] == ["r2", "r1", "r3"]


def test_pinned_matches_show_one_card_per_claim() -> None:
    matches = [Match("r2", 0.9, "t"), Match("r1", 0.9, "t"), Match("r3", 0.8, "t")]
    pinned = pin_matches(matches, siblings(), 0.35)
    assert [p.rumor.rumor_id for p in pinned] == ["r1", "r3"]


def test_a_searcher_who_saw_a_sibling_sees_that_claim_first() -> None:
    cat = siblings()
    pinned = pin_matches([Match("r1", 0.5, "t"), Match("r3", 0.9, "t")], cat, 0.35)
    assert [p.rumor.rumor_id for p in pinned] == ["r3", "r1"]
    reordered = first_seen_first(pinned, [exposure("r2")], cat)
    assert [p.rumor.rumor_id for p in reordered] == ["r1", "r3"]


def test_an_items_rumors_are_pinned_in_a_total_order() -> None:
    cat = catalog(rumor("r4", 5), rumor("r2", 5), rumor("r1", 3))
    for ids in (["r1", "r2", "r4"], ["r4", "r1", "r2"], ["r2", "r4", "r1"]):
        best = pin_item_rumors(ids, cat)
        assert best is not None and best.rumor.rumor_id == "r2"


def test_group_members_exposed_to_a_sibling_count_for_the_claim() -> None:
    cat = siblings()
    assert cat.siblings == {"r1": ("r1", "r2")}
    assert cat.claim_rumors("r2") == ("r1", "r2") and cat.claim_rumors("r3") == ("r3",)
    (pinned,) = pin_matches([Match("r1", 0.9, "t")], cat, 0.35)
    assert claim_rumor_ids([pinned], cat) == ["r1", "r2"]
    assert claim_rumor_count([pinned, pinned], cat) == 4  # an upper bound, without listing
    exposed = [{"r2"}, {"r3", "r9"}, {"r1", "r2"}]  # u1 saw the sibling, u2 another claim
    assert exposed_to_claim(pinned, exposed, ["u1", "u2", "u3"], cat) == ["u1", "u3"]
    (single,) = pin_matches([Match("r3", 0.9, "t")], cat, 0.35)
    assert exposed_to_claim(single, exposed, ["u1", "u2", "u3"], cat) == ["u2"]
