"""The join-engine options of ``debunk nightly`` and ``debunk exposures``: --engine, the local
engine's --memory-mb, the Spark engine's --spark-master and --spark-conf; and the nightly's
--materialize, --write-tasks, --logs-uri and --log-settle-minutes. Parsing them imports no
engine."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# offline.join.local.DEFAULT_MEMORY_MB, repeated so that parsing imports no engine (a test
# checks they agree).
DEFAULT_MEMORY_MB = 256


def engine_from(args: argparse.Namespace, work_dir: Path | None = None) -> Any:
    """The engine --engine names; the local one with --memory-mb (spilling under ``work_dir``),
    the Spark one with --spark-master and --spark-conf."""
    from offline.join.engine import engine_named

    spark = {"master": args.spark_master, "conf": dict(args.spark_conf or [])}
    if args.engine != "spark":
        if args.spark_master or args.spark_conf:
            raise argparse.ArgumentTypeError("--spark-master and --spark-conf need --engine spark")
        if args.engine == "local":
            return engine_named("local", memory_mb=args.memory_mb, work_dir=work_dir)
        return engine_named(args.engine)
    return engine_named("spark", **spark)


def _conf_pair(text: str) -> tuple[str, str]:
    """``spark.executor.memory=4g`` -> (key, value)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE")
    return key.strip(), value


def engine_options(s: argparse.ArgumentParser, engines: tuple[str, ...]) -> None:
    """--engine, and the Spark engine's session settings."""
    s.add_argument("--engine", choices=engines, default="local", help="the join engine")
    s.add_argument(
        "--memory-mb",
        type=_positive,
        default=DEFAULT_MEMORY_MB,
        help="with --engine local: the budget for the pair aggregates held in memory; beyond "
        f"it they are spilled to the run's work folder (default {DEFAULT_MEMORY_MB})",
    )
    s.add_argument(
        "--spark-master",
        help="with --engine spark: local[N], spark://HOST:PORT, yarn, k8s://... (default "
        "local[2]; under spark-submit, the master it was given)",
    )
    s.add_argument(
        "--spark-conf",
        type=_conf_pair,
        action="append",
        metavar="KEY=VALUE",
        help="with --engine spark: a Spark setting, e.g. spark.executor.memory=4g (repeatable)",
    )


def materialize_from(args: argparse.Namespace) -> str:
    """Who writes the snapshot's exposures: --materialize, by default the Spark executors with
    --engine spark and this process otherwise."""
    where: str = args.materialize or ("executors" if args.engine == "spark" else "driver")
    if where == "executors" and args.engine != "spark":
        raise argparse.ArgumentTypeError("--materialize executors needs --engine spark")
    if args.write_tasks is not None and where != "executors":
        raise argparse.ArgumentTypeError("--write-tasks needs --materialize executors")
    return where


def run_options(args: argparse.Namespace) -> dict[str, Any]:
    """run_nightly's keywords from the nightly's options (a bad combination raises here)."""
    return {"materialize_on": materialize_from(args), "write_tasks": args.write_tasks,
            "logs": args.logs_uri, "log_settle_s": args.log_settle_minutes * 60}  # fmt: skip


def _minutes(text: str) -> int:
    """A whole number of minutes, 0 to 1440 (a day)."""
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 1440:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of minutes from 0 to 1440")
    return value


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number")
    return value


def materialize_options(s: argparse.ArgumentParser) -> None:
    """--materialize, --write-tasks, --logs-uri and --log-settle-minutes of ``debunk nightly``."""
    s.add_argument(
        "--materialize",
        choices=("driver", "executors"),
        help="who writes the snapshot's exposures into Redis: this process, or the Spark "
        "executors (default: executors with --engine spark, driver otherwise)",
    )
    s.add_argument(
        "--write-tasks",
        type=_positive,
        help="with --materialize executors: the tasks that write, one Redis connection each "
        "(default: the Spark session's parallelism)",
    )
    s.add_argument(
        "--logs-uri",
        help="the exposure logs, when not DATA/exposures: a folder, or with --engine spark a "
        "Hadoop URI (file:///..., s3a://..., hdfs://...); the catalog stays in --data",
    )
    s.add_argument(
        "--log-settle-minutes",
        type=_minutes,
        default=15,
        help="the log shipper's lag allowance: when the run date is not over, rows younger than "
        "this are left to the live layer (default 15)",
    )
