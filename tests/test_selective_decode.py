"""The selective decoder (offline.join.selective, _pqdecode.c) against pyarrow's path: on every
layout the sweep writes, the hit rows of each row group and the whole join's state, rejects and
counts are the same with the decoder on and off (DEBUNK_SELECTIVE_DECODE=0); what it does not
read (bad rows, other encodings, text ts) goes back to pyarrow's path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from offline.io.contracts import EXPOSURE_SCHEMA
from offline.io.rejects import RejectWriter
from offline.join import pages, selective
from offline.join.contracts import JoinSummary, prepare_tags
from offline.join.local import LocalEngine
from offline.join.screen import screen_file
from offline.join.tag_index import TagIndex
from offline.synth.writers import LOG_OPTIONS
from tests.fixtures.logs import t

pytestmark = pytest.mark.skipif(pages._pqdecode is None, reason="_pqdecode not built")

SPARK_LIKE = {
    "compression": "snappy",
    "dictionary_pagesize_limit": 1 << 20,
    "data_page_size": 1 << 20,
    "store_schema": False,
}
LAYOUTS: dict[str, dict[str, Any]] = {
    "pyarrow-default": {},
    "generator": {"compression": "zstd", "compression_level": 1, **LOG_OPTIONS},
    "generator-plain-snappy": {**LOG_OPTIONS, "compression": "snappy"},
    "spark-like": SPARK_LIKE,
    "small-row-groups": {"row_group_size": 1000},
    "dictionary-fallback": {"dictionary_pagesize_limit": 2048, "data_page_size": 4096},
    "data-page-v2": {"data_page_version": "2.0", "data_page_size": 4096},
    "v2-uncompressed-pages": {"data_page_version": "2.0", "compression": "none"},
    "gzip": {"compression": "gzip", "data_page_size": 8192},
    "lz4-raw": {"compression": "lz4"},
    "brotli": {"compression": "brotli"},
    "int96-ts": {"use_deprecated_int96_timestamps": True},  # as Spark writes ts
    "ts-milliseconds": {"coerce_timestamps": "ms", "allow_truncated_timestamps": True},
}
SURFACES = np.array(["feed", "search", "comment", "group", "push", "other"])
ACTIONS = np.array(["impression", "click", "like", "comment", "share"])


def _rows(n: int, seed: int, *, bad: bool = False, nullable: bool = True) -> pa.Table:
    """Seeded log rows over 3000 users and 400 items (with ``bad``: one bad row of each kind)."""
    rng = np.random.default_rng(seed)
    users = [f"user-{i:06d}" for i in rng.integers(0, 3000, n)]
    items = [f"it{i}" for i in rng.integers(0, 400, n)]
    surface = list(SURFACES[rng.integers(0, 6, n)])
    if bad:
        users[3], items[5], users[7], items[11] = "", "", None, None
        surface[13] = "billboard"
    base = t(1).timestamp()
    ts = [t(1).fromtimestamp(base + int(s), t(1).tzinfo) for s in rng.integers(0, 86_400, n)]
    fields = [pa.field(f.name, f.type, nullable=nullable) for f in EXPOSURE_SCHEMA]
    return pa.table(
        {
            "user_id": pa.array(users, pa.string()),
            "item_id": pa.array(items, pa.string()),
            "ts": pa.array(ts, EXPOSURE_SCHEMA.field("ts").type),
            "surface": pa.array(surface, pa.string()),
            "action": pa.array(list(ACTIONS[rng.integers(0, 5, n)]), pa.string()),
        },
        schema=pa.schema(fields),
    )


TAGS = pa.table(
    {
        "item_id": [f"it{i}" for i in range(0, 400, 9)] + ["it18", "it0"],
        "rumor_id": [f"r{i % 5}" for i in range(0, 400, 9)] + ["r9", "r8"],
    }
)


def _write(tmp_path: Path, name: str, table: pa.Table, **options: Any) -> Path:
    path = tmp_path / name / "dt=2026-10-01" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **options)
    return path


def _join(path: Path, out: Path) -> tuple[pa.Table, list[dict], dict]:
    summary = JoinSummary()
    writer = RejectWriter(out)
    engine = LocalEngine()
    partial = engine.scan([path], prepare_tags(TAGS), summary, sink=writer.add)
    writer.close()
    rejects = pq.read_table(out).to_pylist() if out.exists() else []
    rejects.sort(key=lambda r: tuple(str(v) for v in r.values()))
    return engine.merge_state([partial]).exposures, rejects, summary.as_dict()


def _both(tmp_path: Path, path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Any, Any]:
    """The join's (state, rejects, counts) with the selective decoder, then without it."""
    on = _join(path, tmp_path / "on.parquet")
    monkeypatch.setenv("DEBUNK_SELECTIVE_DECODE", "0")
    assert not selective.available()
    off = _join(path, tmp_path / "off.parquet")
    monkeypatch.delenv("DEBUNK_SELECTIVE_DECODE")
    return on, off


def _sorted(hits: pa.Table) -> pa.Table:
    return hits.sort_by([(c, "ascending") for c in hits.column_names])


def _pyarrow_hits(path: Path, index: TagIndex, monkeypatch: pytest.MonkeyPatch) -> pa.Table:
    """Each row on a tagged item with its tag position, by pyarrow's path and the exact lookup."""
    monkeypatch.setenv("DEBUNK_SELECTIVE_DECODE", "0")
    parts = []
    for result in screen_file(str(path), False, index, 1 << 20):
        if result.hits is not None:
            parts.append(result.hits)
        if result.candidates is not None:
            rows, at = index.lookup(result.candidates["item_id"])
            got = result.candidates.take(pa.array(rows))
            parts.append(got.append_column("tag_pos", pa.array(at, pa.int32())))
    monkeypatch.delenv("DEBUNK_SELECTIVE_DECODE")
    return _sorted(pa.concat_tables(parts))


@pytest.mark.parametrize("nullable", [True, False], ids=["nullable", "required"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_hits_equal_pyarrows_on_every_layout(
    tmp_path: Path, layout: str, nullable: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, layout, _rows(6000, seed=2, nullable=nullable), **LAYOUTS[layout])
    index = TagIndex.build(prepare_tags(TAGS))
    done, rest = selective.screen_groups(str(path), None, index, None)
    assert rest == [] and len(done) == pq.read_metadata(path).num_row_groups
    assert sum(n for n, _ in done) == 6000
    ours = _sorted(pa.concat_tables([hits for _, hits in done]))
    assert ours.num_rows > 500
    assert ours.equals(_pyarrow_hits(path, index, monkeypatch))


@pytest.mark.parametrize("layout", ["pyarrow-default", "generator", "dictionary-fallback"])
def test_join_is_the_same_with_and_without_the_decoder(
    tmp_path: Path, layout: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = {**LAYOUTS[layout], "row_group_size": 1500}
    path = _write(tmp_path, layout, _rows(6000, seed=3), **options)
    on, off = _both(tmp_path, path, monkeypatch)
    assert on[0].num_rows > 100
    assert on[0].equals(off[0]) and on[1] == off[1] and on[2] == off[2]


def test_a_row_group_with_bad_rows_goes_to_pyarrow(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Bad rows sit in the first of four row groups; the other three are decoded selectively.
    path = _write(tmp_path, "bad", _rows(6000, seed=4, bad=True), row_group_size=1500)
    index = TagIndex.build(prepare_tags(TAGS))
    done, rest = selective.screen_groups(str(path), None, index, None)
    assert rest == [0] and len(done) == 3
    on, off = _both(tmp_path, path, monkeypatch)
    assert len(on[1]) == 5 and on[1] == off[1]
    assert on[0].equals(off[0]) and on[2] == off[2]


def test_what_it_cannot_read_goes_to_pyarrow(tmp_path: Path) -> None:
    index = TagIndex.build(prepare_tags(TAGS))
    table = _rows(3000, seed=5)
    delta = _write(
        tmp_path,
        "delta",
        table,
        use_dictionary=False,
        column_encoding={"user_id": "DELTA_BYTE_ARRAY"},
    )
    nanos = _write(
        tmp_path, "ns", table.set_column(2, "ts", table["ts"].cast(pa.timestamp("ns", "UTC")))
    )
    for path in (delta, nanos):
        assert selective.screen_groups(str(path), None, index, None) == ([], [0])
    assert selective.screen_groups(str(tmp_path / "missing.parquet"), None, index, None)[1] is None


def test_before_keeps_the_earlier_hits_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _write(tmp_path, "before", _rows(6000, seed=6))
    index = TagIndex.build(prepare_tags(TAGS))
    cut = t(1).fromtimestamp(t(1).timestamp() + 40_000, t(1).tzinfo)
    ((_, all_hits),) = selective.screen_groups(str(path), None, index, None)[0]
    ((_, early),) = selective.screen_groups(str(path), None, index, cut)[0]
    assert 0 < early.num_rows < all_hits.num_rows
    assert _sorted(early).equals(_sorted(all_hits.filter(pa.compute.less(all_hits["ts"], cut))))


def test_unreadable_page_headers_raise_value_error() -> None:
    with pytest.raises(ValueError):
        pages._pqdecode.page_headers(b"\x15\x00\x15")
    with pytest.raises(ValueError):
        pages._pqdecode.plain_take(b"\x05\x00\x00\x00ab", 1, None)
    assert pages._pqdecode.level_count(b"\x10\x01", 1, 8, 1) == 8  # an RLE run of eight 1s


def test_debunk_exposures_writes_the_same_with_and_without_the_decoder(tmp_path: Path) -> None:
    import json
    import os
    import subprocess
    import sys

    logs = tmp_path / "logs"
    for day, seed in (("2026-10-01", 7), ("2026-10-02", 8)):
        path = logs / f"dt={day}" / "part-0.parquet"
        path.parent.mkdir(parents=True)
        pq.write_table(_rows(6000, seed=seed, bad=seed == 8), path, row_group_size=2000)
    pq.write_table(TAGS, tmp_path / "tags.parquet")
    outputs = {}
    for flag in ("1", "0"):
        out = tmp_path / f"out-{flag}"
        done = subprocess.run(
            [sys.executable, "-m", "cli.main", "exposures", "--logs", str(logs),
             "--tags", str(tmp_path / "tags.parquet"), "--out", str(out)],
            capture_output=True, text=True, timeout=120,
            env={**os.environ, "DEBUNK_SELECTIVE_DECODE": flag},
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        files = sorted(p.relative_to(out) for p in out.rglob("*.parquet"))
        tables = {str(f): pq.read_table(out / f) for f in files}
        summary = json.loads(done.stdout)
        for key in ("output", "rejects", "seconds"):  # where it wrote, how long it took
            summary.pop(key)
        outputs[flag] = (summary, tables)
    (summary_on, on), (summary_off, off) = outputs["1"], outputs["0"]
    assert summary_on == summary_off and summary_on["rows_kept"] > 0
    assert sum(summary_on["rows_rejected"].values()) == 5
    assert on.keys() == off.keys() and len(on) >= 2
    assert all(on[name].equals(off[name]) for name in on)


def _reference_hits(path: Path, index: TagIndex) -> pa.Table | None:
    """Hit rows from a plain pyarrow read of every column (None: unreadable or a bad row)."""
    try:
        table = pq.read_table(path)
        items = table["item_id"].cast(pa.binary()).to_pylist()
    except (OSError, pa.ArrowException):
        return None
    if table.num_rows != 6000 or any(c.null_count for c in table.columns):
        return None
    bad = pa.compute.equal(pa.compute.binary_length(table["user_id"]), 0)
    known = [
        pa.compute.all(pa.compute.is_in(table[name], value_set=pa.array(vocab))).as_py()
        for name, vocab in (("action", ACTIONS), ("surface", SURFACES))
    ]
    if pa.compute.any(bad).as_py() or b"" in items or not all(known):
        return None
    tagged = {i.encode(): p for p, i in enumerate(index.items.to_pylist())}
    rows = [r for r, item in enumerate(items) if item in tagged]
    return pa.table(
        {
            "user_id": table["user_id"].take(rows).cast(pa.binary()),
            "item_id": pa.array([items[r] for r in rows], pa.binary()),
            "ts": table["ts"].take(rows),
            "tag_pos": pa.array([tagged[items[r]] for r in rows], pa.int32()),
        }
    )


@pytest.mark.parametrize("layout", ["pyarrow-default", "data-page-v2", "int96-ts"])
def test_corrupt_bytes_never_crash_and_agree_with_a_plain_read(tmp_path: Path, layout: str) -> None:
    # Seeded byte flips in the column data: the decoder raises (the row group goes to pyarrow)
    # or gives the hits a plain pyarrow read gives. (pyarrow's dictionary read can disagree
    # with its own plain read on such bytes, so the plain read is the reference.)
    path = _write(tmp_path, layout, _rows(6000, seed=9), **LAYOUTS[layout])
    data = path.read_bytes()
    body = len(data) - 8 - int.from_bytes(data[-8:-4], "little")
    index = TagIndex.build(prepare_tags(TAGS))
    rng = np.random.default_rng(10)
    decoded = compared = 0
    for _ in range(120):
        mutated = bytearray(data)
        for at in rng.integers(4, body, rng.integers(1, 4)):
            mutated[at] = int(rng.integers(0, 256))
        path.write_bytes(bytes(mutated))
        done, rest = selective.screen_groups(str(path), None, index, None)
        if rest:
            continue
        decoded += 1
        reference = _reference_hits(path, index)
        if reference is None:
            continue
        ours = done[0][1]
        ours = ours.select(["user_id", "item_id", "ts", "tag_pos"])
        ours = ours.set_column(0, "user_id", ours["user_id"].cast(pa.binary()))
        ours = ours.set_column(1, "item_id", ours["item_id"].cast(pa.binary()))
        assert _sorted(ours).equals(_sorted(reference.cast(ours.schema)))
        compared += 1
    assert decoded > 10 and compared > 5


def test_files_pyspark_writes_are_decoded_selectively(
    spark: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # parquet-mr with Spark's defaults: snappy, dictionary ids, v1 pages, INT96 ts.
    from offline.join.spark_session import get_session

    source = _write(tmp_path, "source", _rows(6000, seed=11))
    target = tmp_path / "pyspark"
    get_session().read.parquet(str(source)).repartition(2).write.parquet(str(target))
    written = sorted(target.glob("*.parquet"))
    assert len(written) == 2
    assert pq.read_metadata(written[0]).schema.column(2).physical_type == "INT96"
    index = TagIndex.build(prepare_tags(TAGS))
    for path in written:
        done, rest = selective.screen_groups(str(path), None, index, None)
        assert rest == [] and done
        ours = _sorted(pa.concat_tables([hits for _, hits in done]))
        assert ours.num_rows > 100
        assert ours.equals(_pyarrow_hits(path, index, monkeypatch))


def test_short_long_and_look_alike_ids_are_matched_exactly(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Ids shorter than the prefilter's 8-byte key, ids a NUL apart, multi-byte text, long ids.
    odd = ["a", "a\0", "b", "ab\0\0", "谣言-001", "x" * 300, "x" * 299, "y" * 300]
    table = _rows(4000, seed=12)
    rng = np.random.default_rng(13)
    items = [odd[i] if i < len(odd) else f"it{i}" for i in rng.integers(0, 40, 4000)]
    table = table.set_column(1, "item_id", pa.array(items, pa.string()))
    tags = pa.table(
        {"item_id": ["a\0", "b", "谣言-001", "x" * 300, "it17"], "rumor_id": ["r1"] * 5}
    )
    index = TagIndex.build(prepare_tags(tags))
    for name, options in (("plain", LAYOUTS["generator"]), ("dictionary", {})):
        path = _write(tmp_path, name, table, **options)
        done, rest = selective.screen_groups(str(path), None, index, None)
        assert rest == []
        ours = _sorted(pa.concat_tables([hits for _, hits in done]))
        assert set(ours["item_id"].to_pylist()) == {"a\0", "b", "谣言-001", "x" * 300, "it17"}
        assert ours.equals(_pyarrow_hits(path, index, monkeypatch))
