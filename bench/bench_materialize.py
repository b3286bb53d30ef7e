"""Snapshot materialization against its limits, on bench_store's synthetic exposure state
(deduplicated pairs, every column).

    flock /tmp/bench.lock .venv/bin/python -m bench.bench_materialize --pairs 1000000 --repeat 5
    flock /tmp/bench.lock .venv/bin/python -m bench.bench_materialize --executors --repeat 3

By default: the driver's materializer beside ``redis-cli --pipe`` loading the very RESP payload
the materializer sends (bench.pipe_limit): fresh servers of the same durable configuration
every round, alternating which goes first, contents compared key by key; the median seconds,
their spread, pairs/s and the ratio materializer/pipe are printed.

``--executors``: the whole snapshot written and flipped by the driver and by Spark ``local[2]``
executors on one embedded Redis, ``--repeat`` times, alternating; the best pairs/s counts, the
executors' first write (Python workers starting) is reported apart, and the two ways' hashes
are compared on a sample of users. Results go to bench/out/bench_materialize.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import redis

from bench import pipe_limit
from bench.bench_store import catalog, state_table
from bench.common import command_line, format_table, machine
from feature_store import durability, keys
from feature_store.embedded import EmbeddedRedis
from feature_store.settings import RedisSettings
from feature_store.snapshots import BULK_CONNECTIONS, WriteSummary, new_version
from offline.join.engine import engine_named
from offline.nightly.executor_writer import ExecutorExposures
from offline.nightly.materialize import materialize

OUT = Path(__file__).resolve().parents[1] / "bench" / "out" / "bench_materialize.json"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--pairs", type=int, default=1_000_000)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--executors", action="store_true", help="driver against Spark executors")
    p.add_argument("--tasks", type=int, default=2, help="executor write tasks (connections)")
    p.add_argument("--connections", default=f"1,{BULK_CONNECTIONS}", help="bulk connections "
                   "of each materializer way (comma-separated)")  # fmt: skip
    p.add_argument("--fsync", default=durability.fsync_policy(), choices=durability.FSYNC_POLICIES)
    args = p.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-materialize-"))
    state = work / "state.parquet"
    pq.write_table(state_table(args.pairs, seed=1), state)
    report = {"machine": machine(), "command": command_line(), "fsync": args.fsync}
    if args.executors:
        report.update(executor_rounds(work, state, args.repeat, args.tasks))
    else:
        report["pipe"] = pipe_rounds(
            work, state, args.repeat, args.fsync, [int(n) for n in args.connections.split(",")]
        )
    shutil.rmtree(work, ignore_errors=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2))
    print(f"wrote {OUT}")
    return 0


def pipe_rounds(
    work: Path, state: Path, repeat: int, fsync: str, connections: list[int]
) -> dict[str, Any]:
    """The materializer (with each count of bulk connections) beside redis-cli --pipe on its
    own payload (bench.pipe_limit)."""
    rumors, debunks = catalog()
    version = new_version()

    def way(n: int) -> pipe_limit.Materialize:
        def write(client: redis.Redis) -> WriteSummary:
            return materialize(client, state, rumors, debunks, keep=4, version=version,
                               bulk_connections=n)  # fmt: skip

        return write

    ways = {f"materializer x{n}": way(n) for n in connections}
    got = pipe_limit.rounds(work, fsync, ways, repeat)
    rows = []
    for name in [*ways, "pipe"]:
        s = got[name]["seconds"]
        rows.append([name, got["pairs"], s["median"], s["min"], s["max"],
                     got[name]["pairs_per_s"], got[name]["ratio_of_medians"]])  # fmt: skip
    print(format_table(["writer", "pairs", "median s", "min s", "max s", "pairs/s", "/pipe"], rows))
    compared = got["runs"][-1]["compared"]
    print(
        f"payload {got['payload_bytes']:,} bytes; fsync {fsync}; last round compared "
        f"{compared['keys']:,} keys ({compared['equal_by_content']} equal by content only: "
        f"{', '.join(compared['equal_by_content_keys'])})"
    )
    for name in ways:
        print(f"{name} / pipe per round: {got[name]['ratio_per_round']}")
    return got


def executor_rounds(work: Path, state: Path, repeat: int, tasks: int) -> dict[str, Any]:
    """The driver against Spark local[2] executors on one server, alternating."""
    rumors, debunks = catalog()
    engine = engine_named("spark", master="local[2]")
    assert engine.session is not None  # started before the timing
    runs: dict[str, list[dict[str, Any]]] = {"driver": [], "executors": []}
    with EmbeddedRedis(work / "redis") as server:
        settings = RedisSettings(url=server.local_url)
        ways = {"driver": None, "executors": ExecutorExposures(engine, settings, tasks=tasks)}
        client = settings.sync_client()
        versions = {}
        for _ in range(repeat + 1):  # one more: the executors' cold first write
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
    rows, report = [], {"runs": runs}
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
    return report


if __name__ == "__main__":
    raise SystemExit(main())
