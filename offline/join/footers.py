"""Parquet footers read once per file version and shared by the row-group tasks of a scan.

The local join screens each row group as a task of its own, and each task needs the file's
footer: with 128Ki-row groups a day's file was parsed once per group (~0.6 ms a footer on the
sweep's files). A footer is kept per (path, inode, size, mtime), so a file rewritten in place is
read again; the cache holds the last few files only.
"""

from __future__ import annotations

import os

import pyarrow.parquet as pq

_KEEP = 64
_cache: dict[tuple[str, int, int, int], pq.FileMetaData] = {}


def footer(path: str) -> pq.FileMetaData:
    """The footer of ``path`` (OSError or ValueError as pyarrow raises them when unreadable)."""
    st = os.stat(path)
    key = (str(path), st.st_ino, st.st_size, st.st_mtime_ns)
    meta = _cache.get(key)
    if meta is None:
        meta = pq.read_metadata(path)
        if len(_cache) >= _KEEP:
            _cache.clear()
        _cache[key] = meta
    return meta
