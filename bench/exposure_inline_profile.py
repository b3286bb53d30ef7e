"""Where `write_exposures` spends one thread's time on one point of the exposure sweep: every pool
task of the local engine is run inline on the main thread under cProfile, so the merges, the
spill and the decoder all show up (the threaded join hides them from a main-thread profile).
A profile, not a benchmark; run it under the lock all the same.

    flock /tmp/bench.lock .venv/bin/python bench/exposure_inline_profile.py pyarrow 0.1
    flock /tmp/bench.lock .venv/bin/python bench/exposure_inline_profile.py pyarrow-128k 0.01

The world is the quick sweep's (bench/out/worlds/sweep-400000-5-10000000-1, written by
`bench/bench_exposures.py`); it also prints the process's peak RSS (VmHWM).
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import Future
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

WORLD = ROOT / "bench" / "out" / "worlds" / "sweep-400000-5-10000000-1"


class InlinePool:
    """A stand-in for ThreadPoolExecutor that runs each task at once on the calling thread."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __enter__(self) -> InlinePool:
        return self

    def __exit__(self, *exc: object) -> bool:
        return False

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """The task's result (or exception) in a finished future."""
        done: Future[Any] = Future()
        try:
            done.set_result(fn(*args, **kwargs))
        except BaseException as e:
            done.set_exception(e)
        return done

    def map(self, fn: Callable[..., Any], *iterables: Iterable[Any]) -> list[Any]:
        """fn over the zipped iterables, in order."""
        return [fn(*args) for args in zip(*iterables, strict=False)]


def peak_rss_mb() -> int:
    """This process's VmHWM in MB."""
    with open("/proc/self/status") as f:
        line = next(x for x in f if x.startswith("VmHWM"))
    return int(line.split()[1]) // 1024


def main() -> None:
    """Profile one (layout, hit rate) point of the sweep world."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("layout", help="a layout folder of the sweep world, e.g. pyarrow")
    p.add_argument("rate", help="a tag file's hit rate, e.g. 0.1 for tags-0.1.parquet")
    p.add_argument("--world", type=Path, default=WORLD)
    p.add_argument("--top", type=int, default=30, help="functions listed, by own time")
    args = p.parse_args()

    import pyarrow as pa

    pa.set_cpu_count(2)
    pa.set_io_thread_count(2)
    import offline.join.aggregate as aggregate
    import offline.join.buckets as buckets
    import offline.join.local as local
    import offline.join.spill as spill
    from offline.io.catalog import load_tags
    from offline.join.engine import write_exposures

    for module in (local, aggregate, spill, buckets):
        module.ThreadPoolExecutor = InlinePool  # type: ignore[attr-defined,misc]
    tags = load_tags(args.world / f"tags-{args.rate}.parquet")
    with tempfile.TemporaryDirectory() as out:
        engine = local.LocalEngine(work_dir=out, workers=1)
        profile = cProfile.Profile(time.thread_time)
        started = time.perf_counter()
        profile.enable()
        write_exposures(args.world / args.layout / "exposures", tags, Path(out) / "x.parquet",
                        engine=engine)  # fmt: skip
        profile.disable()
        wall = time.perf_counter() - started
    print(f"{args.layout} {args.rate}: wall {wall:.3f} s, peak RSS {peak_rss_mb()} MB")
    pstats.Stats(profile).sort_stats("tottime").print_stats(args.top)


if __name__ == "__main__":
    main()
