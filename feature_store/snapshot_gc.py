"""Which snapshot versions a store keeps: the pointer's version, abandoned partial writes, and
the garbage collection that deletes what the newest versions and live writers no longer need."""

from __future__ import annotations

import json
import time

import redis

from feature_store import keys, liveness

# A partial write whose writer's heartbeat is older than this is abandoned (its writer is on
# another host, or stuck); one whose writer process is gone from this host is at once.
ABANDON_AFTER_S = 600


def current_version(client: redis.Redis) -> str | None:
    """The version the pointer names, or None before the first materialization."""
    raw = client.get(keys.CURRENT)
    return raw.decode() if raw else None


def writer_abandoned(record: bytes | str, now: float, abandon_after_s: float) -> bool:
    """Whether the ``keys.WRITING`` value ``record`` names a writer that is gone: its process
    no longer runs on this host, it recorded that it gave up (SnapshotWriter.abandon), or its
    heartbeat is older than ``abandon_after_s``. A bare
    number (what older writers stored: the start time) is a heartbeat that old."""
    text = record.decode() if isinstance(record, bytes) else record
    try:
        parsed = json.loads(text)
    except ValueError:
        return False  # unreadable: leave it (a human should look)
    if isinstance(parsed, int | float):
        return now - float(parsed) > abandon_after_s
    if not isinstance(parsed, dict):
        return False
    if parsed.get("abandoned") is True or liveness.writer_gone(parsed):
        return True
    beat = parsed.get("heartbeat", parsed.get("started", 0))
    return now - float(beat) > abandon_after_s


def collect_garbage(
    client: redis.Redis, *, keep: int = 2, abandon_after_s: float = ABANDON_AFTER_S
) -> list[str]:
    """Delete complete versions beyond the newest ``keep`` and partial writes whose writer is
    gone (``writer_abandoned``)."""
    keep = max(keep, 1)
    current = current_version(client)
    complete = [v.decode() for v in client.zrange(keys.VERSIONS, 0, -1)]
    survivors = set(complete[-keep:]) | ({current} if current else set())
    doomed = [v for v in complete if v not in survivors]
    now = time.time()
    for raw, record in client.hgetall(keys.WRITING).items():
        version = raw.decode()
        if version not in survivors and writer_abandoned(record, now, abandon_after_s):
            doomed.append(version)
    for version in doomed:
        unlink_matching(client, keys.version_pattern(version))
        client.zrem(keys.VERSIONS, version)
        client.hdel(keys.WRITING, version)
    return doomed


def unlink_matching(client: redis.Redis, pattern: bytes, chunk: int = 1000) -> int:
    """UNLINK every key matching ``pattern``, in chunks; returns how many."""
    removed = 0
    batch: list[bytes] = []
    for key in client.scan_iter(match=pattern, count=chunk):
        batch.append(key)
        if len(batch) >= chunk:
            removed += client.unlink(*batch)
            batch.clear()
    if batch:
        removed += client.unlink(*batch)
    return removed
