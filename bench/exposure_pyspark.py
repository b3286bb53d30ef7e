"""The sweep's layout written by PySpark itself: each day of the world rewritten by
``df.write.parquet`` with Spark's defaults (parquet-mr: snappy, dictionary encoding with its
fallback, INT96 timestamps, no Arrow schema, one file per task).

A day is read back from the pyarrow layout (the same rows), cut into SPARK_FILES_PER_DAY
contiguous time ranges as a daily job's tasks write them (``repartitionByRange`` on ``ts``, each
task's rows in time order), and written. Spark runs in this process (local[2], pyspark from
the venv, Java 17); nothing but the partition count is set on the writer.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pyarrow.parquet as pq

DESCRIPTION = (
    "written by PySpark {version} (df.write.parquet, Spark's defaults: snappy, dictionary ids, "
    "INT96 ts, {files} files a day, parquet-mr {writer})"
)


def write_pyspark(source: Path, target: Path, files_per_day: int) -> str:
    """Rewrite every ``dt=`` folder of ``source`` (a layout's exposures) under ``target`` with
    PySpark; returns the layout's description (versions read off the written files)."""
    import pyspark

    from offline.join.spark_session import get_session

    spark = get_session("local[2]")
    shutil.rmtree(target, ignore_errors=True)
    for day in sorted(p for p in source.iterdir() if p.name.startswith("dt=")):
        frame = spark.read.parquet(str(day))
        frame = frame.repartitionByRange(files_per_day, "ts").sortWithinPartitions("ts")
        frame.write.parquet(str(target / day.name))
    written = next(target.glob("dt=*/*.parquet"))
    writer = pq.read_metadata(written).created_by.split(" version ")[-1].split(" ")[0]
    return DESCRIPTION.format(version=pyspark.__version__, files=files_per_day, writer=writer)
