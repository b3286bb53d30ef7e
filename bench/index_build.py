"""What the service's library index costs at the snapshot's size: the matcher built over the
current snapshot's matcher library (as ``service.library`` builds it before adopting a
snapshot), timed, with the memory it adds, in a child process of its own so the resident set
is the build's alone.

    .venv/bin/python bench/index_build.py REDIS_URL    # prints one JSON line
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import current_rss_mb, emit, peak_rss_mb, run_child, timed
from feature_store.connection import RedisSettings
from feature_store.reader import SnapshotReader
from feature_store.transport.factory import open_transport
from matching import Matcher, matcher_library

MB = 1 << 20


async def _catalog(url: str) -> Any:
    """The current snapshot's catalog, as the service loads it."""
    transport = open_transport(RedisSettings(url=url))
    try:
        reader = SnapshotReader(transport)
        version = await reader.current_version()
        if version is None:
            raise SystemExit("no snapshot in Redis")
        return await reader.catalog(version)
    finally:
        await transport.aclose()


def measure(url: str) -> dict[str, Any]:
    """Build the index once over the current snapshot; seconds and megabytes."""
    catalog = asyncio.run(_catalog(url))
    library = matcher_library(catalog.rumors.values())
    before = current_rss_mb()
    with timed() as t:
        matcher = Matcher().build(library)
    arrays = sum(
        v.nbytes for v in vars(matcher.index).values() if isinstance(v, np.ndarray)
    )  # fmt: skip
    return {
        "rumors": len(catalog.rumors),
        "library_entries": len(library),
        "build_s": round(t.seconds, 2),
        "index_arrays_mb": round(arrays / MB, 1),
        "rss_growth_mb": round(current_rss_mb() - before, 1),
        "peak_rss_mb": peak_rss_mb(),
    }


def index_build(url: str) -> dict[str, Any]:
    """``measure`` in a child process (its own resident set), with the child's peak RSS."""
    child = run_child([sys.executable, str(Path(__file__).resolve()), url])
    return {**child.report, "child_maxrss_mb": child.maxrss_mb}


if __name__ == "__main__":
    emit(measure(sys.argv[1]))
