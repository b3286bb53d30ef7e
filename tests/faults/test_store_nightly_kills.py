"""``debunk nightly`` SIGKILLed during materialization (and while it writes files aside),
``CHAOS_ROUNDS`` times, then one clean run: readers never see anything but a complete version,
and afterwards no key of any version but the kept ones is left, no partial write is registered,
and no temp file is left behind."""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import redis

from feature_store import keys
from feature_store.embedded import EmbeddedRedis
from feature_store.snapshots import current_version
from tests.fixtures.store_chaos import chaos_rounds, wait_until

RUN_DATE = "2026-10-05"
KEEP = 2


@pytest.fixture
def world(small_world: Path, tmp_path: Path) -> Path:
    out = tmp_path / "world"
    shutil.copytree(small_world / "exposures", out / "exposures")
    for name in ("rumors.jsonl", "debunks.jsonld", "tagged_items.parquet", "items.parquet"):
        shutil.copy(small_world / name, out / name)
    return out


def nightly(world: Path, state: Path, url: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "cli.main", "nightly", "--data", str(world), "--date", RUN_DATE,
         "--state", str(state), "--no-train", "--keep-versions", str(KEEP)],
        env={**os.environ, "REDIS_URL": url}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


class MixedAnswerWatch:
    """A reader polling the pointer and the version it names, as the service would: the version
    must always be complete and hold its users' hashes."""

    def __init__(self, url: str, user: str) -> None:
        self.client = redis.Redis.from_url(url)
        self.user = user
        self.reads = 0
        self.mixed: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            version = current_version(self.client)
            if version:
                pipe = self.client.pipeline(transaction=False)
                pipe.hget(keys.meta(version), "state")
                pipe.exists(keys.user_exposures(version, self.user))
                state, has_user = pipe.execute()
                if state != b"complete" or not has_user:
                    self.mixed.append(f"{version}: state {state!r}, user hash {has_user}")
                self.reads += 1
            time.sleep(0.001)

    def __enter__(self) -> MixedAnswerWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


def kill_while_materializing(world: Path, state: Path, client: redis.Redis, url: str) -> bool:
    """Start a run and SIGKILL it at a random moment after it registered its partial version;
    False when it finished first."""
    proc = nightly(world, state, url)
    try:
        mine = wait_until(
            "the run's partial version",
            lambda: proc.poll() is not None or any(
                f'"pid": {proc.pid},'.encode() in w for w in client.hvals(keys.WRITING)
            ),
            timeout=120, every=0.002,
        )  # fmt: skip
        if proc.poll() is not None or mine is not True:
            return False
        time.sleep(random.uniform(0, 0.01))
        if proc.poll() is not None:
            return False
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        return True
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def temp_files(state: Path) -> list[Path]:
    return [p for p in state.rglob("*") if ".tmp" in p.name]


def kill_while_writing_aside(world: Path, state: Path, url: str) -> bool:
    """Start a run and SIGKILL it the moment one of its files written aside (the match
    outputs, the state parts) appears; True when a temp file is left behind."""
    proc = nightly(world, state, url)
    try:
        wait_until(
            "a file written aside",
            lambda: proc.poll() is not None
            or any(f".{proc.pid}.tmp" in p.name for p in temp_files(state)),
            timeout=120, every=0.001,
        )  # fmt: skip
    finally:
        proc.kill()
        proc.wait()
    return any(f".{proc.pid}.tmp" in p.name for p in temp_files(state))


def versions_with_keys(client: redis.Redis) -> set[str]:
    return {k.split(b":")[2].decode() for k in client.scan_iter(match=b"dbk:v:*", count=1000)}


def test_killed_materializations_leave_nothing_after_the_next_clean_run(
    world: Path, tmp_path: Path
) -> None:
    state = tmp_path / "state"
    with EmbeddedRedis(tmp_path / "redis") as server:
        client = redis.Redis.from_url(server.url)
        first = nightly(world, state, server.url)
        assert first.wait(timeout=300) == 0, first.stderr.read() if first.stderr else ""
        served = current_version(client)
        assert served
        user = next(client.scan_iter(match=keys.user_exposures_prefix(served) + b"*"))
        user_id = user.decode().split("{", 1)[1].rstrip("}")
        kills = 0
        with MixedAnswerWatch(server.url, user_id) as watch:
            for _ in range(chaos_rounds()):
                # Kill runs while they write aside until one leaves a temp file behind (each
                # kill is a race with the rename; the machine's load decides who wins).
                left = any(kill_while_writing_aside(world, state, server.url) for _ in range(12))
                assert left  # killed runs do leave temp files
                served = current_version(client) or served
                for _attempt in range(30):
                    killed = kill_while_materializing(world, state, client, server.url)
                    now = current_version(client)
                    if killed and now == served:
                        kills += 1  # killed before its flip: it must have flipped nothing
                        break
                    served = now or served  # it finished (or was killed after its flip)
                    assert client.hget(keys.meta(served), "state") == b"complete"
            assert kills == chaos_rounds()
            partial = set(client.hkeys(keys.WRITING))
            assert partial  # the killed runs did leave partial versions behind
            clean = nightly(world, state, server.url)
            assert clean.wait(timeout=300) == 0, clean.stderr.read() if clean.stderr else ""
        assert watch.reads > 0 and watch.mixed == []
        latest = current_version(client)
        assert latest and latest != served
        kept = {v.decode() for v in client.zrange(keys.VERSIONS, -KEEP, -1)} | {latest}
        assert versions_with_keys(client) <= kept
        assert client.hlen(keys.WRITING) == 0
        assert temp_files(state) == []
