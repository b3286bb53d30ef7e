"""Peak RSS and time of the nightly's at-risk training on a large exposure state: the state file
streamed (what the nightly does since decision 0061) against the same code given the whole table
in memory (what it did before), each in its own process, same file, same run.

    .venv/bin/python bench/bench_train_memory.py [--users 2000000 --pairs 38800000]
    .venv/bin/python bench/bench_train_memory.py --state <a nightly's exposures.parquet>
    .venv/bin/python bench/bench_train_memory.py --baseline DIR   # also DIR's code (a git archive)
    .venv/bin/python bench/bench_train_memory.py --modes file --baseline DIR --baseline-mode file

Without --state a seeded state is written once under bench/out/ (STATE_SCHEMA, sorted by user
and rumor as the nightly writes it; lognormal pairs per user, 1Mi-row groups). Both modes must
give the same prebunks (checked by a digest). Prints a table and one JSON line.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.common import command_line, emit, format_table, machine, run_child  # noqa: E402

MODES = ("file", "table")


def write_state(path: Path, users: int, pairs: int, rumors: int, seed: int = 7) -> int:
    """A seeded sorted state of about ``pairs`` pairs over ``users`` users; its row count."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from domain.vocab import ACTIONS
    from offline.join.contracts import STATE_SCHEMA

    rng = np.random.default_rng(seed)
    w = rng.lognormal(0.0, 1.0, users)
    per = np.minimum(np.maximum(1, np.round(w / w.sum() * pairs)), rumors).astype(np.int64)
    bounds = np.concatenate([[0], np.cumsum(per)])
    acts = np.array(ACTIONS, dtype=object)
    ts_type = STATE_SCHEMA.field("first_ts").type
    written = 0
    tmp = path.with_suffix(".tmp")
    with pq.ParquetWriter(tmp, STATE_SCHEMA, compression="zstd") as out:
        for lo in range(0, users, 100_000):
            hi = min(users, lo + 100_000)
            u = np.repeat(np.arange(lo, hi), per[lo:hi])
            r = rng.zipf(1.3, bounds[hi] - bounds[lo]) % rumors
            key = np.unique(u * rumors + r)  # sorted by (user, rumor); repeats folded
            u, r = key // rumors, key % rumors
            n = len(key)
            ts = pa.array(np.full(n, 1_760_000_000_000_000, "datetime64[us]")).cast(ts_type)
            batch = {
                "user_id": pa.array([f"u{x:08d}" for x in u]),
                "rumor_id": pa.array([f"r{x:05d}" for x in r]),
                "exposures": pa.array(rng.integers(1, 9, n)), "first_ts": ts, "last_ts": ts,
                "strongest_action": pa.array(acts[rng.integers(0, len(acts), n)]),
                "surface_mask": pa.array(np.ones(n, np.int16)),
                "shared": pa.array(np.zeros(n, bool)),
                "first_share_ts": pa.nulls(n, ts_type), "last_share_ts": pa.nulls(n, ts_type),
                "tag_score": pa.array(np.ones(n, np.float32)),
            }  # fmt: skip
            out.write_table(pa.table(batch, schema=STATE_SCHEMA), row_group_size=1 << 20)
            written += n
    tmp.replace(path)
    return written


def child(state: Path, mode: str, rumors: int) -> int:
    """Train at-risk on ``state`` read as ``mode``; one JSON line (peak RSS from the parent)."""
    import time

    import pyarrow.parquet as pq

    from domain.records import Debunk, Rumor
    from offline.models.train import train_at_risk

    ids = [f"r{i:05d}" for i in range(rumors)]
    library = [Rumor(r, "c", "epidemic", 3, "false", "confirmed") for r in ids]
    debunks = [Debunk(f"d{r}", (r,), "t", "https://x.invalid", "p", "official") for r in ids]
    started = time.perf_counter()
    source = pq.read_table(state) if mode == "table" else state
    prebunks, summary = train_at_risk(source, library, debunks)
    seconds = time.perf_counter() - started
    digest = hashlib.sha256(json.dumps(sorted(prebunks.items())).encode()).hexdigest()[:16]
    emit({"mode": mode, "seconds": round(seconds, 1), "pairs": summary.get("pairs"),
          "prebunk_pairs": summary.get("prebunk_pairs"), "digest": digest})  # fmt: skip
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--users", type=int, default=2_000_000)
    p.add_argument("--pairs", type=int, default=38_800_000)
    p.add_argument("--rumors", type=int, default=3_000)
    p.add_argument("--state", type=Path, help="an exposures.parquet to train on instead")
    p.add_argument("--modes", default=",".join(MODES), help="file,table (the order run)")
    p.add_argument("--baseline", type=Path, help="a checkout whose code also trains")
    p.add_argument("--baseline-mode", choices=MODES, default="table",
                   help="how the baseline reads the state (file: code since 0061)")  # fmt: skip
    p.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    p.add_argument("--code", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    state = args.state or ROOT / "bench" / "out" / (
        f"train-state-{args.users}-{args.pairs}-{args.rumors}.parquet"
    )
    if args.child:
        sys.path.insert(0, str(args.code))  # the baseline's modules before this checkout's
        return child(state, args.child, args.rumors)
    if not state.exists():
        state.parent.mkdir(parents=True, exist_ok=True)
        write_state(state, args.users, args.pairs, args.rumors)
    runs = {}
    plan = [(m, m, ROOT) for m in args.modes.split(",")]
    if args.baseline:
        plan.append(("baseline", args.baseline_mode, args.baseline.resolve()))
    for name, mode, code in plan:
        cmd = [sys.executable, __file__, "--child", mode, "--state", str(state),
               "--rumors", str(args.rumors), "--code", str(code)]  # fmt: skip
        res = run_child(cmd)
        runs[name] = {**res.report, "peak_rss_mb": res.maxrss_mb}
    digests = {r["digest"] for r in runs.values()}
    rows = [[m, r["pairs"], r["prebunk_pairs"], r["seconds"], r["peak_rss_mb"]]
            for m, r in runs.items()]  # fmt: skip
    print(format_table(["run", "pairs", "prebunk pairs", "seconds", "peak RSS MB"], rows))
    for other in ("table", "baseline"):
        if "file" in runs and other in runs:
            f, t = runs["file"], runs[other]
            print(f"peak RSS file/{other}: {f['peak_rss_mb'] / t['peak_rss_mb']:.2f}; "
                  f"time file/{other}: {f['seconds'] / t['seconds']:.2f}")  # fmt: skip
    print(json.dumps({"command": command_line(), "machine": machine(), "state": str(state),
                      "same_prebunks": len(digests) == 1, "runs": runs}))  # fmt: skip
    return 0 if len(digests) == 1 else 1


if __name__ == "__main__":
    sys.exit(main())
