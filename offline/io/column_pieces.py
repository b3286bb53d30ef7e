"""Parquet row groups encoded column by column on a pool's threads, into the same bytes one
pq.ParquetWriter writes.

Each column of a row group is encoded alone, as a one-column file in memory with the writer's
options, as a pool task; the caller goes on with its next rows meanwhile. The column chunks are
then copied into the file in order, and one footer is written from the pieces' footers (read
and written with offline.io.compact_thrift) with their offsets moved to where the chunks
landed. A column chunk's bytes depend only on that column's values and on how they are chunked
(the chunks are those of the same table), and one writer's footer holds the same chunk metadata
in the same order, so the file equals ParquetWriter's byte for byte. That is checked, not
assumed: before its first row group, a writer encodes the first rows both ways and compares the
files; if they differ (another pyarrow, other options), it writes through ParquetWriter itself.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from types import TracebackType

import pyarrow as pa
import pyarrow.parquet as pq

from offline.io.compact_thrift import I64, LIST, STRUCT, Field, Struct, read_struct, write_struct

MAGIC = b"PAR1"
# FileMetaData: num_rows, row_groups. RowGroup: columns, total_byte_size, num_rows, file_offset,
# total_compressed_size, ordinal. ColumnChunk: file_offset, meta_data. ColumnMetaData:
# data_page_offset, index_page_offset, dictionary_page_offset, total_compressed_size.
_NUM_ROWS, _ROW_GROUPS = 3, 4
_RG_COLUMNS, _RG_BYTES, _RG_ROWS, _RG_OFFSET, _RG_COMPRESSED, _RG_ORDINAL = 1, 2, 3, 5, 6, 7
_CC_OFFSET, _CC_META = 2, 3
_MD_COMPRESSED, _MD_DATA, _MD_INDEX, _MD_DICT = 7, 9, 10, 11
# What a stitched footer may hold; anything else (page indexes, bloom filters, encryption,
# sorting columns) has offsets or meaning this module does not move, so it refuses.
_RG_KNOWN = {_RG_COLUMNS, _RG_BYTES, _RG_ROWS, _RG_OFFSET, _RG_COMPRESSED, _RG_ORDINAL}
_CC_KNOWN = {_CC_OFFSET, _CC_META}
_MD_NO = {14, 15}  # bloom_filter_offset, bloom_filter_length
_FILE_KNOWN = {1, 2, 3, 4, 5, 6, 7}  # no encryption fields


class StitchError(ValueError):
    """A piece's footer holds something a stitched footer cannot carry over."""


@dataclass(frozen=True)
class _Options:
    compression: str
    dictionary: frozenset[str]

    def encode(self, table: pa.Table, row_group_size: int) -> pa.Buffer:
        """``table`` as one file in memory, written by ParquetWriter with these options."""
        sink = pa.BufferOutputStream()
        names = [n for n in table.schema.names if n in self.dictionary]
        with pq.ParquetWriter(
            sink, table.schema, compression=self.compression, use_dictionary=names
        ) as writer:
            writer.write_table(table, row_group_size)
        return sink.getvalue()


def _footer(data: pa.Buffer | bytes) -> Struct:
    """A Parquet file's FileMetaData."""
    view = memoryview(data).cast("B")  # a pa.Buffer's view holds signed chars
    if len(view) < 12 or view[:4] != MAGIC or view[-4:] != MAGIC:
        raise StitchError("not a Parquet file")
    size = int.from_bytes(view[-8:-4], "little")
    meta, end = read_struct(view[-8 - size : -8])
    if end != size:
        raise StitchError("footer length does not match its struct")
    return meta


def _get(fields: Struct, fid: int) -> Field | None:
    return next((f for f in fields if f[0] == fid), None)


def _value(fields: Struct, fid: int) -> object:
    found = _get(fields, fid)
    if found is None:
        raise StitchError(f"field {fid} missing")
    return found[2]


def _chunk_start(meta: Struct) -> int:
    """Where a column chunk's first page starts (its dictionary page, if any)."""
    start = _get(meta, _MD_DICT)
    return int(start[2] if start is not None else _value(meta, _MD_DATA))  # type: ignore[arg-type]


def _moved_chunk(chunk: Struct, by: int) -> Struct:
    """A ColumnChunk with its offsets moved ``by`` bytes."""
    out: Struct = []
    for fid, kind, value in chunk:
        if fid not in _CC_KNOWN:
            raise StitchError(f"ColumnChunk field {fid}")
        if fid == _CC_OFFSET and value:
            value = value + by
        elif fid == _CC_META:
            meta = []
            for mid, mkind, mvalue in value:
                if mid in _MD_NO:
                    raise StitchError(f"ColumnMetaData field {mid}")
                if mid in (_MD_DATA, _MD_INDEX, _MD_DICT):
                    mvalue = mvalue + by
                meta.append([mid, mkind, mvalue])
            value = meta
        out.append([fid, kind, value])
    return out


class _Piece:
    """One encoded column file: its column chunks' byte ranges and metadata per row group."""

    def __init__(self, data: pa.Buffer) -> None:
        meta = _footer(data)
        if any(f[0] not in _FILE_KNOWN for f in meta):
            raise StitchError("FileMetaData field")
        self.data = data
        self.groups: list[Struct] = list(_value(meta, _ROW_GROUPS)[1])  # type: ignore[index]
        for group in self.groups:
            if any(f[0] not in _RG_KNOWN for f in group):
                raise StitchError("RowGroup field")


class _Group:
    """A row group being encoded: one future per column piece."""

    def __init__(self, pieces: list[Future[_Piece]]) -> None:
        self.pieces = pieces


class ColumnPieceWriter:
    """pq.ParquetWriter's ``write_table`` / ``close`` over ``sink``, each row group's columns
    encoded as tasks of ``pool`` while the caller prepares the next; at most ``ahead`` row
    groups are encoding when write_table returns (it waits for older ones). The same file."""

    def __init__(
        self,
        sink: pa.NativeFile,
        schema: pa.Schema,
        pool: Executor,
        *,
        compression: str,
        use_dictionary: Sequence[str],
        ahead: int = 1,
    ) -> None:
        self.sink = sink
        self.schema = schema
        self.pool = pool
        self.options = _Options(compression, frozenset(use_dictionary))
        self.ahead = max(0, ahead)
        self._pending: deque[_Group] = deque()
        self._plain: pq.ParquetWriter | None = None
        self._template: Struct | None = None
        self._groups: list[Struct] = []
        self._position = 0
        self._checked = False
        self._closed = False

    def write_table(self, table: pa.Table, row_group_size: int) -> None:
        """Write ``table`` as ParquetWriter.write_table(table, row_group_size) would."""
        if not table.schema.equals(self.schema, check_metadata=False):
            raise ValueError(f"table schema does not match the writer's:\n{table.schema}")
        if not self._checked:
            self._start(table)
        if self._plain is not None:
            self._plain.write_table(table, row_group_size)
            return
        columns = [table.select([i]) for i in range(table.num_columns)]
        futures = [self.pool.submit(_encoded, self.options, c, row_group_size) for c in columns]
        self._pending.append(_Group(futures))
        while len(self._pending) > self.ahead:
            self._copy(self._pending.popleft())

    def _start(self, first: pa.Table) -> None:
        """The self-check on the first rows: stitch if it gives ParquetWriter's bytes."""
        self._checked = True
        sample = pa.Table.from_arrays(first.slice(0, 2).columns, schema=self.schema)
        direct = self.options.encode(sample, 2)
        template = _template(direct)
        stitched = None if template is None else _stitched_bytes(template, sample, self.options)
        if template is not None and stitched == direct.to_pybytes():
            self._template = template
            self.sink.write(MAGIC)
            self._position = len(MAGIC)
            return
        self._plain = pq.ParquetWriter(
            self.sink, self.schema, compression=self.options.compression,
            use_dictionary=[n for n in self.schema.names if n in self.options.dictionary],
        )  # fmt: skip

    def _copy(self, group: _Group) -> None:
        """A row group's pieces written in column order (waiting for each) and recorded."""
        pieces = [p.result() for p in group.pieces]
        self._position = _append(self.sink, self._position, pieces, self._groups)

    def close(self) -> None:
        """Wait for every row group, write them and the footer."""
        if self._closed:
            return
        self._closed = True
        if not self._checked:
            self._start(self.schema.empty_table())
        if self._plain is not None:
            self._plain.close()
            return
        while self._pending:
            self._copy(self._pending.popleft())
        assert self._template is not None
        rows = sum(int(_value(g, _RG_ROWS)) for g in self._groups)  # type: ignore[call-overload]
        self.sink.write(_footer_bytes(self._template, self._groups, rows))

    def abort(self) -> None:
        """Drop what is still queued (a failed write); the sink is the caller's to remove."""
        self._closed = True
        for group in self._pending:
            for piece in group.pieces:
                piece.cancel()
        self._pending.clear()
        if self._plain is not None:
            self._plain.close()

    def __enter__(self) -> ColumnPieceWriter:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if kind is None:
            self.close()
        else:
            self.abort()


def _encoded(options: _Options, column: pa.Table, row_group_size: int) -> _Piece:
    return _Piece(options.encode(column, row_group_size))


def _template(direct: pa.Buffer) -> Struct | None:
    """A FileMetaData to stitch into (num_rows and row_groups replaced), or None when its fields
    are not all known."""
    try:
        meta = _footer(direct)
    except ValueError:
        return None
    if any(f[0] not in _FILE_KNOWN for f in meta) or _get(meta, _ROW_GROUPS) is None:
        return None
    return meta


def _append(sink: pa.NativeFile, position: int, pieces: list[_Piece], groups: list[Struct]) -> int:
    """The row groups of ``pieces`` (the same rows, some columns each) written at
    ``position``, their RowGroup structs appended to ``groups``; the position after."""
    counts = {len(p.groups) for p in pieces}
    if len(counts) != 1:
        raise StitchError("pieces with different row group counts")
    for r in range(counts.pop()):
        columns: list[Struct] = []
        total = compressed = 0
        offset: int | None = None
        for piece in pieces:
            group = piece.groups[r]
            for chunk in _value(group, _RG_COLUMNS)[1]:  # type: ignore[index]
                meta = _value(chunk, _CC_META)
                start = _chunk_start(meta)  # type: ignore[arg-type]
                size = int(_value(meta, _MD_COMPRESSED))  # type: ignore[call-overload]
                if offset is None:  # the row group starts where its first chunk lands
                    offset = int(_value(group, _RG_OFFSET)) + position - start  # type: ignore[call-overload]
                sink.write(memoryview(piece.data)[start : start + size])
                columns.append(_moved_chunk(chunk, position - start))
                position += size
            total += int(_value(group, _RG_BYTES))  # type: ignore[call-overload]
            compressed += int(_value(group, _RG_COMPRESSED))  # type: ignore[call-overload]
        first = pieces[0].groups[r]
        fields: Struct = [
            [_RG_COLUMNS, LIST, (STRUCT, columns)],
            [_RG_BYTES, I64, total],
            [_RG_ROWS, I64, _value(first, _RG_ROWS)],
            [_RG_OFFSET, I64, position if offset is None else offset],
            [_RG_COMPRESSED, I64, compressed],
        ]
        ordinal = _get(first, _RG_ORDINAL)
        if ordinal is not None:
            fields.append([_RG_ORDINAL, ordinal[1], len(groups)])
        groups.append(fields)
    return position


def _footer_bytes(template: Struct, groups: list[Struct], rows: int) -> bytes:
    """The file's footer: the template's FileMetaData with these row groups, its length and
    the closing magic."""
    meta: Struct = []
    for fid, kind, value in template:
        if fid == _NUM_ROWS:
            value = rows
        elif fid == _ROW_GROUPS:
            value = (STRUCT, groups)
        meta.append([fid, kind, value])
    data = write_struct(meta)
    return data + len(data).to_bytes(4, "little") + MAGIC


def _stitched_bytes(template: Struct, table: pa.Table, options: _Options) -> bytes | None:
    """``table`` encoded column by column and stitched (on this thread), or None when a piece
    holds what a stitched footer cannot carry."""
    sink = pa.BufferOutputStream()
    sink.write(MAGIC)
    groups: list[Struct] = []
    try:
        pieces = [_encoded(options, table.select([i]), 2) for i in range(table.num_columns)]
        _append(sink, len(MAGIC), pieces, groups)
    except StitchError:
        return None
    rows = sum(int(_value(g, _RG_ROWS)) for g in groups)  # type: ignore[call-overload]
    sink.write(_footer_bytes(template, groups, rows))
    return sink.getvalue().to_pybytes()
