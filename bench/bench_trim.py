"""Trim benchmark (issue 19, item 2): the nightly's trim of covered live buckets, against a plain
SCAN of the same keys measured in the same run (the least any trim must do: find the keys).

    make bench-trim                          # 200,000 users, two live days of 8 buckets each
    make bench-trim BENCH_ARGS="--users 1000000"

Each user has a live hash for the day before the watermark (deleted whole) and one for the
watermark's day with half its buckets before the watermark's hour (trimmed); the store also holds
a snapshot-sized set of other keys the SCAN walks past. One embedded Redis (durable, as
deployed). Prints keys/s of both and the ratio; results in bench/out/bench_trim.json.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from domain.exposure_days import bucket_field  # noqa: E402
from feature_store import keys  # noqa: E402
from feature_store.live_trim import SCAN_COUNT  # noqa: E402

OUT = ROOT / "bench" / "out"
WATERMARK = int(datetime(2026, 10, 5, 14, tzinfo=UTC).timestamp())
PART = b"\x01" + (1).to_bytes(4, "little") + b"\x00" * 10


def fill(client, users: int, other: int) -> None:
    """Two live days per user (8 buckets each) and ``other`` unrelated keys, pipelined."""
    pipe = client.pipeline(transaction=False)
    for i in range(users):
        u = f"u{i:07d}"
        pipe.hset(keys.live_day(u, "20261004"),
                  mapping={bucket_field(h, f"r{h}"): PART for h in range(8)})  # fmt: skip
        pipe.hset(keys.live_day(u, "20261005"),
                  mapping={bucket_field(h, f"r{h}"): PART for h in range(10, 18)})  # fmt: skip
        if i % 1000 == 999:
            pipe.execute()
    for i in range(other):
        pipe.set(keys.user_exposures("v2", f"o{i:07d}"), b"x")
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


def timed_scan(client) -> tuple[float, int]:
    """Seconds and live keys of one SCAN over the live day pattern, as the trim's batches."""
    started, n = time.perf_counter(), 0
    for _ in client.scan_iter(match=keys.live_day_pattern(), count=SCAN_COUNT):
        n += 1
    return time.perf_counter() - started, n


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--users", type=int, default=200_000)
    p.add_argument("--other-keys", type=int, default=200_000, help="keys SCAN walks past")
    args = p.parse_args()

    from feature_store.embedded import EmbeddedRedis
    from feature_store.live_trim import trim_covered
    from feature_store.settings import RedisSettings

    work = OUT / "trim"
    shutil.rmtree(work, ignore_errors=True)
    with EmbeddedRedis(work / "redis") as server:
        client = RedisSettings(url=server.url).sync_client()
        fill(client, args.users, args.other_keys)
        client.set(keys.CURRENT, "v2")
        scan_s, seen = timed_scan(client)
        started = time.perf_counter()
        trimmed = trim_covered(client, "v2", WATERMARK)
        trim_s = time.perf_counter() - started
        left = client.hlen(keys.live_day("u0000000", "20261005"))
        client.close()
    result = {
        "users": args.users,
        "other_keys": args.other_keys,
        "live_keys": seen,
        "scan_s": round(scan_s, 3),
        "trim_s": round(trim_s, 3),
        "scan_keys_per_s": round(seen / scan_s),
        "trim_keys_per_s": round(seen / trim_s),
        "trim_over_scan": round(trim_s / scan_s, 2),
        "ms_per_script": round(1000 * trim_s / max(trimmed.batches, 1), 2),  # Redis busy
        "trimmed": trimmed.as_dict(),
        "buckets_left_on_the_watermark_day": left,
    }
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "bench_trim.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
