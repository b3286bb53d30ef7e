"""Schema checks of log files the driver cannot open itself (``s3a://``, ``hdfs://``, …): the
footer is read through Spark's Hadoop filesystems, and an unusable schema fails with the same
message as the local check (offline.io.logs.check_schema), naming the file and the column.
"""

from __future__ import annotations

import re
from typing import Any

from offline.io.logs import LOG_COLUMNS, LogSchemaError

# A URI with a scheme (s3a://, hdfs://, abfss://, gs://, file:/...), not a local path.
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


def is_remote(path: str) -> bool:
    """Whether ``path`` is a Hadoop URI, read through Spark rather than opened locally."""
    return bool(_SCHEME.match(path))


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
