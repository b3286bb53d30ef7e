"""The exposure logs on disk: partitions, their files, fingerprints and schema checks.

A partition is a ``dt=YYYY-MM-DD`` folder of Parquet files. A file whose schema cannot be used
fails the run with a message naming the file and the column, before anything is written.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from offline.io.contracts import EXPOSURE_SCHEMA

LOG_COLUMNS = tuple(EXPOSURE_SCHEMA.names)
# Read as dictionaries: checking and mapping them then costs one look per distinct value.
DICTIONARY_COLUMNS = ("surface", "action")


class LogSchemaError(ValueError):
    """A log file whose schema the join cannot read; the message names file and column."""


class LogReadError(LogSchemaError):
    """A log file whose schema reads but whose data does not (a corrupt page, a truncated
    column chunk); the message names the file. The run fails before anything is written."""


def _unreadable(path: str | Path, error: Exception) -> LogReadError:
    return LogReadError(f"{path}: corrupt Parquet data, the file cannot be read: {error}")


def _is_text(t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def check_schema(path: Path) -> bool:
    """Validate one file's columns; returns True when ``ts`` is text that must be parsed."""
    try:
        schema = pq.read_schema(path)
    except (OSError, pa.ArrowInvalid) as e:
        raise LogSchemaError(f"{path}: not a readable Parquet file: {e}") from None
    for col in LOG_COLUMNS:
        if col not in schema.names:
            raise LogSchemaError(f"{path}: missing column {col!r}")
        t = schema.field(col).type
        if col == "ts":
            if not (pa.types.is_timestamp(t) or _is_text(t)):
                raise LogSchemaError(f"{path}: column 'ts' has type {t}, expected timestamp")
        elif not _is_text(t):
            raise LogSchemaError(f"{path}: column {col!r} has type {t}, expected string")
    return _is_text(schema.field("ts").type)


def partitions(logs: Path) -> list[str]:
    """The dt values present under ``logs``, sorted."""
    return sorted(p.name[3:] for p in Path(logs).glob("dt=*") if p.is_dir())


def partition_files(logs: Path, dt: str) -> list[Path]:
    """The Parquet files of one partition, sorted (temporary and hidden files ignored)."""
    folder = Path(logs) / f"dt={dt}"
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith((".", "_")))


def fingerprint(files: list[Path]) -> str:
    """Changes when a file of the partition is added, removed, rewritten or touched."""
    stats = ((f.name, f.stat()) for f in files)
    return fingerprint_of((name, st.st_size, st.st_mtime_ns) for name, st in stats)


def fingerprint_of(stats: Iterable[tuple[str, int, int]]) -> str:
    """``fingerprint`` of files given as (name, size in bytes, modification time in ns), as
    a filesystem other than the local one reports them (Hadoop's FileStatus)."""
    h = hashlib.sha256()
    for name, size, mtime_ns in stats:
        h.update(f"{name}\0{size}\0{mtime_ns}\n".encode())
    return h.hexdigest()[:16]


@dataclass(frozen=True)
class LogBatch:
    """One batch of log rows and the file it came from."""

    batch: pa.RecordBatch
    path: str
    ts_is_text: bool


def check_files(files: list[Path]) -> list[tuple[str, bool]]:
    """Each file with whether its ``ts`` is text; every schema is checked before any is read."""
    return [(str(f), check_schema(f)) for f in files]


def read_batches(
    path: str,
    ts_is_text: bool,
    *,
    batch_size: int,
    row_groups: list[int] | None = None,
    dictionaries: tuple[str, ...] = (),
) -> Iterator[LogBatch]:
    """Batches of one file's log columns (only ``row_groups`` when given, as a backfill reads
    what the item index names), decoded in the calling thread (no Arrow threads), so a worker
    that decodes a batch screens it right away while it is still in cache. The columns of
    ``dictionaries`` are read as dictionaries too (the id columns of a file that stores them
    dictionary-encoded: see offline.join.layout)."""
    wanted = [*DICTIONARY_COLUMNS, *dictionaries]
    try:
        reader = pq.ParquetFile(path, read_dictionary=wanted, pre_buffer=False)
        for batch in reader.iter_batches(
            batch_size=batch_size, row_groups=row_groups, columns=list(LOG_COLUMNS),
            use_threads=False,
        ):  # fmt: skip
            if batch.num_rows:
                yield LogBatch(batch, path, ts_is_text)
    except (OSError, pa.ArrowException) as e:
        raise _unreadable(path, e) from None


def scan(files: list[Path], *, batch_size: int = 1 << 20) -> Iterator[LogBatch]:
    """Batches of the log columns of ``files``, checked first, decoded with read-ahead."""
    groups: dict[bool, list[str]] = {}
    for f in files:
        groups.setdefault(check_schema(f), []).append(str(f))
    fmt = ds.ParquetFileFormat(
        read_options={"dictionary_columns": list(DICTIONARY_COLUMNS)},
        # Local files: one read per column chunk as decoding reaches it beats coalesced
        # pre-buffering of the whole row group (measured ~5% faster, less memory held).
        default_fragment_scan_options=ds.ParquetFragmentScanOptions(pre_buffer=False),
    )
    for ts_is_text, paths in groups.items():
        dataset = ds.dataset(paths, format=fmt)
        scanner = dataset.scanner(
            columns=list(LOG_COLUMNS), batch_size=batch_size,
            fragment_readahead=2, batch_readahead=4,  # two files decode at once, no more
        )  # fmt: skip
        try:
            for tagged in scanner.scan_batches():
                if tagged.record_batch.num_rows:
                    yield LogBatch(tagged.record_batch, tagged.fragment.path, ts_is_text)
        except (OSError, pa.ArrowException) as e:
            raise _unreadable(_first_unreadable(paths) or f"one of {paths}", e) from None


def _first_unreadable(paths: list[str]) -> str | None:
    """Which of ``paths`` cannot be read through (the slow path, only after a failure)."""
    for path in paths:
        try:
            for _ in pq.ParquetFile(path).iter_batches(columns=list(LOG_COLUMNS)):
                pass
        except (OSError, pa.ArrowException):
            return path
    return None
