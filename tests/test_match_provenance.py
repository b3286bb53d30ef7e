"""The nightly matcher leaves the debunks' own texts and authority authors alone, and the night's
tags obey precedence; on a small synthetic world with a few planted items."""

from __future__ import annotations

import asyncio
import json
import shutil
from datetime import UTC, date, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import redis

from feature_store.connection import RedisSettings
from feature_store.reader import SnapshotReader
from feature_store.transport.factory import open_transport
from offline.io.contracts import ITEM_SCHEMA
from offline.nightly.job import run_nightly
from offline.nightly.match import run_match
from offline.nightly.provenance import DebunkTexts, skip_reasons

T0 = datetime(2026, 10, 1, tzinfo=UTC)
COMPOUND_TAIL = (
    "另据多名网友爆料，当晚城郊一座化工厂发生爆炸，附近三个村庄的村民连夜撤离，"
    "官方至今没有公布伤亡人数，请大家不要靠近那一带，也提醒家里的老人孩子注意安全"
)


def test_skip_reasons() -> None:
    debunks = DebunkTexts(["较真：网传“地铁踩踏”系谣言", "短标题"])
    texts = ["较真：网传“地铁踩踏”系谣言。详情如下……", "地铁踩踏了！", "短标题", None, "x"]
    authors = [None, None, None, None, "official"]
    assert skip_reasons(texts, authors, debunks) == [
        "debunk_text",
        None,
        None,  # titles under 8 characters are too short to tell
        None,
        "official_author",
    ]
    assert skip_reasons(["地铁踩踏了！"], None, debunks) == [None]


@pytest.fixture
def world(small_world: Path, tmp_path: Path) -> Path:
    """small_world plus: an official case report restating a rumor, a post of a debunk's
    headline, a rumor repost a moderator tagged to another rumor, a sibling rumor that states
    rumor 0's claim again; a compound rumor (most severe, first by id) that quotes rumor 1's
    claim inside a longer story, rumor 1's own text as an item, and a denial of it."""
    out = tmp_path / "world"
    shutil.copytree(small_world, out)
    rumors = [json.loads(x) for x in (out / "rumors.jsonl").read_text().splitlines() if x]
    r0, r1 = rumors[0], rumors[1]
    sibling = {**r0, "rumor_id": "r900000", "claim": r0["claim"] + "！！转发扩散"}
    compound = {**r1, "rumor_id": "a_compound", "severity": 5, "keywords": [],
                "claim": f"{r1['claim']}。{COMPOUND_TAIL}"}  # fmt: skip
    (out / "rumors.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in [*rumors, sibling, compound])
    )
    debunks = json.loads((out / "debunks.jsonld").read_text())
    headline = next(
        d["headline"] for d in debunks if d["itemReviewed"]["identifier"] == r0["rumor_id"]
    )
    items = pq.read_table(out / "items.parquet").select(ITEM_SCHEMA.names)  # authors below
    planted = pa.table(
        {
            "item_id": ["official1", "debunk1", "repost1", "own1", "denial1"],
            "text": [
                f"警方通报：经查，{r0['claim']}系谣言",
                headline,
                r0["claim"],
                r1["claim"],
                f"官方辟谣：{r1['claim']}",
            ],  # fmt: skip
            "created_at": [T0] * 5,
        },
        schema=ITEM_SCHEMA,
    )
    items = pa.concat_tables([items, planted]).append_column(
        "author_type",
        pa.array([None] * items.num_rows + ["official", None, None, None, None], pa.string()),
    )
    pq.write_table(items, out / "items.parquet")
    tags = pq.read_table(out / "tagged_items.parquet")
    moderator = pa.table(
        {
            "item_id": ["repost1"],
            "rumor_id": [r1["rumor_id"]],
            "source": ["manual"],
            "score": [1.0],
        },
        schema=tags.schema,
    )
    pq.write_table(pa.concat_tables([tags, moderator]), out / "tagged_items.parquet")
    return out


def test_the_matcher_skips_authorities_and_debunk_texts(world: Path, tmp_path: Path) -> None:
    summary = run_match(world / "items.parquet", world, tmp_path / "match")
    assert summary["skipped"] == {"debunk_text": 1, "official_author": 1}
    tagged = set(pq.read_table(tmp_path / "match" / "matched_tags.parquet")["item_id"].to_pylist())
    assert "official1" not in tagged and "debunk1" not in tagged
    assert "repost1" in tagged  # the matcher does find it: precedence decides later


def test_the_night_keeps_clusters_and_hand_tags_first(
    world: Path, tmp_path: Path, client: redis.Redis, settings: RedisSettings
) -> None:
    rumors = [json.loads(x) for x in (world / "rumors.jsonl").read_text().splitlines() if x]
    r0, r1 = rumors[0]["rumor_id"], rumors[1]["rumor_id"]
    summary = run_nightly(world, date(2026, 10, 5), tmp_path / "state", settings, train=False)
    confirmed = sum(1 for r in rumors if r["status"] == "confirmed")
    assert summary["clusters"]["rumors"] == confirmed
    assert summary["clusters"]["clusters"] == confirmed - 1  # the sibling joins rumor 0
    assert summary["clusters"]["largest"] == 2
    assert summary["tag_precedence"]["matched_overridden"] >= 1  # repost1's matcher tag
    assert summary["match"]["skipped"] == {"debunk_text": 1, "official_author": 1}

    async def read() -> tuple:
        reader = SnapshotReader(open_transport(settings))
        try:
            version = await reader.current_version()
            assert version is not None
            items = await reader.items_rumors(version, ["repost1", "own1", "denial1"])
            return await reader.catalog(version), items
        finally:
            await reader.transport.aclose()

    catalog, (repost, own, denial) = asyncio.run(read())
    assert catalog.rumors["r900000"].cluster == r0 and catalog.rumors[r0].cluster == r0
    assert catalog.rumors["a_compound"].cluster == "a_compound"  # another claim, by wording
    assert repost == [r1]  # the moderator's tag, not the matcher's
    assert own == [r1]  # rumor 1's own text pins rumor 1, not the compound that quotes it
    assert denial == []  # a denial is not the rumor
    assert summary["tag_precedence"]["matched_dropped"]["refutes"] >= 1
