"""The selective decoder: screen one Parquet row group decoding only what the join needs.

item_id is decoded first: a dictionary's entries are tested once each against the TagIndex and
the rows' indices mapped to a hit list in C; plain pages go through the prefilter's bucket test
and the few candidates are looked up exactly, in C too. user_id, ts, action and surface are then
decoded at the hit rows only (PLAIN byte arrays by walking their length prefixes, dictionary
pages by decoding the indices), while every row is still validated: nulls from the definition
levels, empty ids from the length walk, dictionaries and vocabularies once per entry. A row
group with a bad row, or with anything the decoder does not read, is screened by pyarrow's path
(offline.join.screen) instead, so answers, counts and reject rows are the same either way.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from domain.vocab import ACTIONS, SURFACES
from offline.join import pages
from offline.join.contracts import TS_TYPE
from offline.join.footers import footer
from offline.join.idfilter import IdFilter
from offline.join.pages import BadRows, Chunk, Unsupported
from offline.join.tag_index import TagIndex

_COLUMNS = ("user_id", "item_id", "ts", "action", "surface")
_US_PER = {"milliseconds": 1000, "microseconds": 1}


def available() -> bool:
    """Whether row groups are decoded selectively (the C extension is built and enabled)."""
    return pages.available()


def screen_groups(
    path: str, groups: list[int] | None, index: TagIndex, before: datetime | None
) -> tuple[list[tuple[int, pa.Table]], list[int] | None]:
    """Screen the row groups of ``path`` (all when ``groups`` is None) that this decoder reads:
    (rows in the group, its hit rows as screen.HIT_SCHEMA) for each, and the groups left for
    pyarrow's path (None: the whole file, e.g. when its footer cannot be read)."""
    try:
        meta = footer(path)
    except (OSError, ValueError):
        return [], groups
    wanted = list(range(meta.num_row_groups)) if groups is None else groups
    columns = {meta.schema.column(i).path: i for i in range(meta.num_columns)}
    if any(name not in columns for name in _COLUMNS):
        return [], groups
    done: list[tuple[int, pa.Table]] = []
    rest: list[int] = []
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:  # pyarrow's path names the file and the error
        return [], groups
    try:
        for group in wanted:
            try:
                hits = screen_group(fd, meta, group, columns, index, before)
                done.append((meta.row_group(group).num_rows, hits))
            except (Unsupported, BadRows, ValueError, OSError, pa.ArrowException):
                rest.append(group)
    finally:
        os.close(fd)
    return done, rest


def screen_group(
    fd: int,
    meta: pq.FileMetaData,
    group: int,
    columns: dict[str, int],
    index: TagIndex,
    before: datetime | None,
) -> pa.Table:
    """The hit rows (HIT_SCHEMA) of one row group whose every row is valid; raises BadRows or
    Unsupported otherwise."""
    rg = meta.row_group(group)

    def chunk(name: str, physical: str) -> Chunk:
        info = meta.schema.column(columns[name])
        if info.physical_type != physical:
            raise Unsupported(f"{name}: {info.physical_type}")
        return pages.read_chunk(fd, rg, columns[name], info)

    ts_info = meta.schema.column(columns["ts"])
    int96 = ts_info.physical_type == "INT96"  # Spark's default: read by Arrow as ns
    ts_scale = 1 if int96 else _ts_scale(ts_info)
    rows, pos = _item_hits(chunk("item_id", "BYTE_ARRAY"), index)
    users = _strings_at(chunk("user_id", "BYTE_ARRAY"), rows)
    if int96:
        ts = _fixed_at(chunk("ts", "INT96"), rows, _int96_us, 12)
    else:
        ts = _fixed_at(chunk("ts", "INT64"), rows, _int64s, 8) * ts_scale
    action = _codes_at(chunk("action", "BYTE_ARRAY"), rows, ACTIONS)
    surface = _codes_at(chunk("surface", "BYTE_ARRAY"), rows, SURFACES)
    if before is not None:
        keep = ts < pa.scalar(before, TS_TYPE).value
        if not keep.all():
            pick = pa.array(np.flatnonzero(keep))
            users, pos, ts = users.take(pick), pos[keep], ts[keep]
            action, surface = action[keep], surface[keep]
    items = index.items.take(pa.array(pos))
    if items.type != pa.string():
        items = items.cast(pa.string())
    return pa.table(
        [users, items, pa.array(ts, TS_TYPE), pa.array(action, pa.int8()),
         pa.array(surface, pa.int8()), pa.array(pos, pa.int32())],
        names=["user_id", "item_id", "ts", "action_code", "surface_code", "tag_pos"],
    )  # fmt: skip


def _ts_scale(info: pq.ColumnSchema) -> int:
    """Microseconds per stored unit of an INT64 timestamp column (ms or us; else Unsupported)."""
    try:
        logical = json.loads(info.logical_type.to_json())
    except (ValueError, AttributeError):
        raise Unsupported("ts: no logical type") from None
    if logical.get("Type") != "Timestamp" or logical.get("timeUnit") not in _US_PER:
        raise Unsupported(f"ts: {logical}")
    return _US_PER[logical["timeUnit"]]


def _plain_strings(values: memoryview, n: int, rows: np.ndarray | None) -> tuple[pa.Array, int]:
    """The PLAIN byte array values at ``rows`` (all when None) as a string array, and how many
    of the page's n values are empty."""
    offsets, data, empties = pages._pqdecode.plain_take(values, n, rows)
    k = n if rows is None else len(rows)
    arr = pa.Array.from_buffers(pa.string(), k, [None, pa.py_buffer(offsets), pa.py_buffer(data)])
    return arr, empties


def _dictionary(chunk: Chunk) -> pa.Array | None:
    """A string chunk's dictionary entries; BadRows when one is empty (a row may use it)."""
    if chunk.dictionary is None:
        return None
    entries, empties = _plain_strings(chunk.dictionary, chunk.dictionary_size, None)
    if empties:
        raise BadRows("empty dictionary entry")
    return entries


def _item_hits(chunk: Chunk, index: TagIndex) -> tuple[np.ndarray, np.ndarray]:
    """Rows (int64, ascending) of the row group on tagged items and their TagIndex positions
    (int32); BadRows when an item id is empty. Ids are looked up exactly in C (_ItemTable): a
    dictionary's entries once each, PLAIN pages row by row."""
    table = _ItemTable.of(index)
    entry = None
    if chunk.dictionary is not None:
        found, at, empties = table.hits(chunk.dictionary, chunk.dictionary_size)
        if empties:
            raise BadRows("empty dictionary entry")
        entry = np.full(chunk.dictionary_size, -1, np.int32)
        entry[found] = at
    rows: list[np.ndarray] = []
    pos: list[np.ndarray] = []
    for page in chunk.pages:
        if page.dictionary:
            out_rows = np.empty(page.n, np.int64)
            out_pos = np.empty(page.n, np.int32)
            k = pages._pqdecode.dict_hits(page.values, page.n, entry, page.first, out_rows, out_pos)
            rows.append(out_rows[:k])
            pos.append(out_pos[:k])
            continue
        found, at, empties = table.hits(page.values, page.n, page.first)
        if empties:
            raise BadRows("empty item_id")
        rows.append(found)
        pos.append(at)
    if not rows:
        return np.zeros(0, np.int64), np.zeros(0, np.int32)
    return np.concatenate(rows), np.concatenate(pos)


class _ItemTable:
    """The tagged item ids of a TagIndex in an open-addressing table for ``plain_hits``, behind
    the index's prefilter (built once per index: its buffers and slots)."""

    _built: dict[int, tuple[TagIndex, _ItemTable]] = {}

    def __init__(self, items: pa.Array, prefilter: IdFilter) -> None:
        self.bloom, self.shift = prefilter.table, int(prefilter.shift)
        items = items.cast(pa.string()) if items.type != pa.string() else items
        n = len(items)
        _, offsets, data = items.buffers()
        self.offsets = np.frombuffer(offsets, np.int32, count=n + 1, offset=items.offset * 4)
        self.data = data if data is not None else b""
        self.slots = np.full(1 << max(4, (2 * n).bit_length()), -1, np.int32)
        self.items = items  # keeps the buffers alive
        pages._pqdecode.item_table(self.offsets, self.data, n, self.slots)

    @classmethod
    def of(cls, index: TagIndex) -> _ItemTable:
        """The table of ``index``, built on first use (one index per scan, so one entry)."""
        known = cls._built.get(id(index))
        if known is None or known[0] is not index:
            known = (index, cls(index.items, index.prefilter))
            cls._built = {id(index): known}
        return known[1]

    def hits(self, values: memoryview, n: int, base: int = 0) -> tuple[np.ndarray, np.ndarray, int]:
        """Rows (+ ``base``) of a PLAIN byte array page's n values that are tagged items,
        their positions, and how many values are empty."""
        rows, pos = np.empty(n, np.int64), np.empty(n, np.int32)
        k, empties = pages._pqdecode.plain_hits(
            values, n, self.bloom, self.shift, self.offsets, self.data, self.slots, base, rows, pos
        )
        return rows[:k], pos[:k], empties


def _split(chunk: Chunk, rows: np.ndarray) -> list[tuple[pages.Page, np.ndarray]]:
    """Each data page with the (page-relative, ascending) hit rows that fall in it."""
    starts = [p.first for p in chunk.pages]
    bounds = np.searchsorted(rows, [*starts, starts[-1] + chunk.pages[-1].n] if starts else [0])
    return [
        (page, np.ascontiguousarray(rows[bounds[i] : bounds[i + 1]] - page.first))
        for i, page in enumerate(chunk.pages)
    ]


def _indices(page: pages.Page, entries: int, rel: np.ndarray) -> np.ndarray:
    """The dictionary indices at the page-relative rows ``rel`` (all indices checked)."""
    out = np.empty(len(rel), np.int32)
    pages._pqdecode.dict_take(page.values, page.n, entries, rel, out)
    return out


def _strings_at(chunk: Chunk, rows: np.ndarray) -> pa.Array:
    """A string column's values at ``rows``; BadRows when any value of the chunk is empty. Of
    a dictionary, only the entries the rows use are copied (all are walked and checked)."""
    parts: list[pa.Array | np.ndarray] = []
    for page, rel in _split(chunk, rows):
        if page.dictionary:
            parts.append(_indices(page, chunk.dictionary_size, rel))
            continue
        values, empties = _plain_strings(page.values, page.n, rel)
        if empties:
            raise BadRows("empty string")
        parts.append(values)
    if chunk.dictionary is not None:
        used = [p for p in parts if isinstance(p, np.ndarray)]
        wanted, inverse = np.unique(np.concatenate(used) if used else [], return_inverse=True)
        entries, empties = _plain_strings(
            chunk.dictionary, chunk.dictionary_size, wanted.astype(np.int64)
        )
        if empties:
            raise BadRows("empty dictionary entry")
        at = 0
        for i, part in enumerate(parts):
            if isinstance(part, np.ndarray):
                parts[i] = entries.take(pa.array(inverse[at : at + len(part)]))
                at += len(part)
    return pa.concat_arrays(parts) if parts else pa.array([], pa.string())


def _codes_at(chunk: Chunk, rows: np.ndarray, vocabulary: tuple[str, ...]) -> np.ndarray:
    """Codes (index in ``vocabulary``) of a column's values at ``rows``; BadRows when a value
    of the chunk (or an entry of its dictionary) is not in the vocabulary."""
    vocab = pa.array(vocabulary)
    entries = _dictionary(chunk)
    entry_codes = None
    if entries is not None:
        codes = pc.index_in(entries, value_set=vocab)
        if codes.null_count:
            raise BadRows("unknown vocabulary entry")
        entry_codes = codes.to_numpy().astype(np.int8)
    parts = []
    for page, rel in _split(chunk, rows):
        if page.dictionary:
            parts.append(entry_codes[_indices(page, len(entries), rel)])
            continue
        values, _ = _plain_strings(page.values, page.n, None)
        codes = pc.index_in(values, value_set=vocab)
        if codes.null_count:
            raise BadRows("unknown value")
        parts.append(codes.to_numpy().astype(np.int8)[rel])
    return np.concatenate(parts) if parts else np.zeros(0, np.int8)


def _fixed_at(
    chunk: Chunk, rows: np.ndarray, decode: Callable[[np.ndarray], np.ndarray], width: int
) -> np.ndarray:
    """A fixed-width column's values at ``rows`` (dictionary or PLAIN pages of ``width``-byte
    values), turned into int64 by ``decode`` (raw values of the taken rows only)."""
    entries = None
    if chunk.dictionary is not None:
        entries = _raw(chunk.dictionary, chunk.dictionary_size, width)
    parts = []
    for page, rel in _split(chunk, rows):
        if page.dictionary:
            parts.append(entries[_indices(page, len(entries), rel)])
        else:
            parts.append(_raw(page.values, page.n, width)[rel])
    return decode(np.concatenate(parts)) if parts else np.zeros(0, np.int64)


def _raw(values: memoryview, n: int, width: int) -> np.ndarray:
    """n PLAIN values of ``width`` bytes, in place (int64, or INT96 records)."""
    if len(values) < width * n:
        raise Unsupported("page ends early")
    return np.frombuffer(values, dtype="<i8" if width == 8 else _INT96, count=n)


def _int64s(raw: np.ndarray) -> np.ndarray:
    """INT64 values as they are."""
    return raw.astype(np.int64, copy=False)


_INT96 = np.dtype([("nanos", "<i8"), ("julian_day", "<i4")])
_UNIX_JULIAN_DAY = 2_440_588
_DAY_US = 86_400_000_000


def _int96_us(raw: np.ndarray) -> np.ndarray:
    """INT96 timestamps (nanoseconds of the day, Julian day) as UTC microseconds; Unsupported
    when one has nanoseconds below a microsecond (Arrow's cast to microseconds would fail)."""
    nanos = raw["nanos"]
    if len(raw) and (np.any(nanos % 1000) or nanos.min() < 0):
        raise Unsupported("int96 below a microsecond")
    days = raw["julian_day"].astype(np.int64) - _UNIX_JULIAN_DAY
    return days * _DAY_US + nanos // 1000
