"""Partial snapshot writes are collected as soon as their writer is gone: the WRITING hash names
the writer (host, pid, its start time) and its heartbeat; a real process that died mid-write
is collected at the next commit, a live or recently heard writer is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import redis

from feature_store import keys, liveness
from feature_store.snapshots import SnapshotWriter, collect_garbage, writer_abandoned
from tests.fixtures.snapshots import state, write

# A real process that starts a snapshot write, writes some of it, and dies without committing.
DIES_MID_WRITE = """
import os, sys, redis
from feature_store.snapshots import SnapshotWriter
from tests.fixtures.snapshots import state
w = SnapshotWriter(redis.Redis.from_url(sys.argv[1]), "vdead")
w.write_exposures([state(("u1", "r1", 1), ("u2", "r1", 1))])
os._exit(9)
"""


def test_the_writer_is_recorded_with_host_pid_and_heartbeat(client: redis.Redis) -> None:
    SnapshotWriter(client, "v1")
    record = json.loads(client.hget(keys.WRITING, "v1"))
    assert record["host"] == liveness.this_host() and record["pid"] == os.getpid()
    assert record["proc_start"] == liveness.process_start(os.getpid())
    assert abs(record["heartbeat"] - time.time()) < 60


def test_a_partial_write_of_a_dead_process_is_collected_at_the_next_commit(
    client: redis.Redis, redis_url: str
) -> None:
    done = subprocess.run([sys.executable, "-c", DIES_MID_WRITE, redis_url], timeout=60)
    assert done.returncode == 9
    assert client.exists(keys.user_exposures("vdead", "u1"))  # it did write, then died
    SnapshotWriter(client, "vbusy")  # this process: alive, so its partial write stays
    write(client, "v1", ("u1", "r1", 1))  # the next run's commit collects
    assert not list(client.scan_iter(match=keys.version_pattern("vdead")))
    assert client.hkeys(keys.WRITING) == [b"vbusy"]
    assert client.exists(keys.meta("vbusy"))


def test_who_counts_as_gone() -> None:
    now = time.time()
    me = {**liveness.me(), "heartbeat": now}
    assert not writer_abandoned(json.dumps(me), now, 600)
    assert writer_abandoned(json.dumps(me), now + 601, 600)  # silent for too long
    elsewhere = {**me, "host": "another-host", "pid": 1}
    assert not writer_abandoned(json.dumps(elsewhere), now, 600)  # its pid means nothing here
    reused = {**me, "proc_start": (me["proc_start"] or 0) + 1}  # same pid, another process
    assert writer_abandoned(json.dumps(reused), now, 600)
    assert writer_abandoned(b"0", now, 600)  # an older writer's bare start time, long ago
    assert not writer_abandoned(str(now).encode(), now, 600)
    assert not writer_abandoned(b"not json", now, 600)  # unreadable: left for a human


def test_a_long_write_keeps_its_heartbeat_fresh(client: redis.Redis, monkeypatch) -> None:
    from feature_store import snapshots

    monkeypatch.setattr(snapshots, "HEARTBEAT_EVERY_S", 0)
    w = SnapshotWriter(client, "vlong")
    first = json.loads(client.hget(keys.WRITING, "vlong"))["heartbeat"]
    time.sleep(0.01)
    w.write_exposures([state(("u1", "r1", 1))])
    later = json.loads(client.hget(keys.WRITING, "vlong"))["heartbeat"]
    assert later > first
    assert collect_garbage(client, abandon_after_s=3600) == []
