"""The feed ranking rules, on plain data (no servers)."""

import pytest

from domain.delivery import Delivery
from domain.experiments import Arm
from domain.records import Catalog, Debunk, ExposureState, Rumor
from domain.vocab import ACTION_STRENGTH, SURFACE_BIT
from ranking.pipeline import explain, rank_feed
from ranking.policy import ServingPolicy, feed_rules

NOW = 1_760_000_000
HOUR = 3600


def rumor(rid: str, status: str = "confirmed") -> Rumor:
    return Rumor(rid, f"claim {rid}", "epidemic", 3, "false", status)


def debunk(did: str, rid: str, authority: str, published: str = "2026-10-01T00:00:00Z") -> Debunk:
    return Debunk(
        did,
        (rid,),
        f"title {did}",
        f"https://x/{did}",
        f"pub {did}",
        authority,
        published_at=published,
    )


def exposure(
    rid: str, action: str = "impression", hours_ago: float = 1, n: int = 1
) -> ExposureState:
    ts = int(NOW - hours_ago * HOUR)
    return ExposureState(rid, n, ts - HOUR, ts, ACTION_STRENGTH[action], SURFACE_BIT["feed"])


def catalog(*rids: str, withdrawn: tuple[str, ...] = ()) -> Catalog:
    rumors = [rumor(r) for r in rids] + [rumor(r, "withdrawn") for r in withdrawn]
    debunks = [debunk(f"d-{r}", r, "media") for r in (*rids, *withdrawn)]
    return Catalog.build(rumors, debunks)


def ranked_rumors(exposures: list[ExposureState], cat: Catalog, limit: int = 10) -> list[str]:
    return [c.rumor.rumor_id for c in rank_feed(exposures, cat, now=NOW, limit=limit)]


def test_only_confirmed_rumors_get_cards() -> None:
    cat = catalog("r1", withdrawn=("r2",))
    assert ranked_rumors([exposure("r1"), exposure("r2", "share")], cat) == ["r1"]


def test_rumors_unknown_to_the_catalog_are_ignored() -> None:
    assert ranked_rumors([exposure("r9")], catalog("r1")) == []


def test_no_exposure_means_no_cards() -> None:
    assert ranked_rumors([], catalog("r1", "r2")) == []


def test_stronger_exposure_ranks_first_even_if_older() -> None:
    cat = catalog("r1", "r2", "r3")
    exps = [exposure("r1", "click", 1), exposure("r2", "share", 200), exposure("r3", "like", 5)]
    assert ranked_rumors(exps, cat) == ["r2", "r3", "r1"]


def test_same_strength_most_recent_first() -> None:
    cat = catalog("r1", "r2", "r3")
    exps = [exposure("r1", "click", 30), exposure("r2", "click", 2), exposure("r3", "click", 10)]
    assert ranked_rumors(exps, cat) == ["r2", "r3", "r1"]


def test_exposures_in_the_future_do_not_break_the_order() -> None:
    cat = catalog("r1", "r2")
    exps = [exposure("r1", "click", -5), exposure("r2", "click", -50)]
    assert ranked_rumors(exps, cat) == ["r2", "r1"]


def test_limit_is_respected() -> None:
    cat = catalog(*[f"r{i}" for i in range(10)])
    assert len(ranked_rumors([exposure(f"r{i}") for i in range(10)], cat, limit=3)) == 3


def test_one_card_per_rumor() -> None:
    cat = catalog("r1")
    got = ranked_rumors([exposure("r1", "click"), exposure("r1", "share")], cat)
    assert got == ["r1"]


def test_most_authoritative_debunk_wins_then_newest() -> None:
    rumors = [rumor("r1")]
    debunks = [
        debunk("d-media", "r1", "media", "2026-10-05T00:00:00Z"),
        debunk("d-official-old", "r1", "official", "2026-10-01T00:00:00Z"),
        debunk("d-official-new", "r1", "official", "2026-10-02T00:00:00Z"),
        debunk("d-platform", "r1", "platform", "2026-10-06T00:00:00Z"),
    ]
    [card] = rank_feed([exposure("r1")], Catalog.build(rumors, debunks), now=NOW, limit=5)
    assert card.debunk is not None and card.debunk.debunk_id == "d-official-new"


def test_a_rumor_without_any_debunk_gets_no_card() -> None:
    cat = Catalog.build([rumor("r1"), rumor("r2")], [debunk("d2", "r2", "media")])
    assert ranked_rumors([exposure("r1", "share"), exposure("r2")], cat) == ["r2"]


def test_scores_are_descending_and_explained() -> None:
    cat = catalog("r1", "r2")
    ranked = rank_feed([exposure("r1", "share", 3, n=4), exposure("r2")], cat, now=NOW, limit=5)
    assert ranked[0].score > ranked[1].score
    assert explain(ranked[0]).startswith("share on feed, 4 times, last ")


def two_debunks() -> Catalog:
    return Catalog.build(
        [rumor("r1"), rumor("r2")],
        [
            debunk("d-off", "r1", "official"),
            debunk("d-med", "r1", "media"),
            debunk("d2", "r2", "media"),
        ],
    )


def test_a_debunk_already_seen_or_clicked_is_skipped_for_the_next_best() -> None:
    for seen in (Delivery(impression={"d-off": NOW}), Delivery(click={"d-off": NOW})):
        ranked = rank_feed([exposure("r1")], two_debunks(), now=NOW, limit=5, delivery=seen)
        assert [c.debunk.debunk_id for c in ranked if c.debunk] == ["d-med"]


def test_a_rumor_whose_debunks_were_all_seen_gets_no_card() -> None:
    seen = Delivery(impression={"d-off": NOW, "d-med": NOW})
    ranked = rank_feed(
        [exposure("r1"), exposure("r2")], two_debunks(), now=NOW, limit=5, delivery=seen
    )
    assert [c.rumor.rumor_id for c in ranked] == ["r2"]


def test_served_but_unseen_debunks_may_be_served_again() -> None:
    served = Delivery(served={"d-off": NOW})
    ranked = rank_feed([exposure("r1")], two_debunks(), now=NOW, limit=5, delivery=served)
    assert ranked[0].debunk is not None and ranked[0].debunk.debunk_id == "d-off"


def test_a_dismissed_rumor_is_not_pushed_again() -> None:
    dismissed = Delivery(dismissed_rumors={"r1": NOW})
    ranked = rank_feed(
        [exposure("r1", "share"), exposure("r2")],
        two_debunks(),
        now=NOW,
        limit=5,
        delivery=dismissed,
    )
    assert [c.rumor.rumor_id for c in ranked] == ["r2"]


def test_the_daily_cap_leaves_what_is_left_of_the_day() -> None:
    rules = feed_rules(ServingPolicy(feed_daily_cap=5), None)
    assert (rules.targeted, rules.learned_ranker, rules.daily_cap) == (True, True, 5)
    assert rules.budget(limit=3, served_today=0) == 3  # the request's limit first
    assert rules.budget(limit=10, served_today=3) == 2  # then what the cap leaves
    assert rules.budget(limit=10, served_today=5) == 0
    assert rules.budget(limit=10, served_today=9) == 0  # never negative


def test_each_arm_policy_decides_targeting_and_the_ranker() -> None:
    policy = ServingPolicy(feed_daily_cap=4)
    holdout = feed_rules(policy, Arm("h", 0.1, "holdout"))
    assert not holdout.targeted and holdout.budget(limit=10, served_today=0) == 0
    rules_only = feed_rules(policy, Arm("c", 0.5, "rules"))
    assert rules_only.targeted and not rules_only.learned_ranker
    model = feed_rules(policy, Arm("t", 0.4, "model"))
    assert model.targeted and model.learned_ranker


def test_an_arms_own_cap_replaces_the_operators_cap() -> None:
    policy = ServingPolicy(feed_daily_cap=5)
    assert feed_rules(policy, Arm("t", 1.0, "rules", feed_daily_cap=1)).daily_cap == 1
    assert feed_rules(policy, Arm("z", 1.0, "rules", feed_daily_cap=0)).budget(10, 0) == 0
    assert feed_rules(policy, Arm("c", 1.0, "rules")).daily_cap == 5
    assert ServingPolicy().feed_daily_cap == 5  # the one default the CLI also reads


def test_a_matched_only_exposure_ranks_below_an_equally_strong_hand_tagged_one() -> None:
    """The feed score is multiplied by the exposure's tag score: the same exposure through an
    item the matcher tagged at 0.87 ranks below one through a hand-tagged item, whichever is
    first in the input; at equal tag scores the order is the rules' as before."""
    cat = catalog("r1", "r2")
    manual = exposure("r1", "click", hours_ago=5)
    matched = exposure("r2", "click", hours_ago=5)._replace(tag_score=0.87)
    assert ranked_rumors([matched, manual], cat) == ["r1", "r2"]
    assert ranked_rumors([manual, matched], cat) == ["r1", "r2"]
    fresher = exposure("r2", "click", hours_ago=1)
    assert ranked_rumors([manual, fresher], cat) == ["r2", "r1"]  # unweighted: fresher first
    assert ranked_rumors([manual, fresher._replace(tag_score=0.87)], cat) == ["r1", "r2"]
    cards = {c.rumor.rumor_id: c for c in rank_feed([manual, matched], cat, now=NOW, limit=5)}
    assert cards["r2"].features["tag_score"] == 0.87
    assert cards["r2"].score == pytest.approx(0.87 * cards["r1"].score)
