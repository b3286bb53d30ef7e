"""The join-engine options of ``debunk nightly`` and ``debunk exposures``: --engine, and the
Spark engine's --spark-master and --spark-conf; parsing them imports no engine."""

from __future__ import annotations

import argparse
from typing import Any


def engine_from(args: argparse.Namespace) -> Any:
    """The engine --engine names; the Spark one with --spark-master and --spark-conf."""
    from offline.join.engine import engine_named

    spark = {"master": args.spark_master, "conf": dict(args.spark_conf or [])}
    if args.engine != "spark":
        if args.spark_master or args.spark_conf:
            raise argparse.ArgumentTypeError("--spark-master and --spark-conf need --engine spark")
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
