"""The rejects dataset: log rows the join could not use, with the reason and the source file."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from offline.io.tempfiles import temp_path

REJECT_SCHEMA = pa.schema(
    [
        ("reason", pa.string()),
        ("file", pa.string()),
        ("user_id", pa.string()),
        ("item_id", pa.string()),
        ("ts", pa.string()),
        ("surface", pa.string()),
        ("action", pa.string()),
    ]
)


def _as_text(column: pa.ChunkedArray | pa.Array) -> pa.Array:
    """Any column as text, so a reject keeps what was there even when it was the wrong type."""
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    if pa.types.is_dictionary(column.type):
        column = column.dictionary_decode()
    return column.cast(pa.string())


class RejectWriter:
    """Streams rejected rows into one Parquet file, written aside and renamed on close."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows = 0
        self._tmp = temp_path(path)
        self._writer: pq.ParquetWriter | None = None

    def add(self, rows: pa.Table, reason: str, source: str) -> None:
        """Append raw log ``rows`` with why they were rejected and where they came from."""
        n = rows.num_rows
        table = pa.table(
            {
                "reason": pa.array([reason] * n, pa.string()),
                "file": pa.array([source] * n, pa.string()),
                **{c: _as_text(rows[c]) for c in REJECT_SCHEMA.names[2:]},
            },
            schema=REJECT_SCHEMA,
        )
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self._tmp, REJECT_SCHEMA, compression="zstd")
        self._writer.write_table(table)
        self.rows += n

    def close(self) -> Path | None:
        """Finish the file; returns its path, or None when nothing was rejected."""
        if self._writer is None:
            return None
        self._writer.close()
        os.replace(self._tmp, self.path)
        return self.path


TAG_REJECT_SCHEMA = pa.schema(
    [("reason", pa.string()), ("file", pa.string()), ("item_id", pa.string()),
     ("rumor_id", pa.string())]
)  # fmt: skip


def write_rejected_tags(path: Path, tags: pa.Table, reason: str, source: str) -> Path | None:
    """Tag rows that cannot be used (e.g. naming no rumor of the library), with the reason and
    the file they came from; written aside and renamed. None when there are none."""
    if not tags.num_rows:
        return None
    n = tags.num_rows
    table = pa.table(
        {
            "reason": pa.array([reason] * n, pa.string()),
            "file": pa.array([source] * n, pa.string()),
            "item_id": _as_text(tags["item_id"]),
            "rumor_id": _as_text(tags["rumor_id"]),
        },
        schema=TAG_REJECT_SCHEMA,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path
