"""The member filter at platform scale: size, build time, lookups and the false-positive rate
of a ``MemberFilter`` of ``--users`` ids, against an exact Python set of the same ids measured
in the same run (the baseline: what an in-process exact set would cost each worker). With
``--serve``: GroupWarnings (a 200-member chat, 5% exposed) and SearchTop (an unexposed viewer)
served with the filter and without it, in the same run (``bench/members_serve.py``).

    make bench-members
    .venv/bin/python bench/bench_members.py --users 10000000
    flock /tmp/bench.lock .venv/bin/python bench/bench_members.py --serve
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench import members_serve
from domain.membership import MemberFilter, id_hashes
from feature_store.partition_writer import member_hashes


def rss_mb() -> float:
    """This process's resident set now (from /proc), in MB."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize() / 1e6


def per_call_us(check, ids: list[str]) -> float:
    """Microseconds per ``check(id)`` over ``ids``."""
    started = time.perf_counter()
    for u in ids:
        check(u)
    return (time.perf_counter() - started) / len(ids) * 1e6


def executor_driver_s(hashes: np.ndarray, tasks: int) -> tuple[float, list[bytes]]:
    """What a Spark-executor write leaves the driver (0052): ``tasks`` tasks' ``members``
    bytes (hashed on the executors as they write) joined and built into the filter; seconds."""
    shipped = [part.tobytes() for part in np.array_split(hashes, tasks)]
    started = time.perf_counter()
    MemberFilter.build(member_hashes(shipped))
    return time.perf_counter() - started, shipped


def main() -> int:
    """Build, store, load and probe a filter of ``--users`` ids; print the numbers as JSON."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=10_000_000)
    p.add_argument("--probes", type=int, default=200_000)
    p.add_argument("--tasks", type=int, default=16, help="executor tasks the users come from")
    p.add_argument("--serve", action="store_true", help="instead: the pinned surfaces served "
                   "with and without the filter")  # fmt: skip
    members_serve.add_arguments(p)
    args = p.parse_args()
    if args.serve:
        result = {"command": " ".join([Path(sys.executable).name, *sys.argv]),
                  **members_serve.run(args)}  # fmt: skip
        print(json.dumps(result, indent=2))
        return 0
    ids = [f"u{i:010d}" for i in range(args.users)]
    strangers = [f"n{i:010d}" for i in range(args.probes)]
    started = time.perf_counter()
    hashes = id_hashes(ids)
    hashed_s = time.perf_counter() - started
    built = MemberFilter.build(hashes)
    build_s = time.perf_counter() - started
    raw = built.to_bytes()
    driver_s, shipped = executor_driver_s(hashes, args.tasks)
    assert MemberFilter.build(member_hashes(shipped)).to_bytes() == raw
    del hashes, built, shipped
    before = rss_mb()
    flt = MemberFilter.from_bytes(raw)
    loaded_mb = rss_mb() - before
    probe_members = ids[:: max(1, args.users // args.probes)][: args.probes]
    assert all(flt.contains_many(probe_members)), "a member was not found"
    fp = sum(flt.contains_many(strangers)) / len(strangers)
    started = time.perf_counter()
    flt.contains_many(strangers[:1000])
    batch_us = (time.perf_counter() - started) / 1000 * 1e6
    bloom_member_us = per_call_us(flt.__contains__, probe_members[:50_000])
    bloom_stranger_us = per_call_us(flt.__contains__, strangers[:50_000])
    exact = set(ids)
    # the set's table and its strings (each worker would hold its own copies)
    exact_mb = (sys.getsizeof(exact) + sum(map(sys.getsizeof, ids))) / 1e6
    exact_us = per_call_us(exact.__contains__, strangers[:50_000])
    result = {
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "users": args.users,
        "filter_bytes": len(raw),
        "bytes_per_user": round(len(raw) / args.users, 3),
        "bits": flt.m,
        "hashes": flt.k,
        "build_s": round(build_s, 2),
        "of_which_hashing_s": round(hashed_s, 2),
        "executor_write_tasks": args.tasks,
        "executor_write_mb_to_driver": round(args.users * 16 / 1e6, 1),
        "executor_write_driver_build_s": round(driver_s, 2),
        "rss_added_by_loading_mb": round(loaded_mb, 1),
        "false_positive_rate": round(fp, 5),
        "lookup_us_member": round(bloom_member_us, 2),
        "lookup_us_stranger": round(bloom_stranger_us, 2),
        "contains_many_us_per_user_1000": round(batch_us, 2),
        "exact_set_mb": round(exact_mb, 1),
        "exact_set_lookup_us": round(exact_us, 3),
        "filter_over_exact_set_memory": round(len(raw) / 1e6 / exact_mb, 4),
    }
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
