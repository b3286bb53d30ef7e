"""Parquet output that readers never see half-written."""

from __future__ import annotations

import os
from collections.abc import Iterable
from concurrent.futures import Executor
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from offline.io.column_pieces import ColumnPieceWriter
from offline.io.tempfiles import temp_path

# pq.write_table's default row group length (pyarrow >= 15).
ROW_GROUP_ROWS = 1 << 20
# Columns written without a dictionary: nearly one value a row, so a dictionary only costs the
# hashing of every value before the writer falls back to plain pages (decision 0070).
_PLAIN_NAMES = frozenset({"user_id"})


def dictionary_columns(schema: pa.Schema) -> list[str]:
    """The columns worth a dictionary: all but user ids and timestamps (the exposure state's
    2M rows write ~15% faster and ~6% smaller so)."""
    return [
        f.name for f in schema if f.name not in _PLAIN_NAMES and not pa.types.is_timestamp(f.type)
    ]


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write ``table`` beside ``path`` and rename it into place, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    pq.write_table(table, tmp, compression="zstd", use_dictionary=dictionary_columns(table.schema))
    os.replace(tmp, path)
    return path


def write_parquet_chunks_atomic(
    chunks: Iterable[pa.Table],
    schema: pa.Schema,
    path: Path,
    row_group_rows: int = ROW_GROUP_ROWS,
    pool: Executor | None = None,
) -> tuple[Path, int]:
    """Write the tables of ``chunks`` (in order) as one file, aside then renamed like
    write_parquet_atomic, holding one row group at a time; (path, rows written). Row groups are
    cut at every ``row_group_rows`` rows, as pq.write_table cuts one table, so the file equals
    write_parquet_atomic's of the chunks concatenated. With ``pool``, each row group's columns
    are encoded as its tasks while the next chunks are read (offline.io.column_pieces: the same
    bytes; one more row group held meanwhile). A failure removes the temp file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    rows = 0
    try:
        with _writer(tmp, schema, pool) as writer:
            buffered: list[pa.Table] = []
            held = 0
            for chunk in chunks:
                buffered.append(chunk)
                held += chunk.num_rows
                while held >= row_group_rows:
                    table = pa.concat_tables(buffered)
                    writer.write_table(table.slice(0, row_group_rows), row_group_rows)
                    buffered, held = [table.slice(row_group_rows)], held - row_group_rows
                    rows += row_group_rows
            if held or not rows:
                writer.write_table(
                    pa.concat_tables(buffered) if buffered else schema.empty_table(),
                    row_group_rows,
                )
                rows += held
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path, rows


def _writer(tmp: Path, schema: pa.Schema, pool: Executor | None) -> _Writer:
    """ParquetWriter, or its column-piece twin on ``pool``: the options every output uses."""
    if pool is None:
        return pq.ParquetWriter(
            tmp, schema, compression="zstd", use_dictionary=dictionary_columns(schema)
        )
    return _PieceFile(tmp, schema, pool)


class _PieceFile(ColumnPieceWriter):
    """A ColumnPieceWriter that owns its file."""

    def __init__(self, path: Path, schema: pa.Schema, pool: Executor) -> None:
        super().__init__(
            pa.OSFile(str(path), "wb"), schema, pool, compression="zstd",
            use_dictionary=dictionary_columns(schema),
        )  # fmt: skip

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.sink.close()

    def abort(self) -> None:
        try:
            super().abort()
        finally:
            self.sink.close()


_Writer = pq.ParquetWriter | _PieceFile
