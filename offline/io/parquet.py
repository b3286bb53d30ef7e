"""Parquet output that readers never see half-written."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from offline.io.tempfiles import temp_path


def write_parquet_atomic(table: pa.Table, path: Path) -> Path:
    """Write ``table`` beside ``path`` and rename it into place, so readers never see half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_path(path)
    pq.write_table(table, tmp, compression="zstd")
    os.replace(tmp, path)
    return path
