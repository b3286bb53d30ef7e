"""Claim clusters and tag precedence, on plain data (no servers)."""

from __future__ import annotations

import random

from domain.records import Rumor
from ranking.clusters import (
    CLUSTER_JACCARD,
    assign_clusters,
    claim_grams,
    cluster_claims,
    jaccard,
    members,
    summarize,
)
from ranking.tag_precedence import Tag, resolve_item_tags

CLAIMS = {
    "r3": "武汉地铁3号线发生踩踏事故，现场一片混乱，已经有人员伤亡",
    "r1": "【紧急扩散】武汉地铁3号线发生踩踏事故，现场一片混乱，已经有人员伤亡[泪]",
    "r7": "武汉地铁3号线发生踩踏事故!!现场一片混乱 已经有人员伤亡 http://t.cn/A6x8Yz",
    "r2": "合肥后天起全市停电检修，冰箱里的东西赶紧处理掉",
    "r5": "香蕉和啤酒一起吃会中毒，已经有人进医院了",
    "r4": "合肥后天起全市停电检修！！冰箱里的东西赶紧处理掉@合肥发布",
}


def test_near_identical_claims_form_one_cluster_named_by_its_smallest_id() -> None:
    clusters = cluster_claims(CLAIMS)
    assert clusters == {"r1": "r1", "r2": "r2", "r3": "r1", "r4": "r2", "r5": "r5", "r7": "r1"}
    assert members(clusters) == {"r1": ("r1", "r3", "r7"), "r2": ("r2", "r4"), "r5": ("r5",)}
    s = summarize(clusters)
    assert (s.rumors, s.clusters, s.largest, s.singletons) == (6, 3, 3, 1)
    assert s.as_dict()["threshold"] == CLUSTER_JACCARD


def test_cluster_ids_do_not_depend_on_input_order() -> None:
    items = list(CLAIMS.items())
    for seed in range(5):
        random.Random(seed).shuffle(items)
        assert cluster_claims(dict(items)) == cluster_claims(CLAIMS)


def test_normalisation_ignores_platform_noise_and_case() -> None:
    assert claim_grams("Bleach CURES covid [泪] http://t.cn/x @who") == claim_grams(
        "bleach cures COVID"
    )
    assert jaccard(claim_grams("abc"), claim_grams("abc")) == 1.0
    assert jaccard(frozenset(), claim_grams("abc")) == 0.0


def test_the_threshold_decides_what_links() -> None:
    a, b = "一二三四五六七八九十", "一二三四五六七八甲乙"
    sim = jaccard(claim_grams(a), claim_grams(b))
    assert cluster_claims({"a": a, "b": b}, threshold=sim)["b"] == "a"
    assert cluster_claims({"a": a, "b": b}, threshold=sim + 0.01)["b"] == "b"


def test_only_the_matcher_library_is_clustered() -> None:
    rumors = [
        Rumor("r1", CLAIMS["r1"], "emergency", 5, "false", "confirmed"),
        Rumor("r3", CLAIMS["r3"], "emergency", 5, "false", "confirmed"),
        Rumor("r0", CLAIMS["r3"], "emergency", 5, "false", "withdrawn"),
        Rumor("r9", "", "other", 1, "false", "confirmed"),
    ]
    out, clusters = assign_clusters(rumors)
    assert clusters == {"r1": "r1", "r3": "r1"}
    assert [(r.rumor_id, r.cluster, r.claim_cluster) for r in out] == [
        ("r1", "r1", "r1"),
        ("r3", "r1", "r1"),
        ("r0", "", "r0"),
        ("r9", "", "r9"),
    ]
    assert Rumor.from_dict(out[1].to_dict()) == out[1]  # kept in the snapshot's rumor JSON


CLUSTER_OF = {"r1": "r1", "r3": "r1", "r2": "r2", "r5": "r5"}


def test_a_manual_tag_overrides_the_items_matcher_tags() -> None:
    tags = [
        Tag("i1", "r5", "matched", 0.9),
        Tag("i1", "r2", "manual", 1.0),
        Tag("i1", "r3", "matched", 0.99),
        Tag("i2", "r5", "matched", 0.5),
    ]
    kept, summary = resolve_item_tags(tags, CLUSTER_OF)
    assert kept == [Tag("i1", "r2", "manual", 1.0), Tag("i2", "r5", "matched", 0.5)]
    assert summary.as_dict() == {
        "tags_in": 4,
        "tags_out": 2,
        "matched_overridden": 2,
        "siblings_collapsed": 0,
    }


def test_sibling_tags_count_once_the_best_one() -> None:
    tags = [
        Tag("i1", "r3", "matched", 0.8),
        Tag("i1", "r1", "matched", 0.6),
        Tag("i1", "r2", "matched", 0.4),
        Tag("i2", "r3", "manual", 1.0),
        Tag("i2", "r1", "manual", 1.0),
    ]
    kept, summary = resolve_item_tags(tags, CLUSTER_OF)
    assert kept == [
        Tag("i1", "r3", "matched", 0.8),  # the higher score stands for the claim
        Tag("i1", "r2", "matched", 0.4),
        Tag("i2", "r1", "manual", 1.0),  # equal hand tags: the smaller rumor id
    ]
    assert summary.siblings_collapsed == 2
    shuffled = tags[::-1]
    assert resolve_item_tags(shuffled, CLUSTER_OF)[0] == kept
