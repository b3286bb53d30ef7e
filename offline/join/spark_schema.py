"""Log files the driver cannot open itself (``s3a://``, ``hdfs://``, …), through Spark's Hadoop
filesystems: their ``dt=`` partitions listed, and their schemas checked with the same messages
as the local check (offline.io.logs.check_schema), naming the file and the column.
"""

from __future__ import annotations

from typing import Any

from offline.io.logs import LOG_COLUMNS, LogSchemaError


def check_remote(session: Any, path: str) -> bool:
    """Validate one file's columns through Spark; True when ``ts`` is text that must be parsed."""
    from pyspark.sql import types as T

    try:
        schema = session.read.parquet(path).schema
    except Exception as e:  # Spark raises its own analysis and Java errors here
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise LogSchemaError(f"{path}: not a readable Parquet file: {first}") from None
    fields = {f.name: f.dataType for f in schema.fields}
    for col in LOG_COLUMNS:
        if col not in fields:
            raise LogSchemaError(f"{path}: missing column {col!r}")
        t = fields[col]
        if col == "ts":
            if not isinstance(t, T.TimestampType | T.TimestampNTZType | T.StringType):
                raise LogSchemaError(
                    f"{path}: column 'ts' has type {t.simpleString()}, expected timestamp"
                )
        elif not isinstance(t, T.StringType):
            raise LogSchemaError(
                f"{path}: column {col!r} has type {t.simpleString()}, expected string"
            )
    return isinstance(fields["ts"], T.StringType)


def _hadoop(session: Any, root: str) -> tuple[Any, Any, Any]:
    """(the Hadoop Path class, the filesystem of ``root``, root as a Hadoop Path)."""
    jvm = session.sparkContext._jvm
    path_class = jvm.org.apache.hadoop.fs.Path
    base = path_class(root)
    return path_class, base.getFileSystem(session.sparkContext._jsc.hadoopConfiguration()), base


def list_remote(session: Any, root: str, dates: list[str] | None) -> tuple[list[str], list[str]]:
    """The ``dt=`` partitions under the Hadoop URI ``root`` (all, or those of ``dates``) and
    their Parquet files as Hadoop names them, sorted (hidden and ``_`` files ignored)."""
    path_class, fs, base = _hadoop(session, root)
    if not fs.exists(base):
        raise FileNotFoundError(f"{root}: no such log folder")
    wanted = remote_partitions(session, root) if dates is None else dates
    files: list[str] = []
    for dt in wanted:
        folder = path_class(base, f"dt={dt}")
        if not fs.exists(folder):
            continue
        names = [
            s.getPath().toString()
            for s in fs.listStatus(folder)
            if s.isFile()
            and s.getPath().getName().endswith(".parquet")
            and not s.getPath().getName().startswith((".", "_"))
        ]
        files.extend(sorted(names))
    return wanted, files


def remote_partitions(session: Any, root: str) -> list[str]:
    """The ``dt=`` partitions under the Hadoop URI ``root``, sorted."""
    _, fs, base = _hadoop(session, root)
    if not fs.exists(base):
        raise FileNotFoundError(f"{root}: no such log folder")
    return sorted(
        s.getPath().getName()[3:]
        for s in fs.listStatus(base)
        if s.isDirectory() and s.getPath().getName().startswith("dt=")
    )


def remote_stats(session: Any, files: list[str]) -> list[tuple[str, int, int]]:
    """(name, size, modification time in ns) of each file, from Hadoop's FileStatus (which
    keeps milliseconds): the inputs of a partition's fingerprint."""
    out = []
    for f in files:
        _, fs, path = _hadoop(session, f)
        status = fs.getFileStatus(path)
        mtime_ns = int(status.getModificationTime()) * 1_000_000
        out.append((path.getName(), int(status.getLen()), mtime_ns))
    return out
