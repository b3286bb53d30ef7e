"""``debunk notify`` SIGKILLed mid-run, then re-run: every spreader is notified exactly once (in
the outbox, in the event stream, in the caps), whatever batch the kill landed in."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import redis

from domain.delivery import day_of
from feature_store import keys
from tests.fixtures.chaos import rounds
from tests.fixtures.spreaders import world

NOW = int(datetime(2026, 11, 3, 12, tzinfo=UTC).timestamp())
USERS = 3000
ROWS = [(f"u{i:05d}", "r1", "share" if i % 2 else "comment", 1 + i % 9) for i in range(USERS)]


def notify(state: Path, redis_url: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "cli.main", "notify", "r1", "--state", str(state),
           "--batch", "20", "--now", str(NOW)]  # fmt: skip
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def kill_mid_run(client: redis.Redis, state: Path, redis_url: str) -> int:
    """Start a run and SIGKILL it once the outbox has entries; the entries at the kill."""
    proc = notify(state, redis_url)
    deadline = time.monotonic() + 60
    while client.xlen(keys.OUTBOX) == 0 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.002)  # polling the store for the first batch, not waiting for a server
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=30)
    return client.xlen(keys.OUTBOX)


@rounds
def test_a_killed_notify_rerun_notifies_everyone_exactly_once(
    client: redis.Redis, tmp_path: Path, redis_url: str, chaos_round: int
) -> None:
    state = world(client, tmp_path / "state", ROWS)
    at_kill = kill_mid_run(client, state, redis_url)
    assert 0 < at_kill < USERS  # caught mid-run (it takes ~150 batches)
    assert at_kill % 20 == 0 or at_kill == USERS  # whole batches only
    rerun = notify(state, redis_url)
    out, err = rerun.communicate(timeout=120)
    assert rerun.returncode == 0, err
    users = Counter(f[b"user_id"] for _, f in client.xrange(keys.OUTBOX))
    assert len(users) == USERS and set(users.values()) == {1}
    events = Counter(f[b"user_id"] for _, f in client.xrange(keys.EVENTS))
    assert len(events) == USERS and set(events.values()) == {1}
    day = day_of(NOW)
    pipe = client.pipeline(transaction=False)
    for user, *_ in ROWS:
        pipe.hget(keys.daily_caps(user, day), "push")
    assert set(pipe.execute()) == {b"1"}
