"""Auto tags checked against their texts and ordered by closeness, and what an item pins; on
plain data and small Parquet files (no servers)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from offline.io.contracts import TAG_SCHEMA
from offline.nightly.provenance import refutes, tag_objection
from offline.nightly.tags import item_texts, matched_items, pinned_item_rumors, resolve_tags
from ranking.tag_precedence import Tag, pinned_rumors, resolve_item_tags, tag_order

CLAIM = "武汉地铁3号线发生踩踏事故，现场一片混乱，已经有人员伤亡"
OTHER = "合肥后天起全市停电检修，冰箱里的东西赶紧处理掉"


def test_a_text_refutes_with_a_word_its_claim_lacks() -> None:
    assert refutes("武汉地铁踩踏系谣言，警方已辟谣", CLAIM)
    assert refutes("Officials DEBUNK the metro crush story", "metro crush in Wuhan")
    assert not refutes(
        "这不是谣言！武汉地铁踩踏", "这不是谣言！武汉地铁踩踏事故"
    )  # the claim says it too
    assert not refutes(CLAIM + "[泪]转发扩散", CLAIM)


def test_tag_objections() -> None:
    assert tag_objection("网传" + CLAIM + "，官方否认", CLAIM) == "refutes"
    assert (
        tag_objection("现实就是这样：", "现实就是这样：有人被抓，有人出狱了，六年刑期")
        == "short_text"
    )
    assert tag_objection("转起来！", "转起来！") is None  # a short claim's own text
    assert tag_objection(CLAIM, CLAIM) is None
    assert tag_objection(None, CLAIM) is None and tag_objection(CLAIM, None) is None


def test_at_equal_score_the_closer_claim_comes_first() -> None:
    own = Tag("i1", "r9", "matched", 1.0, 1.0)
    quoted = Tag("i1", "r1", "matched", 1.0, 0.2)
    assert sorted([quoted, own], key=tag_order) == [own, quoted]
    higher = Tag("i1", "r5", "matched", 0.999, 0.0)
    assert sorted([higher, Tag("i1", "r6", "matched", 0.99, 1.0)], key=tag_order)[0] == higher
    kept, _ = resolve_item_tags([quoted, own], {})
    assert [t.rumor_id for t in kept] == ["r9", "r1"]  # both claims still count


def test_an_auto_tagged_item_pins_its_first_tag_a_hand_tagged_one_all() -> None:
    resolved = [
        Tag("i1", "r9", "matched", 1.0, 1.0),
        Tag("i1", "r1", "matched", 1.0, 0.2),
        Tag("i2", "r3", "manual", 1.0),
        Tag("i2", "r4", "manual", 1.0),
        Tag("i3", "rW", "matched", 1.0),  # withdrawn
        Tag("i3", "r5", "matched", 0.99),
    ]
    confirmed = {"r1", "r3", "r4", "r5", "r9"}
    assert pinned_rumors(resolved, confirmed) == {"i1": ["r9"], "i2": ["r3", "r4"], "i3": ["r5"]}


def tag_table(rows: list[tuple[str, str, str, float]]) -> pa.Table:
    return pa.table({n: [r[i] for r in rows] for i, n in enumerate(TAG_SCHEMA.names)},
                    schema=TAG_SCHEMA)  # fmt: skip


def test_resolve_tags_checks_auto_tags_against_their_texts(tmp_path: Path) -> None:
    claims = {
        "rA": CLAIM + "。另外，" + OTHER,
        "rB": CLAIM,
        "rC": OTHER,
        "rD": "现实就是这样，六年刑期",
    }
    tags = tag_table([
        ("own", "rA", "matched", 1.0),  # rA holds the item's text and more: same score
        ("own", "rB", "matched", 1.0),
        ("denial", "rC", "matched", 1.0),
        ("fragment", "rD", "matched", 1.0),
        ("hand", "rC", "manual", 1.0),
    ])  # fmt: skip
    items = tmp_path / "items.parquet"
    pq.write_table(pa.table({
        "item_id": ["own", "denial", "fragment", "hand", "untagged"],
        "text": [CLAIM, "官方辟谣：" + OTHER, "现实就是这样", "官方辟谣：" + OTHER, "x"],
    }), items)  # fmt: skip
    assert matched_items(tags) == {"own", "denial", "fragment"}
    texts = item_texts([items, tmp_path / "absent.parquet"], matched_items(tags))
    assert set(texts) == {"own", "denial", "fragment"}
    resolved, summary = resolve_tags(tags, {}, texts, claims)
    rows = list(zip(resolved["item_id"].to_pylist(), resolved["rumor_id"].to_pylist(), strict=True))
    assert rows == [("hand", "rC"), ("own", "rB"), ("own", "rA")]  # a hand tag is not checked
    assert summary["matched_dropped"] == {"refutes": 1, "short_text": 1}
    assert pinned_item_rumors(resolved, {"rA", "rB", "rC"}) == {"hand": ["rC"], "own": ["rB"]}
    plain, plain_summary = resolve_tags(tags, {})  # without texts: as before
    assert plain.num_rows == 5 and plain_summary["matched_dropped"] == {}
    assert pinned_item_rumors(plain, {"rA", "rB"})["own"] == [
        "rA"
    ]  # the smaller id, blind to wording
