"""One column chunk of a Parquet row group as its decompressed pages, for the selective decoder
(offline.join.selective).

The chunk's bytes are read at the offsets the footer gives, page headers are parsed in C
(``_pqdecode.page_headers``, Thrift compact protocol) and each page is decompressed with
``pyarrow.Codec``. Data page v1 and v2 are read, with definition levels for optional columns.
What this module does not read raises ``Unsupported``; a null in the chunk raises ``BadRows``:
both send the row group back to pyarrow's reader, which gives the same answer and, for bad
rows, the same reject rows.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq

try:
    from offline.join import _pqdecode
except ImportError:  # built without a C compiler: pyarrow decodes every row group
    _pqdecode = None

PLAIN, PLAIN_DICTIONARY, RLE, RLE_DICTIONARY = 0, 2, 3, 8
DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = 0, 1, 2, 3
# Codec names as pyarrow's footer spells them -> pyarrow.Codec names. pyarrow calls Parquet's
# LZ4_RAW "LZ4"; Parquet's old LZ4 (Hadoop's framing, "LZ4_HADOOP") is not read: it falls back.
CODECS = {"SNAPPY": "snappy", "ZSTD": "zstd", "GZIP": "gzip", "BROTLI": "brotli"}
CODECS |= {"LZ4": "lz4_raw", "LZ4_RAW": "lz4_raw"}


class Unsupported(Exception):
    """A chunk or page the selective decoder does not read (pyarrow reads it instead)."""


class BadRows(Exception):
    """The chunk has a null (or another row validation rejects): pyarrow's path writes the
    reject rows exactly as before."""


@dataclass(frozen=True)
class Page:
    """One data page's values (levels stripped, no nulls): ``n`` rows from ``first``."""

    first: int
    n: int
    dictionary: bool  # values are RLE_DICTIONARY indices (else PLAIN)
    values: memoryview


@dataclass(frozen=True)
class Chunk:
    """A column chunk's dictionary page (PLAIN values, or None) and its data pages."""

    dictionary: memoryview | None
    dictionary_size: int
    pages: list[Page]
    physical: str


def available() -> bool:
    """Whether the C page walks are built and not turned off (DEBUNK_SELECTIVE_DECODE=0)."""
    return _pqdecode is not None and os.environ.get("DEBUNK_SELECTIVE_DECODE", "1") != "0"


def read_chunk(fd: int, meta: pq.RowGroupMetaData, column: int, info: pq.ColumnSchema) -> Chunk:
    """The decompressed pages of one column chunk of a row group (file descriptor ``fd``;
    ``info``: the column's Parquet schema, for its levels)."""
    col = meta.column(column)
    schema = col.path_in_schema
    if info.max_repetition_level != 0 or info.max_definition_level > 1 or "." in schema:
        raise Unsupported(f"{schema}: nested column")
    codec = _codec(col.compression)
    start = col.data_page_offset
    if col.has_dictionary_page and col.dictionary_page_offset:
        start = min(start, col.dictionary_page_offset)
    chunk = os.pread(fd, col.total_compressed_size, start)
    if len(chunk) != col.total_compressed_size:
        raise Unsupported(f"{schema}: chunk ends early")
    try:
        headers = _pqdecode.page_headers(chunk)
    except ValueError as e:
        raise Unsupported(f"{schema}: {e}") from None
    view = memoryview(chunk)
    dictionary, size, pages, row = None, 0, [], 0
    optional = info.max_definition_level == 1
    for ptype, at, csize, usize, n, enc, nulls, dlen, rlen, denc, compressed in headers:
        raw = view[at : at + csize]
        if ptype == DICTIONARY_PAGE:
            if enc not in (PLAIN, PLAIN_DICTIONARY) or dictionary is not None or pages:
                raise Unsupported(f"{schema}: dictionary page encoding {enc}")
            dictionary, size = _inflate(codec, raw, usize), n
        elif ptype == DATA_PAGE:
            body = _inflate(codec, raw, usize)
            if optional:
                body = _strip_v1_levels(body, n, denc)
            pages.append(_page(row, n, enc, body, dictionary is not None, schema))
            row += n
        elif ptype == DATA_PAGE_V2:
            if rlen != 0 or nulls < 0 or dlen < 0:
                raise Unsupported(f"{schema}: v2 page with repetition levels")
            if nulls:
                raise BadRows(schema)
            levels = dlen + rlen
            body = raw[levels:]
            if compressed and codec is not None:
                body = _inflate(codec, body, usize - levels)
            pages.append(_page(row, n, enc, body, dictionary is not None, schema))
            row += n
        elif ptype != INDEX_PAGE:
            raise Unsupported(f"{schema}: page type {ptype}")
    if row != meta.num_rows:
        raise Unsupported(f"{schema}: pages hold {row} rows, the row group {meta.num_rows}")
    return Chunk(dictionary, size, pages, col.physical_type)


def _codec(name: str) -> pa.Codec | None:
    """pyarrow's codec for a footer's compression name; None when uncompressed."""
    if name == "UNCOMPRESSED":
        return None
    known = CODECS.get(name)
    if known is None or not pa.Codec.is_available(known):
        raise Unsupported(f"codec {name}")
    return pa.Codec(known)


def _inflate(codec: pa.Codec | None, raw: memoryview, size: int) -> memoryview:
    """A page's bytes decompressed to ``size`` bytes (as they are when uncompressed)."""
    if codec is None:
        return raw
    try:
        out = codec.decompress(raw, decompressed_size=size)
    except (pa.ArrowException, OSError) as e:
        raise Unsupported(f"decompress: {e}") from None
    return memoryview(out)


def _strip_v1_levels(body: memoryview, n: int, encoding: int) -> memoryview:
    """A v1 page's values after its definition levels (4-byte length, RLE hybrid at 1 bit);
    BadRows when any of the ``n`` rows is null."""
    if encoding != RLE or len(body) < 4:
        raise Unsupported(f"definition level encoding {encoding}")
    (length,) = struct.unpack_from("<i", body, 0)
    if length < 0 or 4 + length > len(body):
        raise Unsupported("definition levels run past the page")
    try:
        present = _pqdecode.level_count(body[4 : 4 + length], 1, n, 1)
    except ValueError as e:
        raise Unsupported(str(e)) from None
    if present != n:
        raise BadRows("null")
    return body[4 + length :]


def _page(first: int, n: int, encoding: int, body: memoryview, has_dict: bool, name: str) -> Page:
    """A data page of PLAIN or dictionary-index values."""
    if encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY):
        if not has_dict:
            raise Unsupported(f"{name}: dictionary indices without a dictionary page")
        return Page(first, n, True, body)
    if encoding != PLAIN:
        raise Unsupported(f"{name}: encoding {encoding}")
    return Page(first, n, False, body)
