"""Writing the world's files safely and in bounded memory: each file written aside and moved
into place, Parquet parts encoded on a worker thread while the next chunk is generated, and part
files of an earlier run pruned so a rerun never mixes two worlds."""

from __future__ import annotations

import os
import re
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

PARQUET_OPTIONS: dict[str, Any] = {"compression": "zstd", "compression_level": 1}
PART_NAME = re.compile(r"^part-\d{5}\.parquet$")
# Logs are written without the Arrow schema, so dictionary-encoded columns read back as plain
# strings: writing the codes directly skips hashing a million strings per chunk.
LOG_OPTIONS: dict[str, Any] = {
    "store_schema": False,
    "use_dictionary": ["surface", "action", "event"],
    "write_statistics": ["ts", "surface", "action", "event"],  # ids are random: no use
}


@contextmanager
def atomic(path: Path) -> Iterator[Path]:
    """Yield a hidden temporary path next to ``path``; on success move it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


class PartWriter:
    """Writes Parquet parts on one worker thread while the next chunk is generated (pyarrow
    encodes without the GIL). At most ``depth`` parts wait, so memory stays bounded; the
    first error is raised in the caller."""

    def __init__(self, depth: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="synth-writer")
        self._pending: deque[Future[None]] = deque()
        self._depth = depth

    def submit(self, fn: Callable[..., None], *args: Any, **kwargs: Any) -> None:
        while len(self._pending) >= self._depth:
            self._pending.popleft().result()
        self._pending.append(self._pool.submit(fn, *args, **kwargs))

    def __enter__(self) -> PartWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            while self._pending:
                self._pending.popleft().result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)


def write_parquet(table: pa.Table, path: Path, **options: Any) -> None:
    """One Parquet file, written aside and moved into place."""
    with atomic(path) as tmp:
        pq.write_table(table, tmp, **{**PARQUET_OPTIONS, **options})


def write_text(text: str, path: Path) -> None:
    """One UTF-8 text file, written aside and moved into place."""
    with atomic(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def prune(root: Path, keep: dict[str, set[str]]) -> None:
    """Remove part files (and leftover temporaries) of an earlier run that this run did not
    write, so a rerun into the same folder never mixes two worlds."""
    if not root.exists():
        return
    for folder in sorted(root.glob("dt=*")):
        if not folder.is_dir():
            continue
        for f in sorted(folder.iterdir()):
            ours = PART_NAME.match(f.name) or (
                f.name.startswith(".part-") and f.name.endswith(".tmp")
            )
            if ours and f.name not in keep.get(folder.name, set()):
                f.unlink()
        if not any(folder.iterdir()):
            folder.rmdir()
