"""The offline ranker evaluation ranks as serving does: exposures joined through the nightly's
tag set (hand tags and the matcher's scored auto tags), each carrying its tag score into
``ranking.pipeline.score_feed_candidates``; on the small synthetic world."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from domain.records import Catalog
from offline.io import catalog as inputs
from offline.models.evaluate import _exposures_by_user, evaluate_ranker, night_tags

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _catalog(world: Path) -> Catalog:
    """The world's rumors and debunks as a Catalog."""
    rumors = inputs.load_rumors(inputs.find_input(world, inputs.RUMOR_FILES))
    debunks = inputs.load_debunks(inputs.find_input(world, inputs.DEBUNK_FILES))
    return Catalog.build(rumors, debunks)


def test_night_tags_add_the_matchers_scored_tags(small_world: Path, tmp_path: Path) -> None:
    world = tmp_path / "world"
    shutil.copytree(small_world, world)
    rumor = next(
        json.loads(x) for x in (world / "rumors.jsonl").read_text().splitlines() if x
    )  # fmt: skip
    items = pq.read_table(world / "items.parquet")
    planted = {c: [None] for c in items.column_names} | {
        "item_id": ["planted1"], "text": [rumor["claim"]], "created_at": [T0],
    }  # fmt: skip
    pq.write_table(
        pa.concat_tables([items, pa.table(planted, schema=items.schema)]), world / "items.parquet"
    )
    tags = night_tags(world, _catalog(world)).to_pylist()
    hand = pq.read_table(world / "tagged_items.parquet")
    assert sum(t["source"] == "manual" for t in tags) <= hand.num_rows
    matched = [t for t in tags if t["source"] == "matched"]
    assert matched and all(0.9 <= t["score"] <= 1.0 for t in matched)
    assert {"item_id": "planted1", "rumor_id": rumor["rumor_id"]}.items() <= next(
        t for t in matched if t["item_id"] == "planted1"
    ).items()


def test_exposures_read_their_tag_score() -> None:
    row = {"user_id": ["u1"], "rumor_id": ["r1"], "exposures": [1],
           "first_ts": [T0], "last_ts": [T0], "strongest_action": ["share"],
           "surface_mask": [1]}  # fmt: skip
    with_score = pa.table({**row, "tag_score": pa.array([0.5], pa.float32())})
    assert _exposures_by_user(with_score, {"u1"})["u1"][0].tag_score == 0.5
    assert _exposures_by_user(pa.table(row), {"u1"})["u1"][0].tag_score == 1.0


def test_the_evaluation_reports_the_tags_it_ranked_with(tmp_path: Path) -> None:
    from offline.synth.world import synthesize

    synthesize(tmp_path / "w", users=800, days=10, seed=5, rumors=40, mean_daily=1.0,
               reach=20, cards=3)  # fmt: skip
    out = evaluate_ranker(tmp_path / "w", k=5)
    tags = out["tags"]
    assert tags["manual"] > 0 and tags["matched"] > 0
    assert 0 <= tags["feed_candidates_tag_score_below_1"] <= tags["feed_candidates"]
    assert out["metrics"]["feed"]["rule_only"]["ndcg@5"] > 0
