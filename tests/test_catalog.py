"""Reading the rumor library inputs: ClaimReview JSON-LD, JSON Lines, CSV, Parquet."""

from __future__ import annotations

import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from domain.rows import RecordError, parse_rumor
from offline.io.catalog import (
    InputError,
    debunk_from_claim_review,
    load_debunks,
    load_rumors,
    load_tags,
)

CLAIM_REVIEW = {
    "@context": "https://schema.org",
    "@type": "ClaimReview",
    "identifier": "d0000001",
    "url": "https://debunk.example/d/d0000001",
    "headline": "辟谣：喝板蓝根能预防新冠不实",
    "claimReviewed": "喝板蓝根能预防新冠",
    "itemReviewed": {"@type": "Claim", "identifier": "r000001"},
    "reviewRating": {"@type": "Rating", "ratingValue": 1, "alternateName": "false"},
    "author": {"@type": "Organization", "name": "国家卫生健康委员会", "additionalType": "official"},
    "additionalType": "video",
    "inLanguage": "zh",
    "datePublished": "2026-10-02T08:00:00+08:00",
}


def test_claim_review_maps_to_a_debunk() -> None:
    d = debunk_from_claim_review(CLAIM_REVIEW)
    assert d.debunk_id == "d0000001" and d.rumor_ids == ("r000001",)
    assert d.title == "辟谣：喝板蓝根能预防新冠不实"
    assert (d.publisher, d.authority, d.format, d.language) == (
        "国家卫生健康委员会",
        "official",
        "video",
        "zh",
    )
    assert d.published_at == "2026-10-02T00:00:00Z"  # normalised to UTC


def test_claim_review_with_several_claims_and_a_plain_author() -> None:
    obj = {
        **CLAIM_REVIEW,
        "author": "澎湃新闻",
        "additionalType": "podcast",
        "itemReviewed": [{"identifier": "r1"}, {"identifier": "r2"}],
    }
    d = debunk_from_claim_review(obj)
    assert d.rumor_ids == ("r1", "r2")
    assert d.publisher == "澎湃新闻" and d.authority == "media" and d.format == "article"


def test_json_ld_graph_and_array_both_load(tmp_path: Path) -> None:
    (tmp_path / "a.jsonld").write_text(json.dumps([CLAIM_REVIEW]), encoding="utf-8")
    (tmp_path / "b.jsonld").write_text(json.dumps({"@graph": [CLAIM_REVIEW]}), encoding="utf-8")
    assert load_debunks(tmp_path / "a.jsonld") == load_debunks(tmp_path / "b.jsonld")


def test_debunks_from_csv(tmp_path: Path) -> None:
    path = tmp_path / "debunks.csv"
    path.write_text(
        "debunk_id,rumor_ids,title,url,publisher,authority,format,language,published_at\n"
        "d1,r1;r2,T,https://x,P,fact_checker,card,en,2026-10-01T00:00:00Z\n",
        encoding="utf-8",
    )
    [d] = load_debunks(path)
    assert d.rumor_ids == ("r1", "r2") and d.authority == "fact_checker" and d.format == "card"


def test_rumors_from_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "rumors.jsonl"
    rows = [
        {
            "rumor_id": "r1",
            "claim": "c",
            "category": "epidemic",
            "severity": 4,
            "keywords": ["板蓝根"],
            "verdict": "false",
            "status": "confirmed",
            "confirmed_at": "2026-10-01T00:00:00Z",
        },
        {
            "rumor_id": "r2",
            "claim": "d",
            "category": "other",
            "severity": 1,
            "keywords": [],
            "verdict": "disputed",
            "status": "withdrawn",
            "confirmed_at": None,
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    r1, r2 = load_rumors(path)
    assert r1.confirmed and r1.keywords == ("板蓝根",) and r1.severity == 4
    assert not r2.confirmed


def test_a_broken_line_names_the_file_and_line(tmp_path: Path) -> None:
    path = tmp_path / "rumors.jsonl"
    path.write_text('{"rumor_id": "r1"}\n{not json\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"rumors.jsonl:2: not JSON"):
        load_rumors(path)


def test_tags_need_item_and_rumor_columns(tmp_path: Path) -> None:
    good = tmp_path / "tags.parquet"
    pq.write_table(
        pa.table({"item_id": ["i1", None], "rumor_id": ["r1", "r1"], "score": [1.0, 1.0]}), good
    )
    assert load_tags(good).to_pylist() == [{"item_id": "i1", "rumor_id": "r1"}]
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"item": ["i1"], "rumor_id": ["r1"]}), bad)
    with pytest.raises(InputError, match="bad.parquet: missing column 'item_id'"):
        load_tags(bad)


def test_rumor_rows_from_parquet_and_json_lines_parse_alike(tmp_path: Path) -> None:
    row = {
        "rumor_id": "r1",
        "claim": "c",
        "category": "epidemic",
        "severity": 4,
        "keywords": ["板蓝根", " 流感 ", ""],
        "verdict": "false",
        "status": "confirmed",
        "confirmed_at": "2026-10-01T08:00:00+08:00",
        "variants": ["v1, with a comma", ""],
    }
    (tmp_path / "rumors.jsonl").write_text(json.dumps(row, ensure_ascii=False) + "\n")
    pq.write_table(pa.Table.from_pylist([row]), tmp_path / "rumors.parquet")
    [a] = load_rumors(tmp_path / "rumors.jsonl")
    assert load_rumors(tmp_path / "rumors.parquet") == [a]
    assert a.keywords == ("板蓝根", "流感") and a.variants == ("v1, with a comma",)
    assert a.confirmed_at == "2026-10-01T00:00:00Z"


def test_a_rumor_row_with_string_lists_and_defaults() -> None:
    r = parse_rumor({"rumor_id": "r1", "keywords": "a; b,,c", "variants": "one, text"})
    assert r.keywords == ("a", "b", "c") and r.variants == ("one, text",)
    assert (r.claim, r.category, r.severity, r.verdict, r.status) == (
        "",
        "other",
        1,
        "false",
        "confirmed",
    )
    assert parse_rumor({"rumor_id": "r2", "severity": "3"}).severity == 3  # CSV text


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"claim": "c"}, "rumor_id is missing"),
        ({"rumor_id": "r 1"}, "rumor_id may only contain"),
        ({"rumor_id": "r1", "severity": 7}, "severity must be an integer from 1 to 5, got 7"),
        ({"rumor_id": "r1", "severity": 2.5}, "severity must be an integer"),
        ({"rumor_id": "r1", "status": "pending"}, "status must be one of confirmed, withdrawn"),
        ({"rumor_id": "r1", "verdict": "true"}, "verdict must be one of"),
        ({"rumor_id": "r1", "category": "health"}, "category must be one of"),
        ({"rumor_id": "r1", "claim": 5}, "claim must be a string"),
        ({"rumor_id": "r1", "keywords": 5}, "keywords must be a list or a string"),
        ({"rumor_id": "r1", "confirmed_at": "yesterday"}, "confirmed_at is not an ISO 8601"),
    ],
)
def test_a_bad_rumor_row_is_refused_with_the_field_and_the_reason(row: dict, reason: str) -> None:
    with pytest.raises(RecordError, match=reason):
        parse_rumor(row)


def test_a_bad_rumor_row_names_the_file_the_line_and_the_field(tmp_path: Path) -> None:
    path = tmp_path / "rumors.jsonl"
    path.write_text('{"rumor_id": "r1"}\n{"rumor_id": "r2", "severity": 9}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"rumors.jsonl:2: bad rumor record: severity must be"):
        load_rumors(path)
