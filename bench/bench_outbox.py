"""Outbox benchmark: what notifying a rumor's spreaders costs, and how long one batch script
holds Redis (the service's reads wait behind it).

One embedded redis-server, a one-version snapshot of ``--rumors`` rumors, and a nightly state
where each rumor has ``--spreaders`` sharers and commenters of its own (so no run meets another's
caps or markers). Per batch size (``--batches``), one rumor is notified end to end with
``notify_spreaders``; Redis's own ``INFO commandstats`` gives the script's time per call. The
baseline, measured in the same run against the same server: the same number of outbox entries
appended with plain pipelined ``XADD`` in batches of 500 (no checks, no markers, no cap, no
event), the least an outbox write can cost.

    make bench-outbox
    .venv/bin/python bench/bench_outbox.py --spreaders 20000 --batches 100,500,2000
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import command_line, format_table, machine
from domain.records import Debunk, Rumor
from feature_store import keys
from feature_store.embedded import EmbeddedRedis
from feature_store.settings import RedisSettings
from feature_store.snapshots import SnapshotWriter
from offline.io.parquet import write_parquet_atomic
from offline.join.contracts import STATE_SCHEMA
from offline.live.notify import notify_spreaders
from ranking.policy import ServingPolicy

NOW = int(datetime(2026, 11, 3, 12, tzinfo=UTC).timestamp())


def state(rumors: int, spreaders: int) -> pa.Table:
    """Per rumor k, ``spreaders`` users of its own (k-u...) who shared or commented on it."""
    users = [f"{k}-u{i:07d}" for k in range(rumors) for i in range(spreaders)]
    n = len(users)
    ts = [datetime.fromtimestamp(NOW - 86_400 + i % 86_400, UTC) for i in range(n)]
    return pa.table(
        {
            "user_id": users,
            "rumor_id": [f"r{k}" for k in range(rumors) for _ in range(spreaders)],
            "exposures": [1] * n,
            "first_ts": ts,
            "last_ts": ts,
            "strongest_action": ["share" if i % 3 else "comment" for i in range(n)],
            "surface_mask": [1] * n,
            "shared": [bool(i % 3) for i in range(n)],
            "first_share_ts": [None] * n,
            "last_share_ts": [None] * n,
            "tag_score": [1.0] * n,
        },
        schema=STATE_SCHEMA,
    )


def script_stats(client) -> tuple[int, int]:
    """(calls, microseconds) of EVALSHA and EVAL so far, from Redis's command stats."""
    stats = client.info("commandstats")
    calls = usec = 0
    for name in ("cmdstat_evalsha", "cmdstat_eval"):
        calls += stats.get(name, {}).get("calls", 0)
        usec += stats.get(name, {}).get("usec", 0)
    return calls, usec


def plain_appends(client, n: int, batch: int = 500) -> float:
    """Seconds to XADD ``n`` outbox-shaped entries, pipelined ``batch`` at a time."""
    key = keys.OUTBOX + b":baseline"  # beside the outbox, never read; deleted after
    started = time.perf_counter()
    for at in range(0, n, batch):
        pipe = client.pipeline(transaction=False)
        for i in range(at, min(n, at + batch)):
            pipe.xadd(key, {"notification_id": f"ntf-{i:032d}", "user_id": f"b-u{i:07d}",
                            "rumor_id": "r0", "debunk_id": "d0", "reason": "confirmed",
                            "ts": str(NOW)})  # fmt: skip
        pipe.execute()
    seconds = time.perf_counter() - started
    client.delete(key)
    return seconds


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--spreaders", type=int, default=20_000, help="spreaders per rumor")
    p.add_argument("--batches", default="50,100,500,2000", help="batch sizes to compare")
    args = p.parse_args()
    sizes = [int(b) for b in args.batches.split(",")]
    work = Path(tempfile.mkdtemp(prefix="bench-outbox-"))
    generation = work / "state" / "generations" / "g1"
    write_parquet_atomic(state(len(sizes), args.spreaders), generation / "exposures.parquet")
    os.symlink("generations/g1", work / "state" / "current")
    rows = []
    with EmbeddedRedis(work / "redis") as server:
        client = RedisSettings(url=server.url).sync_client()
        w = SnapshotWriter(client, "v1")
        ks = range(len(sizes))
        w.write_catalog(
            [Rumor(f"r{k}", f"claim {k}", "other", 3, "false", "confirmed") for k in ks],
            [Debunk(f"d{k}", (f"r{k}",), "t", "https://x", "p", "official") for k in ks],
        )
        w.commit()
        baseline = plain_appends(client, args.spreaders)
        for k, size in enumerate(sizes):
            calls0, usec0 = script_stats(client)
            summary = notify_spreaders(client, work / "state", f"r{k}", "confirmed", NOW,
                                       policy=ServingPolicy(), batch=size)  # fmt: skip
            calls1, usec1 = script_stats(client)
            assert summary["notified"] == args.spreaders, summary
            per_call_ms = (usec1 - usec0) / max(1, calls1 - calls0) / 1000
            seconds = summary["seconds"]
            rows.append([size, summary["notified"], round(seconds, 3),
                         round(summary["notified"] / seconds), round(per_call_ms, 2),
                         round(seconds / baseline, 2)])  # fmt: skip
        client.close()
    shutil.rmtree(work, ignore_errors=True)
    headers = ["batch", "notified", "seconds", "users_per_s", "script_ms_per_batch",
               "x_plain_xadd"]  # fmt: skip
    print(f"baseline: {args.spreaders} plain pipelined XADDs in {baseline:.3f} s "
          f"({args.spreaders / baseline:.0f}/s)")  # fmt: skip
    print(format_table(headers, rows))
    result = {"command": command_line(), "machine": machine(), "baseline_seconds": baseline,
              "rows": [dict(zip(headers, r, strict=True)) for r in rows]}  # fmt: skip
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_outbox.json").write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
