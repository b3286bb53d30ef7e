"""Row groups encoded column by column on a pool (offline.io.column_pieces) give the bytes one
pq.ParquetWriter writes: for the state and pair schemas, many row groups, chunked inputs,
nulls, dictionary and plain columns, empty and one-row files; a footer it cannot carry falls
back to ParquetWriter itself; a failed write leaves no file. And the compact Thrift codec
writes back what it read.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import offline.io.column_pieces as column_pieces
from offline.io.compact_thrift import (
    BINARY,
    DOUBLE,
    I16,
    I32,
    I64,
    LIST,
    STRUCT,
    TRUE,
    read_struct,
    write_struct,
)
from offline.io.parquet import write_parquet_chunks_atomic
from offline.join.contracts import PAIR_SCHEMA, STATE_SCHEMA

TS = pa.timestamp("us", tz="UTC")


def _state(n: int, seed: int) -> pa.Table:
    """Seeded STATE_SCHEMA rows in (user, rumor) order: few rumors (dictionary pages), ids
    near one a row (plain), timestamps with nulls, floats with a few distinct values."""
    rng = np.random.default_rng(seed)
    users = np.sort(rng.integers(0, max(1, n // 2), n))
    none = rng.random(n) < 0.8
    return pa.table(
        {
            "user_id": pa.array([f"u{u:08d}" for u in users], pa.string()),
            "rumor_id": pa.array([f"r{r:04d}" for r in rng.integers(0, 300, n)], pa.string()),
            "exposures": pa.array(rng.integers(1, 50, n), pa.int64()),
            "first_ts": pa.array(rng.integers(0, 10**15, n), pa.int64()).cast(TS),
            "last_ts": pa.array(rng.integers(0, 10**15, n), pa.int64()).cast(TS),
            "strongest_action": pa.array(
                rng.choice(["impression", "click", "like", "comment", "share"], n), pa.string()
            ),
            "surface_mask": pa.array(rng.integers(1, 64, n).astype(np.int16)),
            "shared": pa.array(rng.random(n) < 0.1),
            "first_share_ts": pa.array(rng.integers(0, 10**15, n), TS, mask=none),
            "last_share_ts": pa.array(rng.integers(0, 10**15, n), TS, mask=none),
            "tag_score": pa.array(rng.choice([1.0, 0.75, 0.9, 0.5], n).astype(np.float32)),
        },
        schema=STATE_SCHEMA,
    )


def _chunked(table: pa.Table, size: int) -> list[pa.Table]:
    return [table.slice(i, size) for i in range(0, table.num_rows, size)] or [table]


class _Counted(ThreadPoolExecutor):
    """A pool that counts the column pieces it encodes."""

    def __init__(self) -> None:
        super().__init__(max_workers=2)
        self.pieces = 0

    def submit(self, fn, /, *args, **kwargs):  # type: ignore[no-untyped-def, override]
        self.pieces += fn is column_pieces._encoded
        return super().submit(fn, *args, **kwargs)


def _both(
    tmp_path: Path, chunks: list[pa.Table], schema: pa.Schema, rows: int
) -> tuple[bytes, bytes]:
    """The file of ParquetWriter, then of column pieces on a pool of two (every row group's
    columns encoded there when there are rows, not by the fallback)."""
    plain, pieces = tmp_path / "plain.parquet", tmp_path / "pieces.parquet"
    write_parquet_chunks_atomic(iter(chunks), schema, plain, rows)
    with _Counted() as pool:
        _, written = write_parquet_chunks_atomic(iter(chunks), schema, pieces, rows, pool=pool)
    assert written == sum(c.num_rows for c in chunks)
    if written:  # an empty file is ParquetWriter's own (its self-check has no rows)
        assert pool.pieces == pq.read_metadata(pieces).num_row_groups * len(schema)
    return plain.read_bytes(), pieces.read_bytes()


@pytest.mark.parametrize(
    ("n", "chunk", "rows"),
    [
        (50_000, 7_000, 16_384),
        (50_000, 50_000, 1 << 20),
        (30_001, 999, 10_000),
        (1, 1, 16),
        (0, 1, 16),
    ],
)
def test_column_pieces_write_the_bytes_of_parquet_writer(
    tmp_path: Path, n: int, chunk: int, rows: int
) -> None:
    table = _state(n, seed=n)
    plain, pieces = _both(tmp_path, _chunked(table, chunk), STATE_SCHEMA, rows)
    assert plain == pieces
    meta = pq.read_metadata(tmp_path / "pieces.parquet")
    assert meta.num_rows == n and meta.num_row_groups == max(1, -(-n // rows))
    assert pq.read_table(tmp_path / "pieces.parquet").equals(table)


def test_pair_tables_with_many_columns_and_no_chunks_stitch_the_same(tmp_path: Path) -> None:
    state = _state(20_000, seed=5)
    pairs = pa.table(
        {
            "user_id": state["user_id"],
            "rumor_id": state["rumor_id"],
            "exposures": state["exposures"],
            "first_ts": state["first_ts"],
            "last_ts": state["last_ts"],
            "action_code": pa.array(np.arange(20_000) % 5, pa.int8()),
            **{f.name: pa.array(np.arange(20_000) % (i + 2) == 0) for i, f in enumerate(PAIR_SCHEMA)
               if f.name.startswith("on_")},
            "first_share_ts": state["first_share_ts"],
            "last_share_ts": state["last_share_ts"],
            "tag_score": state["tag_score"],
        },
        schema=PAIR_SCHEMA,
    )  # fmt: skip
    plain, pieces = _both(tmp_path, _chunked(pairs, 3_000), PAIR_SCHEMA, 8_192)
    assert plain == pieces


def test_no_chunks_at_all_is_the_same_empty_file(tmp_path: Path) -> None:
    plain, pieces = _both(tmp_path, [], STATE_SCHEMA, 1 << 20)
    assert plain == pieces


def test_a_footer_it_cannot_carry_falls_back_to_parquet_writer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(column_pieces, "_stitched_bytes", lambda *a: None)
    table = _state(10_000, seed=7)
    plain, pieces = tmp_path / "plain.parquet", tmp_path / "pieces.parquet"
    write_parquet_chunks_atomic(_chunked(table, 3_000), STATE_SCHEMA, plain, 4_096)
    with _Counted() as pool:
        write_parquet_chunks_atomic(_chunked(table, 3_000), STATE_SCHEMA, pieces, 4_096, pool=pool)
    assert not pool.pieces  # written by ParquetWriter on the caller's thread
    assert plain.read_bytes() == pieces.read_bytes()


def test_a_piece_it_cannot_stitch_is_refused() -> None:
    data = column_pieces._Options("zstd", frozenset()).encode(_state(10, seed=1).select([0]), 16)
    meta = column_pieces._footer(data)
    chunk = meta[3][2][1][0][0][2][1][0]  # row_groups[0].columns[0]
    chunk.append([6, I64, 123])  # a column index offset
    with pytest.raises(column_pieces.StitchError):
        column_pieces._moved_chunk(chunk, 10)


def test_a_failing_chunk_stream_leaves_no_file(tmp_path: Path) -> None:
    table = _state(20_000, seed=9)

    def chunks():  # type: ignore[no-untyped-def]
        yield table.slice(0, 9_000)
        yield table.slice(9_000, 9_000)
        raise RuntimeError("reduce failed")

    out = tmp_path / "x.parquet"
    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(RuntimeError, match="reduce"):
        write_parquet_chunks_atomic(chunks(), STATE_SCHEMA, out, 4_096, pool=pool)
    assert not list(tmp_path.iterdir())


def test_a_table_of_another_schema_is_refused(tmp_path: Path) -> None:
    other = pa.table({"user_id": ["u1"]})
    with ThreadPoolExecutor(max_workers=2) as pool, pytest.raises(ValueError, match="schema"):
        write_parquet_chunks_atomic([other], STATE_SCHEMA, tmp_path / "x.parquet", 16, pool=pool)
    assert not list(tmp_path.iterdir())


def test_compact_thrift_writes_back_every_footer_it_reads(tmp_path: Path) -> None:
    for i, options in enumerate([{}, {"compression": "snappy"}, {"use_dictionary": False}]):
        path = tmp_path / f"{i}.parquet"
        pq.write_table(_state(3_000, seed=i), path, row_group_size=1_000, **options)
        data = path.read_bytes()
        size = int.from_bytes(data[-8:-4], "little")
        footer = data[-8 - size : -8]
        meta, end = read_struct(footer)
        assert end == size and write_struct(meta) == footer


def test_compact_thrift_round_trips_every_kind_of_value() -> None:
    fields = [
        [1, I32, -7],
        [2, TRUE, True],
        [3, TRUE, False],
        [20, I64, 2**62],  # a long field header (delta over 15)
        [21, I16, -300],
        [22, DOUBLE, b"\x00\x00\x00\x00\x00\x00\xf0?"],
        [23, BINARY, "名字".encode()],
        [24, LIST, (I32, list(range(-10, 10)))],  # a long list header
        [25, LIST, (TRUE, [True, False, True])],
        [26, STRUCT, [[1, BINARY, b"x"], [4, LIST, (STRUCT, [[[1, I64, 5]], []])]]],
        [300, I32, 1],
    ]
    data = write_struct(fields)
    back, end = read_struct(data)
    assert back == fields and end == len(data)
    with pytest.raises(ValueError):
        read_struct(data[:-3])
    assert read_struct(pa.py_buffer(data))[0] == fields  # a buffer's bytes read unsigned
