"""Snapshot materialization written by the driver and by Spark ``local[2]`` executors, on the
same exposure state and the same embedded Redis.

    flock /tmp/bench.lock .venv/bin/python -m bench.bench_materialize --pairs 1000000 --repeat 3

The state is bench_store's synthetic one (deduplicated pairs, every column). Each way writes
the whole snapshot (catalog, items, exposures) and flips, ``--repeat`` times, alternating; the
best pairs/s counts. The executors' first write (Python workers starting) is reported apart.
The two ways' hashes are compared on a sample of users; a mismatch fails the run. Results go to
bench/out/bench_materialize.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from bench.bench_store import catalog, state_table
from bench.common import command_line, format_table, machine
from feature_store import keys
from feature_store.embedded import EmbeddedRedis
from feature_store.settings import RedisSettings
from offline.join.engine import engine_named
from offline.nightly.executor_writer import ExecutorExposures
from offline.nightly.materialize import materialize

OUT = Path(__file__).resolve().parents[1] / "bench" / "out" / "bench_materialize.json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pairs", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--tasks", type=int, default=2, help="executor write tasks (connections)")
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-materialize-"))
    state = work / "state.parquet"
    pq.write_table(state_table(args.pairs, seed=1), state)
    rumors, debunks = catalog()
    engine = engine_named("spark", master="local[2]")
    assert engine.session is not None  # started before the timing
    runs: dict[str, list[dict[str, Any]]] = {"driver": [], "executors": []}
    with EmbeddedRedis(work / "redis") as server:
        settings = RedisSettings(url=server.local_url)
        ways = {"driver": None, "executors": ExecutorExposures(engine, settings, tasks=args.tasks)}
        client = settings.sync_client()
        versions = {}
        for _ in range(args.repeat + 1):  # one more: the executors' cold first write
            for way, exposures in ways.items():
                done = materialize(client, state, rumors, debunks, keep=4, exposures=exposures)
                versions[way] = done.version
                runs[way].append({"seconds": done.seconds, "pairs": done.pairs})
        sample: list[str] = []
        prefix = {w: keys.user_exposures_prefix(v) for w, v in versions.items()}
        users = pq.read_table(state, columns=["user_id"])["user_id"].unique().to_pylist()
        for user in users[:: max(1, len(users) // 2000)]:
            tag = b"{" + user.encode() + b"}"
            got = {w: client.hgetall(prefix[w] + tag) for w in ways}
            if got["driver"] != got["executors"]:
                raise SystemExit(f"user {user}: the executors wrote other bytes")
            sample.append(user)
        client.close()
    rows, report = [], {"machine": machine(), "command": command_line(), "runs": runs}
    for way, measured in runs.items():
        first, rest = measured[0], measured[1:]
        best = min(rest, key=lambda r: r["seconds"])
        report[way] = {
            "pairs": best["pairs"],
            "best_s": best["seconds"],
            "first_s": first["seconds"],
            "pairs_per_s": round(best["pairs"] / best["seconds"]),
        }
        rows.append([way, best["pairs"], best["seconds"], first["seconds"],
                     report[way]["pairs_per_s"]])  # fmt: skip
    report["compared_users"] = len(sample)
    print(format_table(["writer", "pairs", "best s", "first s", "pairs/s"], rows))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
