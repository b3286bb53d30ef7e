"""Offline matching on a small synthetic world: untagged rumor items are found, background
items are left alone, and outputs are written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline.nightly.match import load_library, match_items, run_match
from offline.synth.world import synthesize


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    synthesize(out, users=2000, days=3, seed=5, rumors=12)
    return out


@pytest.fixture(scope="module")
def run(world: Path) -> dict:
    return run_match(world / "items.parquet", world, world / "match")


def confirmed(world: Path) -> set[str]:
    rows = [json.loads(line) for line in (world / "rumors.jsonl").read_text().splitlines()]
    return {r["rumor_id"] for r in rows if r["status"] == "confirmed"}


def test_summary_counts(world: Path, run: dict) -> None:
    items = pq.read_metadata(world / "items.parquet").num_rows
    assert run["texts"] == items
    assert run["auto"] == pq.read_metadata(world / "match" / "matched_tags.parquet").num_rows
    assert run["review"] == pq.read_metadata(world / "match" / "review_queue.parquet").num_rows
    assert run["texts_per_s"] > 0
    assert run["rumors"] == len(confirmed(world))


def test_untagged_rumor_items_found_with_high_precision(world: Path, run: dict) -> None:
    truth = pq.read_table(world / "truth" / "rumor_items.parquet").to_pylist()
    rumor_of = {r["item_id"]: r["rumor_id"] for r in truth}
    tags = pq.read_table(world / "match" / "matched_tags.parquet").to_pylist()
    assert tags and all(t["source"] == "matched" for t in tags)
    correct = sum(rumor_of.get(t["item_id"]) == t["rumor_id"] for t in tags)
    assert correct / len(tags) >= 0.98
    live = confirmed(world)
    untagged = {r["item_id"] for r in truth if not r["tagged"] and r["rumor_id"] in live}
    found = {t["item_id"] for t in tags if rumor_of.get(t["item_id"]) == t["rumor_id"]}
    assert untagged and len(untagged & found) / len(untagged) >= 0.9


def test_background_items_not_tagged(world: Path, run: dict) -> None:
    truth = {
        r["item_id"] for r in pq.read_table(world / "truth" / "rumor_items.parquet").to_pylist()
    }
    tags = pq.read_table(world / "match" / "matched_tags.parquet").column("item_id").to_pylist()
    review = pq.read_table(world / "match" / "review_queue.parquet").column("item_id").to_pylist()
    assert not [i for i in tags if i not in truth]
    assert len([i for i in review if i not in truth]) <= 2


def test_withdrawn_rumors_are_not_matched(world: Path, run: dict) -> None:
    tags = pq.read_table(world / "match" / "matched_tags.parquet").column("rumor_id").to_pylist()
    assert set(tags) <= confirmed(world)
    assert {e.rumor_id for e in load_library(world)} == confirmed(world)


def test_outputs_written_atomically(world: Path, run: dict, tmp_path: Path) -> None:
    assert not list((world / "match").glob(".*.tmp"))
    out = tmp_path / "out"
    out.mkdir()
    (out / "matched_tags.parquet").write_bytes(b"previous")
    bad = tmp_path / "items.parquet"
    pq.write_table(pa.table({"item_id": ["a"], "other": ["b"]}), bad)  # no text column
    with pytest.raises(Exception):  # noqa: B017 - any read error must leave old outputs
        run_match(bad, world, out)
    assert (out / "matched_tags.parquet").read_bytes() == b"previous"
    assert not list(out.glob(".*.tmp"))


def test_match_items_schema(world: Path) -> None:
    library = load_library(world)
    items = pa.table({"item_id": ["x1", "x2"], "text": [library[0].claim, "今天天气很好"]})
    tags, review = match_items(items, library)
    assert tags.schema.names == ["item_id", "rumor_id", "source", "score"]
    assert review.schema.names == ["item_id", "rumor_id", "score", "best_claim", "text"]
    assert tags.to_pylist()[0]["rumor_id"] == library[0].rumor_id
    assert tags.num_rows == 1
