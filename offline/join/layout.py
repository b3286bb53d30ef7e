"""Which id columns of a log file the local engine reads as dictionaries, from its footer.

Writers with default settings (pyarrow, Spark's parquet-mr, Hive) dictionary-encode the id
columns. Read as an Arrow dictionary, such a column costs one small index per row instead of a
copied string, and the tagged-item test runs once per dictionary entry (see
offline.join.screen). But a writer whose dictionary outgrows its page limit (1 MB by default)
falls back to plain pages for the rest of the column chunk, and Arrow can only read those as a
dictionary by hashing every value, several times slower than copying them. The footer does not
list page encodings, so a chunk counts as dictionary-encoded when it has a dictionary page and
its uncompressed size leaves at most ``_INDEX_BYTES`` per value beyond a full dictionary page:
plain pages cost 4 bytes of length plus the id per value, dictionary indices at most 4.
"""

from __future__ import annotations

import pyarrow.parquet as pq

ID_COLUMNS = ("user_id", "item_id")
# Beyond the dictionary page, a dictionary-encoded chunk holds bit-packed indices: at most 4
# bytes a value (fewer than 2**32 entries), usually 2-3; a plain value takes 4 + its length.
_INDEX_BYTES = 4
# The largest dictionary page counted as such: writers' default limit is 1 MB; a margin for
# the page header and a last entry past the limit.
_DICTIONARY_PAGE_BYTES = (1 << 20) + (64 << 10)


def dictionary_ids(path: str, row_groups: list[int] | None = None) -> tuple[str, ...]:
    """The id columns every (listed) row group of ``path`` stores dictionary-encoded."""
    try:
        meta = pq.read_metadata(path)
    except (OSError, ValueError):  # the read that follows names the file and the error
        return ()
    names = [meta.schema.column(i).path for i in range(meta.num_columns)]
    groups = range(meta.num_row_groups) if row_groups is None else row_groups
    if not groups:
        return ()
    out = []
    for name in ID_COLUMNS:
        if name not in names:
            continue
        col = names.index(name)
        if all(_is_dictionary(meta.row_group(g).column(col)) for g in groups):
            out.append(name)
    return tuple(out)


def _is_dictionary(chunk: pq.ColumnChunkMetaData) -> bool:
    """Whether a column chunk's data pages look dictionary-encoded throughout (see above)."""
    if not chunk.has_dictionary_page:
        return False
    budget = _DICTIONARY_PAGE_BYTES + _INDEX_BYTES * chunk.num_values
    return chunk.total_uncompressed_size <= budget
