"""A media author's match goes to the review queue, never into the tags: outlets repeat rumors
and report true news under a rumor's own headline alike, so a moderator decides; on the
synthetic library, with planted items whose only difference is their author."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from offline.nightly.match import load_library, make_matcher, match_items, run_match
from offline.nightly.provenance import reviewed_authors

T0 = datetime(2026, 10, 1, tzinfo=UTC)


def _claims(world: Path) -> list[dict]:
    """The synthetic library's confirmed rumor records."""
    rows = [json.loads(x) for x in (world / "rumors.jsonl").read_text().splitlines() if x]
    return [r for r in rows if r["status"] == "confirmed"]


def _items(texts: list[str], authors: list[str | None]) -> pa.Table:
    """Items i0, i1, ... with ``texts`` by ``authors``."""
    return pa.table(
        {
            "item_id": [f"i{n}" for n in range(len(texts))],
            "text": texts,
            "created_at": pa.array([T0] * len(texts), pa.timestamp("us", tz="UTC")),
            "author_type": pa.array(authors, pa.string()),
        }
    )


def test_reviewed_authors() -> None:
    assert reviewed_authors(["media", "user", None, "official"], 4) == [True, False, False, False]
    assert reviewed_authors(None, 2) == [False, False]


def test_a_media_match_is_queued_and_the_same_text_by_a_user_is_tagged(small_world: Path) -> None:
    claim = _claims(small_world)[0]
    matcher = make_matcher(load_library(small_world))
    items = _items([claim["claim"]] * 3, ["user", "media", None])
    routed: dict[str, int] = {}
    tags, review = match_items(items, matcher, routed=routed)
    tagged = set(zip(tags["item_id"].to_pylist(), tags["rumor_id"].to_pylist(), strict=True))
    assert ("i0", claim["rumor_id"]) in tagged and ("i2", claim["rumor_id"]) in tagged
    assert "i1" not in set(tags["item_id"].to_pylist())
    queued = review.filter(pc.equal(review["item_id"], "i1")).to_pylist()
    assert claim["rumor_id"] in {q["rumor_id"] for q in queued}
    # it scored as an auto tag would have: the moderator sees how sure the matcher was
    assert max(q["score"] for q in queued) >= matcher.thresholds.high
    assert routed == {
        "media_author": sum(1 for q in queued if q["score"] >= matcher.thresholds.high)
    }
    # the user's copy is not queued: routing moves the media item's matches only
    assert "i0" not in set(review["item_id"].to_pylist())


def test_run_match_counts_the_routed_matches(small_world: Path, tmp_path: Path) -> None:
    claims = _claims(small_world)[:2]
    items = _items([c["claim"] for c in claims] * 2, ["media", "media", "user", "user"])
    pq.write_table(items, tmp_path / "items.parquet")
    summary = run_match(tmp_path / "items.parquet", small_world, tmp_path / "match")
    assert summary["routed_to_review"].get("media_author", 0) >= 2
    tags = pq.read_table(tmp_path / "match" / "matched_tags.parquet")
    review = pq.read_table(tmp_path / "match" / "review_queue.parquet")
    assert set(tags["item_id"].to_pylist()) == {"i2", "i3"}
    assert {"i0", "i1"} <= set(review["item_id"].to_pylist())
    # without the author column nothing is routed: the same texts are all tagged
    pq.write_table(items.drop(["author_type"]), tmp_path / "plain.parquet")
    plain = run_match(tmp_path / "plain.parquet", small_world, tmp_path / "plain")
    assert plain["routed_to_review"] == {}
    assert set(
        pq.read_table(tmp_path / "plain" / "matched_tags.parquet")["item_id"].to_pylist()
    ) == {
        "i0",
        "i1",
        "i2",
        "i3",
    }
