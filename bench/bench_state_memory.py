"""Peak RSS of the nightly's state update (scan every day, merge the window, write exposures and
audience) with the local engine under its memory budget, on a sweep world's logs.

    .venv/bin/python bench/bench_state_memory.py --world bench/out/worlds/sweep-...-1/pyarrow \\
        --tags bench/out/worlds/sweep-...-1/tags-0.1.parquet [--memory-mb 256]

One process, 2 Arrow threads; the state folder is made under --work and removed after. Prints
one JSON line: seconds, pairs, peak RSS (VmHWM) and the exposure file's size.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa

if TYPE_CHECKING:
    from offline.join.engine import JoinEngine
    from offline.nightly.state import StateRun

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import current_rss_mb, emit, peak_rss_mb, timed  # noqa: E402
from bench.exposure_engines import limit_arrow_threads  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--world", type=Path, required=True, help="a layout folder with exposures/")
    p.add_argument("--tags", type=Path, required=True)
    p.add_argument("--memory-mb", type=float, default=None, help="default: the engine's")
    p.add_argument("--work", type=Path, default=ROOT / "bench" / "out" / "state-memory")
    args = p.parse_args(argv)
    limit_arrow_threads()
    from offline.io import logs as logfiles
    from offline.io.catalog import load_tags
    from offline.join.local import DEFAULT_MEMORY_MB, LocalEngine
    from offline.nightly.state import update_state

    logs = args.world / "exposures"
    days = logfiles.partitions(logs)
    budget = args.memory_mb if args.memory_mb is not None else DEFAULT_MEMORY_MB
    state = args.work / "state"
    shutil.rmtree(state, ignore_errors=True)
    tags = load_tags(args.tags)
    base = current_rss_mb()
    try:
        with timed() as t:
            # The sweep's days are named dayNNN: the state folder takes any dt=, and the window
            # is every day (a lookback as long as the world, run on its last "date").
            run = _update(update_state, logs, tags, state, len(days), LocalEngine(memory_mb=budget))
        emit(
            {
                "seconds": round(t.seconds, 2),
                "days": len(days),
                "pairs": run.summary["pairs"],
                "rows_read": run.summary["join"]["rows_read"],
                "memory_mb": budget,
                "base_rss_mb": base,
                "peak_rss_mb": peak_rss_mb(),
                "exposures_bytes": run.exposures.stat().st_size,
            }
        )
    finally:
        shutil.rmtree(state, ignore_errors=True)
    return 0


def _update(
    update_state: Callable[..., StateRun],
    logs: Path,
    tags: pa.Table,
    state: Path,
    days: int,
    engine: JoinEngine,
) -> StateRun:
    """update_state over every partition of ``logs`` (the window as long as the world)."""
    from offline.nightly import state as state_module

    real = state_module.window
    state_module.window = lambda _date, _days, available: list(available)
    try:
        return update_state(logs, tags, state, date(2026, 1, 1), lookback_days=days, engine=engine)
    finally:
        state_module.window = real


if __name__ == "__main__":
    sys.exit(main())
