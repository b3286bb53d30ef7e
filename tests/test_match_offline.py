"""Offline matching on a small synthetic world: untagged rumor items are found, background
items are left alone, and outputs are written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from feature_store.connection import RedisSettings
from matching import Matcher
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


def test_worker_processes_write_what_one_process_writes(world: Path, tmp_path: Path) -> None:
    from offline.nightly.match import PARALLEL_MIN

    items = pq.read_table(world / "items.parquet", columns=["item_id", "text"])
    reps = -(-PARALLEL_MIN // items.num_rows) + 1
    ids = items.column("item_id").to_pylist()
    many = pa.concat_tables(
        [items.set_column(0, "item_id", pa.array([f"{i}#{r}" for i in ids])) for r in range(reps)]
    )
    pq.write_table(many, tmp_path / "items.parquet")
    one = run_match(tmp_path / "items.parquet", world, tmp_path / "one", workers=1)
    two = run_match(tmp_path / "items.parquet", world, tmp_path / "two", workers=2)
    assert (one["workers"], two["workers"]) == (1, 2)
    for name in ("matched_tags.parquet", "review_queue.parquet"):
        assert pq.read_table(tmp_path / "one" / name).equals(pq.read_table(tmp_path / "two" / name))
    assert one["auto"] == two["auto"] > 0


# Rows that tell the qualification rule apart: confirmed, withdrawn, an empty claim, a status
# left out (confirmed), keywords as one string and a single variant text, out of id order.
LIBRARY_ROWS = [
    {"rumor_id": "r3", "claim": "明天全市停水，赶紧囤水", "keywords": "停水; 囤水",
     "variants": "明天停水！！赶紧囤水"},
    {"rumor_id": "r1", "claim": "喝板蓝根可以预防流感", "keywords": ["板蓝根", " 流感 "],
     "variants": ["听说喝板蓝根可以预防流感", ""], "status": "confirmed"},
    {"rumor_id": "r2", "claim": "地震预报：今晚有大地震", "status": "withdrawn"},
    {"rumor_id": "r4", "claim": "", "keywords": ["无题"], "status": "confirmed"},
    {"rumor_id": "r5", "claim": "   ", "variants": ["只有变体"]},
]  # fmt: skip


def test_offline_and_service_build_the_same_library_from_the_same_rumors(
    tmp_path: Path, client: redis.Redis, settings: RedisSettings
) -> None:
    import asyncio

    from feature_store.reader import SnapshotReader
    from feature_store.snapshots import SnapshotWriter
    from feature_store.transport.factory import open_transport
    from offline.io.catalog import load_rumors
    from offline.nightly.match import make_matcher
    from service.library import LibraryMatchers

    path = tmp_path / "rumors.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in LIBRARY_ROWS) + "\n")
    offline = load_library(tmp_path)
    assert [e.rumor_id for e in offline] == ["r1", "r3"]  # confirmed, with a claim, in id order
    assert offline[0].keywords == ("板蓝根", "流感") and offline[1].variants == (
        "明天停水！！赶紧囤水",
    )

    writer = SnapshotWriter(client, "lib1")  # the nightly job's catalog, as the service reads it
    writer.write_catalog(load_rumors(path), [])
    writer.commit()

    async def service_matcher() -> Matcher | None:
        transport = open_transport(settings)
        try:
            matchers = LibraryMatchers(SnapshotReader(transport))
            await matchers.prepare("lib1")
            return matchers.get("lib1")
        finally:
            await transport.aclose()

    online = asyncio.run(service_matcher())
    built = make_matcher(offline)
    assert online is not None
    assert (online.rumor_ids, online.claims, online.doc_texts) == (
        built.rumor_ids,
        built.claims,
        built.doc_texts,
    )


def test_the_nightly_matches_against_the_library_it_folded(world: Path, tmp_path: Path) -> None:
    """``rumors=`` (the files with the live layer over them) is the library: a rumor withdrawn
    live gets no auto tag, one confirmed live does."""
    from dataclasses import replace

    from offline.io.catalog import RUMOR_FILES, find_input, load_rumors

    rumors = load_rumors(find_input(world, RUMOR_FILES))
    tagged = pq.read_table(world / "match" / "matched_tags.parquet")["rumor_id"].to_pylist()
    gone = max(set(tagged), key=lambda r: (tagged.count(r), r))  # the most auto-tagged rumor
    back = sorted(r.rumor_id for r in rumors if not r.confirmed)
    folded = [
        replace(r, status="withdrawn") if r.rumor_id == gone
        else replace(r, status="confirmed") if r.rumor_id in back else r
        for r in rumors
    ]  # fmt: skip
    summary = run_match(world / "items.parquet", world, tmp_path / "m", rumors=folded)
    again = pq.read_table(tmp_path / "m" / "matched_tags.parquet")["rumor_id"].to_pylist()
    assert summary["auto"] > 0 and gone not in again
    assert back and set(again) & set(back), "a rumor confirmed live is matched at night"
