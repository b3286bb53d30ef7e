"""The judged search sets (bench/judged/) keep their schema, so they cannot rot: known kinds and
halves, unique ids, an expected rumor exactly on the positive kinds. Needs no CED data."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from bench import judged

MIN_ROWS_PER_KIND = 80


@pytest.fixture(scope="module")
def raw() -> list[tuple[str, dict]]:
    return judged.load_raw()


def test_every_row_is_well_formed(raw):
    assert judged.errors(raw) == []


def test_every_kind_has_rows_in_both_halves(raw):
    per = Counter((row["kind"], row["half"]) for _, row in raw)
    for kind in judged.KINDS:
        assert per[kind, "tune"] + per[kind, "test"] >= MIN_ROWS_PER_KIND, kind
        assert per[kind, "tune"] > 0 and per[kind, "test"] > 0, kind


def test_expected_is_null_exactly_for_negative_kinds(raw):
    for where, row in raw:
        assert (row["expected"] is None) == (row["kind"] in judged.NEGATIVE_KINDS), where


def test_a_claim_sits_in_one_half(raw):
    """Rows accepting the same post are all tune or all test: nothing leaks across the split."""
    half_of: dict[str, set[str]] = {}
    for _, row in raw:
        if row["expected"] is not None:
            for post in [row["expected"], *row.get("also", [])]:
                half_of.setdefault(post, set()).add(row["half"])
    leaked = sorted(p for p, halves in half_of.items() if len(halves) > 1)
    assert leaked == []


def test_the_checks_catch_bad_rows():
    good = {
        "id": "x-1",
        "kind": "search",
        "query": "宁波 天气",
        "expected": "p1",
        "half": "tune",
        "note": "",
    }
    assert judged.row_errors(good, "r") == []
    assert judged.row_errors({**good, "kind": "everyday"}, "r")  # a negative with an answer
    assert judged.row_errors({**good, "expected": None}, "r")  # a positive without one
    assert judged.row_errors({**good, "half": "dev"}, "r")
    assert judged.row_errors({**good, "kind": "traditional"}, "r")  # no style
    assert judged.row_errors({**good, "colour": "red"}, "r")
    dup = [("a:1", good), ("a:2", good)]
    assert any("already used" in e for e in judged.errors(dup))


def test_load_refuses_a_bad_folder(tmp_path):
    (tmp_path / "bad.jsonl").write_text(
        json.dumps({"id": "b", "kind": "nope", "query": "q", "expected": None, "half": "tune"})
        + "\n",
        encoding="utf-8",
    )
    with pytest.raises(ValueError, match="bad.jsonl:1"):
        judged.load(tmp_path)


def test_the_threshold_is_the_lowest_score_reaching_the_target():
    import numpy as np

    from bench.search_scoring import pick_threshold

    score = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    right = np.array([True, True, False, True, False])
    assert pick_threshold(score, right, 0.75) == {
        "threshold": 0.6,
        "precision": 0.75,
        "reached": True,
    }
    never = pick_threshold(np.array([0.9, 0.8]), np.array([False, True]), 0.95)
    assert never == {"threshold": 0.8, "precision": 0.5, "reached": False}
