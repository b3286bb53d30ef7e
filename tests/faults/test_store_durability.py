"""Acknowledged events survive SIGKILL: of the embedded redis-server under load (its owner's
supervisor restarts it), and of ``debunk serve`` itself (its redis child goes with it; the next
owner of the folder loads the AOF). Every event of every OK RecordEvents call is then found in
the delivery state and in the event stream."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import redis

from feature_store.embedded import EmbeddedRedis
from tests.fixtures.store_chaos import EventLoad, ServeProcess, chaos_rounds, missing, wait_until

POLICIES = ["always", "everysec"]


def redis_pid(home: Path) -> int:
    """The pid of the redis-server the folder's owner runs (from its 0600 info file)."""
    return int(json.loads((home / "redis" / "redis.json").read_text())["pid"])


@pytest.mark.parametrize("policy", POLICIES)
def test_acked_events_survive_sigkill_of_the_redis_server(tmp_path: Path, policy: str) -> None:
    serve = ServeProcess(tmp_path, DEBUNK_REDIS_FSYNC=policy).start()
    try:
        store = EmbeddedRedis(tmp_path / "redis")  # a second process's view: it attaches
        store.start()
        assert not store.owner
        load = EventLoad(serve.target, tag=f"k{policy[0]}").start()
        for round_ in range(chaos_rounds()):
            load.wait_for(200 * (round_ + 1))
            victim = redis_pid(tmp_path)
            os.kill(victim, signal.SIGKILL)
            wait_until("a restarted redis-server", lambda v=victim: redis_pid(tmp_path) != v)
            before = load.count()
            load.wait_for(before + 50)  # the service reconnected and acknowledges again
        acked = load.stop()
        client = redis.Redis.from_url(store.url)
        assert client.ping()  # same URL (port, password) as before the kills
        assert missing(client, acked) == {"delivery state": [], "stream": []}
        assert len(acked) >= 200 * chaos_rounds()
    finally:
        serve.stop()


def test_acked_events_survive_sigkill_of_debunk_serve(tmp_path: Path) -> None:
    acked: list[tuple[str, int]] = []
    for round_ in range(chaos_rounds()):
        serve = ServeProcess(tmp_path).start()
        load = EventLoad(serve.target, tag=f"s{round_}").start()
        try:
            load.wait_for(300)
            assert serve.proc is not None
            serve.proc.send_signal(signal.SIGKILL)
            serve.proc.wait()
        finally:
            acked += load.stop()
            serve.stop()
    with EmbeddedRedis(tmp_path / "redis") as store:  # the next owner: no rival, same data
        assert store.owner
        client = redis.Redis.from_url(store.url)
        assert missing(client, acked) == {"delivery state": [], "stream": []}
        assert len(acked) >= 300 * chaos_rounds()
