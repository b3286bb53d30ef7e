"""``debunk ingest`` SIGKILLed mid-stream and restarted ten times (a real process each time,
alternating consumer names so both the own-pending and the claim path redeliver): every entry
is acknowledged, and each user's live day state holds every exposure exactly once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import defaultdict

import redis

from domain.delivery import day_of
from feature_store import keys
from feature_store.live_ingest import decode_day
from tests.fixtures.chaos import rounds
from tests.fixtures.service import snapshot

STREAM = b"dbk:{ingest}:test-exposures"
ENTRIES = 40_000
ITEMS = {"i1": ("r1",), "i2": ("r2", "r1"), "i3": ("r3",), "i-no": ()}
KILLS = 10


def _fill(client: redis.Redis, now: int) -> dict[tuple[str, str], int]:
    """Append the entries; (user, rumor) -> how many exposures the state must hold."""
    expected: dict[tuple[str, str], int] = defaultdict(int)
    pipe = client.pipeline(transaction=False)
    names = list(ITEMS)
    for n in range(ENTRIES):
        user, item = f"u{n % 997}", names[n % len(names)]
        pipe.xadd(STREAM, {"user_id": user, "item_id": item, "ts": str(now - n % 500),
                           "surface": "feed", "action": "click"})  # fmt: skip
        for rumor in ITEMS[item]:
            expected[(user, rumor)] += 1
        if n % 5000 == 4999:
            pipe.execute()
    pipe.execute()
    return expected


def _ingest(redis_url: str, consumer: str) -> subprocess.Popen[str]:
    cmd = [sys.executable, "-m", "cli.main", "ingest", "--stream", STREAM.decode(),
           "--group", "g", "--consumer", consumer, "--batch", "400", "--block-ms", "200",
           "--claim-idle-ms", "0", "--exit-when-idle"]  # fmt: skip
    env = {**os.environ, "REDIS_URL": redis_url}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _delivered(client: redis.Redis) -> int:
    last = client.xinfo_groups(STREAM)[0]["last-delivered-id"]
    return len(client.xrange(STREAM, "-", last))


@rounds
def test_a_consumer_killed_ten_times_loses_and_double_counts_nothing(
    client: redis.Redis, redis_url: str, chaos_round: int
) -> None:
    snapshot(client, "v1", [("u-old", "r2", "click", 3)])
    now = int(time.time()) - 600
    expected = _fill(client, now)
    stored_at_kill = []
    for k in range(KILLS):
        proc = _ingest(redis_url, f"c{k % 2}")
        start = int(client.hget(keys.INGEST_COUNTS, "stored") or 0)
        deadline = time.monotonic() + 60
        while (int(client.hget(keys.INGEST_COUNTS, "stored") or 0) == start
               and proc.poll() is None and time.monotonic() < deadline):  # fmt: skip
            time.sleep(0.002)  # polling the store for a batch applied, not waiting for a server
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
        stored_at_kill.append(int(client.hget(keys.INGEST_COUNTS, "stored") or 0))
    assert stored_at_kill[-1] < ENTRIES * 3 // 4, "the kills should land mid-stream"
    assert len(set(stored_at_kill)) == KILLS, "each run should apply a batch before its kill"
    final = _ingest(redis_url, "c0")
    out, err = final.communicate(timeout=120)
    assert final.returncode == 0, err

    group = client.xinfo_groups(STREAM)[0]
    assert group["pending"] == 0 and _delivered(client) == ENTRIES
    got: dict[tuple[str, str], int] = {}
    for user in {u for u, _ in expected}:
        for day in {day_of(now - 499), day_of(now)}:
            for rumor, state in decode_day(client.hgetall(keys.live_day(user, day))).items():
                got[(user, rumor)] = got.get((user, rumor), 0) + state.exposures
    assert got == dict(expected)
    counts = {k.decode(): int(v) for k, v in client.hgetall(keys.INGEST_COUNTS).items()}
    assert counts["accepted"] == ENTRIES and counts["untagged"] == ENTRIES // 4
    assert counts["stored"] == ENTRIES - ENTRIES // 4
